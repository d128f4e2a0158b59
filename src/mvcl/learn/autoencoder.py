"""Autoencoder pre-training of the projection heads (the study's `ae_init` configuration)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from mvcl.learn.batches import TrainingRun, as_views, read_rows
from mvcl.learn.model import Autoencoder, heads_kwargs
from mvcl.learn.optim import Adam
from mvcl.rng import fork_rng
from mvcl.vectors import finite_rows


def train_autoencoder(
    features: np.ndarray,
    head: dict,
    epochs: int,
    seed: int,
    device: torch.device | str,
    rows: np.ndarray | None = None,
    batch_size: int = 1000,
    lr: float = 0.01,
    log: Callable[[str], None] = print,
) -> dict[str, torch.Tensor]:
    """Encoder state dict (a ProjectionHead under `head`) of an MSE autoencoder trained on `features[rows]`."""
    rows = np.arange(len(features)) if rows is None else np.asarray(rows)
    if len(rows) < 2:
        raise ValueError(f"autoencoder pre-training needs at least 2 training rows, got {len(rows)}")
    rng, device = np.random.default_rng(seed), torch.device(device)
    with fork_rng(device):
        torch.manual_seed(seed)
        autoencoder = Autoencoder(head).to(device).train()
        optimizer = Adam(autoencoder.parameters(), lr)
        for epoch in range(epochs):
            order = rng.permutation(rows)
            total = 0.0
            for part in np.array_split(order, math.ceil(len(order) / batch_size)):
                if len(part) < 2:  # batch norm needs two rows
                    continue
                batch = torch.from_numpy(read_rows(features, np.sort(part))).to(device)  # [B, in_dim]
                loss = torch.nn.functional.mse_loss(autoencoder(batch), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(part)
            log(f"autoencoder {head['in_dim']}→{head['out_dim']} epoch {epoch}: mse {total / len(rows):.5f}")
    return {key: value.detach().cpu() for key, value in autoencoder.encoder.state_dict().items()}


def pretrain_autoencoders(run: TrainingRun) -> dict[str, dict[str, torch.Tensor]]:
    """{"audio"|"video": encoder state dict} for `model.init: autoencoder`, on the finite training rows.

    Video uses view 0 (a random crop for training rows). The single-head variant's audio side has no
    parameters and gets none. Epochs, batch size and learning rate come from `training`.
    """
    audio_features, video_features = run.audio_features, as_views(run.video_features)
    training = run.cfg["training"]
    keep = finite_rows(audio_features, video_features)
    rows = np.flatnonzero(keep & (run.segments["split"].to_numpy() == "train"))
    heads = heads_kwargs(audio_features.shape[1], video_features.shape[2], run.cfg["model"])
    sources = {"audio": audio_features, "video": video_features[:, 0]}
    seeds = {"audio": run.seed, "video": run.seed + 1}
    return {
        modality: train_autoencoder(
            sources[modality],
            head,
            training["autoencoder_epochs"],
            seeds[modality],
            run.device,
            rows,
            training["batch_size"],
            training["lr"],
            run.log,
        )
        for modality, head in heads.items()
        if head is not None
    }
