"""Rule video_features: one shard of segments.parquet -> frozen R(2+1)D-18 features [rows, views, 512] + provenance."""

import pandas as pd

from mvcl.data.segments import read_shard
from mvcl.device import start_torch_job
from mvcl.features.video import extract_video_features
from mvcl.io import save_json, save_npy
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
segments = read_shard(snakemake.input.segments, snakemake.params.shard)
features, provenance = extract_video_features(
    segments,
    **snakemake.params.video_encoder,
    frame_size=tuple(snakemake.params.frame_size),
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    precision=snakemake.params.precision,
    calibration=pd.read_parquet(snakemake.input.calibration),
)
save_npy(snakemake.output.features, features)
save_json(snakemake.output.provenance, provenance)
