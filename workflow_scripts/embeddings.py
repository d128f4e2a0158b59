"""Rule embeddings: embeddings.npz -> one row per video (audio, video, aggregated vectors) + per-segment file."""

import pandas as pd

from mvcl.beyond.recommend import embedding_tables
from mvcl.io import save_parquet
from mvcl.logs import log_to
from mvcl.qualitative.neighbours import load_embeddings

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment", "split"])
audio, video = load_embeddings(snakemake.input.embeddings)
videos, per_segment = embedding_tables(segments, audio, video)
log.info(
    "%s: %d videos (%d without a finite segment), %d segments, %d-d",
    snakemake.wildcards.configuration, len(videos), int((videos["n_segments"] == 0).sum()), len(per_segment),
    audio.shape[1],
)  # fmt: skip
save_parquet(snakemake.output.videos, videos)
save_parquet(snakemake.output.segments, per_segment)
