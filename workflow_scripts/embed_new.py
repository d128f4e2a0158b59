"""Rule embed_new: new videos' features -> embeddings by the catalog's trained heads (no training)."""

import numpy as np
import pandas as pd

from mvcl.beyond.recommend import embedding_tables
from mvcl.device import pick_device, start_torch_job
from mvcl.io import save_parquet
from mvcl.learn.checkpoint import load_heads
from mvcl.learn.embed import embed
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
device = pick_device(snakemake.params.device)
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
log.info(
    "embedded %d new videos with the heads of %s (trained on the catalog)",
    len(videos), snakemake.wildcards.configuration,
)  # fmt: skip
save_parquet(snakemake.output.videos, videos)
save_parquet(snakemake.output.segments, per_segment)
