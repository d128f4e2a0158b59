"""Rule diagnostics: modality gap, alignment/uniformity and positive-negative separation of one configuration."""

import pandas as pd

from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import diagnose
from mvcl.qualitative.neighbours import load_embeddings

log = log_to(snakemake.log[0])
audio, video = load_embeddings(snakemake.input.embeddings)
record = diagnose(pd.read_parquet(snakemake.input.segments), audio, video, seed=snakemake.params.seed)
log.info("%s: %s", snakemake.wildcards.configuration, record)
save_json(snakemake.output.diagnostics, record)
