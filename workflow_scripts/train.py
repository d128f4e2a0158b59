"""Rule train: every replicate of one configuration -> heads.pt, history.csv, embeddings.npz (every segment),
replicate 0's loss-floor record (its best validation loss against the chance loss and the loss floor) and
replicate 0's embedding tables (results/embeddings/: one row per video with its audio, video and aggregated
vectors, and one per segment).

Replicates train one after another in this job (torch starts once). Each keeps its per-epoch state under
`params.state` (a folder named by a hash of the inputs and settings, outside the declared outputs), so a job
killed by its time limit resumes where it stopped and ends with the weights an uninterrupted job has.
"""

import shutil

import numpy as np
import pandas as pd
import torch

from mvcl.beyond.recommend import embedding_tables
from mvcl.device import pick_device, start_torch_job
from mvcl.io import atomic_path, save_csv, save_json, save_parquet
from mvcl.learn.batches import TrainingRun
from mvcl.learn.bounds import loss_floor_record
from mvcl.learn.checkpoint import save_heads, state_folder
from mvcl.learn.embed import embed
from mvcl.learn.train import train_heads
from mvcl.logs import log_to
from mvcl.plan import replicate_seed

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
device = pick_device(snakemake.params.device)
audio = np.load(snakemake.input.audio, mmap_mode="r")
video = np.load(snakemake.input.video, mmap_mode="r")
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment", "split"])
init_states = None
if "autoencoders" in snakemake.input.keys():
    init_states = torch.load(snakemake.input.autoencoders, weights_only=True)
settings, name = snakemake.params.settings, snakemake.wildcards.configuration
log.info("configuration %s: %s", name, settings)
state = state_folder(
    snakemake.params.state, [str(path) for path in snakemake.input], settings, snakemake.params.seed, device
)
for replicate in snakemake.params.replicates:
    seed = replicate_seed(snakemake.params.seed, replicate)
    log.info("replicate %d (seed %d)", replicate, seed)
    result = train_heads(
        TrainingRun(audio, video, segments, settings, seed, device, log=log.info),
        init_states=init_states,
        state_path=state / f"replicate_{replicate}.pt",
    )
    save_heads(
        snakemake.output.heads[replicate],
        result.model,
        settings,
        {"configuration": name, "replicate": replicate, "seed": seed},
    )
    save_csv(snakemake.output.history[replicate], result.history.assign(replicate=replicate, seed=seed))
    if replicate == 0:
        record = loss_floor_record(result.history, settings, snakemake.params.segments_per_video)
        log.info("loss floor of replicate 0: %s", record)
        save_json(snakemake.output.loss_floor, record)
    audio_emb, video_emb = embed(result.model, audio, video, device, segments=segments)
    with atomic_path(snakemake.output.embeddings[replicate]) as temporary:
        np.savez(temporary, audio=audio_emb, video=video_emb)
    if replicate == 0:
        videos, per_segment = embedding_tables(segments, audio_emb, video_emb)
        log.info(
            "embedding tables: %d videos (%d without a finite segment), %d segments, %d-d",
            len(videos), int((videos["n_segments"] == 0).sum()), len(per_segment), audio_emb.shape[1],
        )  # fmt: skip
        save_parquet(snakemake.output.videos, videos)
        save_parquet(snakemake.output.video_segments, per_segment)
shutil.rmtree(state, ignore_errors=True)
