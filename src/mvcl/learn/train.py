"""Training the projection heads on frozen segment features (study section 4), top to bottom in `train_heads`.

Data. `audio_features` [n, Da] and `video_features` [n, V, Dv] (V crop views; a [n, Dv] array is one view)
are row-aligned with `segments` (columns video_id, segment, split) and may be memory-mapped `.npy` files:
only the rows of one batch are read (sorted indices), and the finiteness check scans them in fixed-size
chunks, so memory stays flat whatever n. Training rows use a random view per segment and epoch (the crops are
the augmentation); validation and test rows hold the centre crop in every view slot, so they use view 0.

Batches. `training.segments: one` takes one random segment per video and epoch; `all` takes every segment;
`first` (their code) takes each video's first segment, in training and in validation alike (`first_segments`). Segments of one video never share a batch (study section 4): each video's
segments are put in a random order, the k-th segment of every video forms layer k, and each layer is split
into ceil(len / batch_size) nearly equal batches. When a split has fewer videos than `batch_size`, a batch
is one segment of every video. A batch of one pair (possible only in a sparse last layer) is skipped: neither
batch norm nor the contrastive loss is defined on it. The validation loss uses every validation segment in
batches made once from the seed, so it is comparable from epoch to epoch.

Determinism. Every random choice (initialisation, dropout, batches, views) derives from `seed` through
numpy SeedSequence streams and a forked torch RNG, so the caller's global RNG state is untouched and on CPU
the same inputs, seed and torch thread count give bit-identical weights (a different thread count sums in
another order: base's demo median rank moved 13.5 -> 14.0 between 1 and 2 threads; the count is recorded in
the history, column `threads`). CUDA kernels are not bit-reproducible.

Resuming. With `state_path`, everything the next epoch depends on (weights, optimiser and its rate, the
batch and view generators, torch's RNG, the early-stopping record, the history) is saved there after an epoch
once a minute (`state_every_s`) and after the last, atomically; a run started with an existing `state_path` continues after its last saved epoch and ends
with the weights an uninterrupted run would have.

Early stopping. `training.min_epochs`: the heads sit on the chance loss for the first few epochs, and with
few validation videos the study's patience of 3 stopped such runs there (untrained heads reported as a
failed configuration); no run stops before `min_epochs`. Fewer than SMALL_VALIDATION_VIDEOS validation videos
are warned about: their loss is too noisy to stop on.

`model.temporal` trains on whole videos instead (`training.segments` does not apply): a batch holds
`batch_size // segments_per_video` videos, the loss is the contrastive loss over all their present segments (a segment's other-video and same-video
segments are its negatives, as in MVPt) plus `video_loss_weight` times the loss over the video embeddings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mvcl.data.segments import segments_per_video
from mvcl.io import atomic_path
from mvcl.learn.autoencoder import pretrain_autoencoders
from mvcl.learn.batches import (
    Features,
    Split,
    TrainingRun,
    as_views,
    check_inputs,
    first_segments,
    split_rows,
    view_zero,
)
from mvcl.learn.bounds import chance_loss, loss_floor
from mvcl.learn.loss import contrastive_loss
from mvcl.learn.model import ContrastiveModel, video_embedding
from mvcl.learn.optim import Adam, scheduled_lr
from mvcl.learn.sampler import segment_batches, video_batches
from mvcl.learn.stopping import EarlyStopping
from mvcl.rng import fork_rng, seed_streams, torch_seed
from mvcl.vectors import finite_rows

# Below this many validation videos the validation loss is too noisy to stop on (the log warns).
SMALL_VALIDATION_VIDEOS = 30
# Seconds between two writes of a run's resume state: a write is the weights, Adam's moments and the best
# weights (21 MB for base on the demo), which cost ~40% of a demo run when written after every epoch.
STATE_EVERY_S = 60.0


@dataclass
class TrainResult:
    """The trained model (best validation epoch restored) and what happened on the way."""

    model: ContrastiveModel
    history: pd.DataFrame  # one row per epoch: epoch, train_loss, val_loss, lr, seconds, temperature, bounds
    best_epoch: int
    dropped_rows: int  # segments left out for non-finite features


def _bounds(
    sizes: list[int], loss_cfg: dict, output_activation: str, temperature: float
) -> tuple[float, float]:
    """Chance and floor of the summed loss terms of one batch, for the pair counts in `sizes`."""
    args = {"exclude_positive": loss_cfg["exclude_positive"], "reduction": loss_cfg["reduction"]}
    chance = sum(chance_loss(b, **args) for b in sizes)
    floor = sum(loss_floor(b, temperature, output_activation, **args) for b in sizes)
    return chance, floor


def _batch_loss(
    model: ContrastiveModel, features: Features, batch: np.ndarray, cfg: dict, split: Split, view_of
) -> tuple[torch.Tensor, int, tuple[float, float]]:
    """Loss of one batch, its weight (pairs) and its (chance, floor); `batch` holds rows, or videos if temporal."""
    loss_cfg, tau = cfg["loss"], model.temperature()
    args = {"exclude_positive": loss_cfg["exclude_positive"], "reduction": loss_cfg["reduction"]}
    activation = cfg["model"]["output_activation"]
    if not model.temporal:
        audio_emb, video_emb = model(*features.flat(batch, view_of(batch)))  # [B, d] each
        loss = contrastive_loss(audio_emb, video_emb, tau, **args)
        return loss, len(batch), _bounds([len(batch)], loss_cfg, activation, tau.item())
    audio, video, present = features.sequences(split.slots[batch], view_of)
    audio_emb, video_emb = model(audio, video, present)  # [N, S, d] each
    weight = cfg["model"]["temporal"]["video_loss_weight"]
    segment_loss = contrastive_loss(audio_emb[present], video_emb[present], tau, **args)  # [P, d] pairs
    audio_of_video = video_embedding(audio_emb, present)  # [N, d], one per video
    video_of_video = video_embedding(video_emb, present)  # [N, d]
    loss = segment_loss + weight * contrastive_loss(audio_of_video, video_of_video, tau, **args)
    pairs = int(present.sum())
    (segment_chance, segment_floor), (video_chance, video_floor) = (
        _bounds([size], loss_cfg, activation, tau.item()) for size in (pairs, len(batch))
    )
    return loss, pairs, (segment_chance + weight * video_chance, segment_floor + weight * video_floor)


def _epoch(model, features, batches, cfg, split, view_of, optimizer=None) -> tuple[float, float, float]:
    """Pair-weighted mean loss, chance and floor over `batches`; one optimiser step per batch if given."""
    totals, pairs = np.zeros(3), 0
    for batch in batches:
        loss, weight, (chance, floor) = _batch_loss(model, features, batch, cfg, split, view_of)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.clamp_temperature_()
        totals += weight * np.array([loss.item(), chance, floor])
        pairs += weight
    if pairs == 0:
        raise ValueError(
            "no batch of 2 or more videos in this split; add videos or lower training.batch_size"
        )
    return tuple(totals / pairs)


def train_heads(
    run: TrainingRun,
    init_states: dict[str, dict] | None = None,
    state_path: str | Path | None = None,
    state_every_s: float = STATE_EVERY_S,
) -> TrainResult:
    """Train both heads of the run's configuration (`run.cfg`, resolve_configuration's output) with early
    stopping.

    `init_states` ({"audio"|"video": encoder state dict}) starts the heads from pre-trained autoencoders; with
    `model.init: autoencoder` and no `init_states` they are trained here first (`pretrain_autoencoders`).
    `state_path`: the file of the run's state, written after an epoch when `state_every_s` seconds have passed
    since the last write (and after the last epoch); when it exists the run resumes from it.
    """
    cfg, seed, log, segments = run.cfg, run.seed, run.log, run.segments
    model_cfg, training, device = cfg["model"], cfg["training"], torch.device(run.device)
    audio_features, video_features = run.audio_features, as_views(run.video_features)
    check_inputs(audio_features, video_features, segments)
    keep = finite_rows(audio_features, video_features)
    dropped = int((~keep).sum())
    if dropped:
        log(f"dropped {dropped} of {len(keep)} segments with non-finite audio or video features")
    per_video = segments_per_video(segments)
    train, val = (split_rows(segments, keep, name, per_video) for name in ("train", "val"))
    n_val = segments.loc[segments["split"] == "val", "video_id"].nunique()
    if n_val < SMALL_VALIDATION_VIDEOS:
        log(
            f"warning: only {n_val} validation videos (fewer than {SMALL_VALIDATION_VIDEOS}): the validation "
            "loss early stopping reads is noisy; raise dataset.split.val or add videos"
        )
    if training["segments"] == "first" and not model_cfg["temporal"]["enabled"]:
        train, val = first_segments(train, segments), first_segments(val, segments)
    features = Features(audio_features, video_features, device)
    init_stream, batch_stream, view_stream, val_stream, ae_stream = seed_streams(seed, 5)
    batch_rng, view_rng = np.random.default_rng(batch_stream), np.random.default_rng(view_stream)
    n_views = video_features.shape[1]

    def train_views(rows: np.ndarray) -> np.ndarray:
        return view_rng.integers(n_views, size=len(rows))

    with fork_rng(device):
        torch.manual_seed(torch_seed(init_stream))
        model = ContrastiveModel(
            audio_features.shape[1], video_features.shape[2], model_cfg, cfg["loss"], per_video
        ).to(device)
        if model_cfg["init"] == "autoencoder" and init_states is None:
            init_states = pretrain_autoencoders(replace(run, seed=torch_seed(ae_stream)))
        for modality, state in (init_states or {}).items():
            model.heads[modality].load_state_dict(state)
        optimizer = Adam(model.parameters(), training["lr"])

        def make_batches(split: Split, rng: np.random.Generator, all_segments: bool) -> list[np.ndarray]:
            if model.temporal:
                return video_batches(len(split.slots), training["batch_size"], per_video, rng)
            return segment_batches(split.rows, split.video_codes, training["batch_size"], all_segments, rng)

        val_batches = make_batches(val, np.random.default_rng(val_stream), all_segments=True)
        if not val_batches:
            raise ValueError(
                "segments: the 'val' split has no batch of 2 or more videos; early stopping needs one"
            )
        history, stopping = [], EarlyStopping(training["patience"], training["min_epochs"])
        first_epoch, stopped = 0, False
        if state_path is not None and Path(state_path).exists():
            state = torch.load(state_path, map_location=device, weights_only=False)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            stopping.load_state_dict(state["stopping"])
            batch_rng.bit_generator.state, view_rng.bit_generator.state = (
                state["batch_rng"],
                state["view_rng"],
            )
            _set_torch_rng(state["torch_rng"], device)
            history, first_epoch, stopped = state["history"], state["epoch"] + 1, state["stopped"]
            log(f"resumed from {state_path} after epoch {state['epoch']}")
        last_write = time.perf_counter()
        for epoch in range(first_epoch, 0 if stopped else training["max_epochs"]):
            start, lr = time.perf_counter(), optimizer.lr
            model.train()
            batches = make_batches(train, batch_rng, all_segments=training["segments"] == "all")
            train_loss, train_chance, train_floor = _epoch(
                model, features, batches, cfg, train, train_views, optimizer
            )
            model.eval()
            with torch.no_grad():
                val_loss, val_chance, val_floor = _epoch(model, features, val_batches, cfg, val, view_zero)
            optimizer.lr = scheduled_lr(training, lr, epoch + 1)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "lr": lr,
                    "seconds": time.perf_counter() - start,
                    "temperature": model.temperature().item(),
                    "train_chance": train_chance,
                    "train_floor": train_floor,
                    "val_chance": val_chance,
                    "val_floor": val_floor,
                    "threads": torch.get_num_threads(),
                }
            )
            log(
                f"epoch {epoch}: train {train_loss:.4f} val {val_loss:.4f} (chance {val_chance:.4f}) lr {lr:.3g}"
            )
            stopped = stopping.step(epoch, val_loss, model)
            due = (
                time.perf_counter() - last_write >= state_every_s
                or stopped
                or epoch + 1 == training["max_epochs"]
            )
            if state_path is not None and due:
                last_write = time.perf_counter()
                _save_state(
                    state_path,
                    epoch,
                    stopped,
                    model,
                    optimizer,
                    stopping,
                    history,
                    batch_rng,
                    view_rng,
                    device,
                )
            if stopped:
                log(f"early stop after epoch {epoch}; best epoch {stopping.best_epoch}")
                break
    if stopping.best_state is None:
        raise RuntimeError("the validation loss was never finite; check the features and the learning rate")
    model.load_state_dict(stopping.best_state)
    return TrainResult(model, pd.DataFrame(history), stopping.best_epoch, dropped)


def _torch_rng(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_torch_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _save_state(
    path, epoch, stopped, model, optimizer, stopping, history, batch_rng, view_rng, device
) -> None:
    """The run after `epoch`: all `train_heads` needs to continue it as if it had never stopped."""
    state = {
        "epoch": epoch,
        "stopped": stopped,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "stopping": stopping.state_dict(),
        "history": history,
        "batch_rng": batch_rng.bit_generator.state,
        "view_rng": view_rng.bit_generator.state,
        "torch_rng": _torch_rng(device),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
