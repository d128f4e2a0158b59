"""Rule diagnostics: modality gap, alignment/uniformity and positive-negative separation of every configuration
(replicate 0's test embeddings), one record per configuration."""

import pandas as pd

from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import diagnose
from mvcl.qualitative.neighbours import load_embeddings

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments)
for name, embeddings, output in zip(
    snakemake.params.configurations, snakemake.input.embeddings, snakemake.output.diagnostics, strict=True
):
    audio, video = load_embeddings(embeddings)
    record = diagnose(segments, audio, video, seed=snakemake.params.seed)
    log.info("%s: %s", name, record)
    save_json(output, record)
