"""Rule segments: manifest.parquet -> segments.parquet (one row per segment, with its clip window and shard)."""

import pandas as pd

from mvcl.data.segments import build_segments, shard_count
from mvcl.io import save_parquet
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
settings = snakemake.params.segments
segments = build_segments(
    pd.read_parquet(snakemake.input.manifest),
    count=settings["count"],
    seconds=settings["seconds"],
    clip_seconds=settings["clip_seconds"],
    shard_videos=snakemake.params.shard_videos,
    seed=snakemake.params.seed,
)
log.info(
    "%d segments of %d videos in %d shards",
    len(segments),
    segments["video_id"].nunique(),
    shard_count(segments),
)
save_parquet(snakemake.output.segments, segments)
