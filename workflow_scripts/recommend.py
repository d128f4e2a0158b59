"""Rule recommend: new videos' features -> embeddings by the catalog's trained heads (no training), then
each new video's top-k catalog videos by cosine of the aggregated embedding."""

import numpy as np
import pandas as pd

from mvcl.beyond.recommend import embedding_tables, recommend
from mvcl.device import pick_device, start_torch_job
from mvcl.io import save_csv, save_parquet
from mvcl.learn.checkpoint import load_heads
from mvcl.learn.embed import embed
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
device = pick_device(snakemake.params.device)
configuration = snakemake.wildcards.configuration
segments = pd.concat([pd.read_parquet(path) for path in snakemake.input.segments] or [pd.DataFrame()])
model, checkpoint = load_heads(snakemake.input.heads, device)
if len(segments):
    audio = np.concatenate([np.load(path) for path in snakemake.input.audio])
    video = np.concatenate([np.load(path) for path in snakemake.input.video])
    segments = segments.reset_index(drop=True)
    audio_emb, video_emb = embed(model, audio, video, device, segments=segments)
else:
    segments = pd.DataFrame({"video_id": [], "segment": [], "split": []})
    audio_emb = video_emb = np.zeros((0, model.embedding_dim), dtype=np.float32)
videos, per_segment = embedding_tables(segments, audio_emb, video_emb)
log.info("embedded %d new videos with the heads of %s (trained on the catalog)", len(videos), configuration)
save_parquet(snakemake.output.videos, videos)
save_parquet(snakemake.output.segments, per_segment)

table = recommend(
    videos,
    pd.read_parquet(snakemake.input.catalog),
    pd.read_parquet(snakemake.input.new_manifest),
    pd.read_parquet(snakemake.input.manifest),
    k=snakemake.params.k,
)
top = table[table["rank"] == 1]
log.info(
    "%d new videos, %d recommendations each; top: %s",
    table["new_video_id"].nunique(), snakemake.params.k,
    ", ".join(f"{row.new_video_id} -> {row.video_id} ({row.cosine:.3f})" for row in top.itertuples()),
)  # fmt: skip
save_csv(snakemake.output.table, table)
