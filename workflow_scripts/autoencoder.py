"""Rule autoencoder: pre-train each head as the encoder of an autoencoder (configurations with init: autoencoder)."""

import numpy as np
import pandas as pd
import torch

from mvcl.device import pick_device, start_torch_job
from mvcl.io import atomic_path
from mvcl.learn.autoencoder import pretrain_autoencoders
from mvcl.learn.batches import TrainingRun
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
run = TrainingRun(
    np.load(snakemake.input.audio, mmap_mode="r"),
    np.load(snakemake.input.video, mmap_mode="r"),
    pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment", "split"]),
    snakemake.params.settings,
    snakemake.params.seed,
    pick_device(snakemake.params.device),
    log=log.info,
)
states = pretrain_autoencoders(run)
with atomic_path(snakemake.output.autoencoders) as temporary:
    torch.save(states, temporary)
