"""Rule precomputed_features: a user's per-segment vectors, checked and row-aligned with segments.parquet."""

import pandas as pd

from mvcl.features.encoders.registry import load_encoder
from mvcl.io import save_json, save_npy
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment"])
features, provenance = load_encoder(snakemake.params.encoder).extract(segments)
log.info("%s: %s vectors of %s", snakemake.wildcards.encoder, features.shape, snakemake.input.vectors)
save_npy(snakemake.output.features, features)
save_json(snakemake.output.provenance, provenance)
