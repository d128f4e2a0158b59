"""Rule train: projection heads of one configuration -> heads.pt, history.csv, embeddings.npz (every segment)."""

import numpy as np
import pandas as pd
import torch

from mvcl.device import pick_device, start_torch_job
from mvcl.io import atomic_path, save_csv
from mvcl.learn.checkpoint import save_heads
from mvcl.learn.embed import embed
from mvcl.learn.train import train_heads
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
device = pick_device(snakemake.params.device)
audio = np.load(snakemake.input.audio, mmap_mode="r")
video = np.load(snakemake.input.video, mmap_mode="r")
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment", "split"])
init_states = None
if "autoencoders" in snakemake.input.keys():
    init_states = torch.load(snakemake.input.autoencoders, weights_only=True)
settings = snakemake.params.settings
log.info("configuration %s: %s", snakemake.wildcards.configuration, settings)
result = train_heads(
    audio, video, segments, settings, snakemake.params.seed, device, log=log.info, init_states=init_states
)
save_heads(
    snakemake.output.heads, result.model, settings, {"configuration": snakemake.wildcards.configuration}
)
save_csv(snakemake.output.history, result.history)
audio_emb, video_emb = embed(result.model, audio, video, device, segments=segments)
with atomic_path(snakemake.output.embeddings) as temporary:
    np.savez(temporary, audio=audio_emb, video=video_emb)
