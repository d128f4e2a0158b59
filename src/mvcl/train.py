"""Training the projection heads on frozen segment features (study section 4), top to bottom in `train_heads`.

Data. `audio_features` [n, Da] and `video_features` [n, V, Dv] (V crop views; a [n, Dv] array is one view)
are row-aligned with `segments` (columns video_id, segment, split) and may be memory-mapped `.npy` files:
only the rows of one batch are read (sorted indices), and the finiteness check scans them in fixed-size
chunks, so memory stays flat whatever n. Training rows use a random view per segment and epoch (the crops are
the augmentation); validation and test rows hold the centre crop in every view slot, so they use view 0.

Batches. `training.segments: one` takes one random segment per video and epoch (their code always took the
first); `all` takes every segment. Segments of one video never share a batch (study section 4): each video's
segments are put in a random order, the k-th segment of every video forms layer k, and each layer is split
into ceil(len / batch_size) nearly equal batches. When a split has fewer videos than `batch_size`, a batch
is one segment of every video. A batch of one pair (possible only in a sparse last layer) is skipped: neither
batch norm nor the contrastive loss is defined on it. The validation loss uses every validation segment in
batches made once from the seed, so it is comparable from epoch to epoch.

Determinism. Every random choice (initialisation, dropout, batches, views) derives from `seed` through
numpy SeedSequence streams and a forked torch RNG, so the caller's global RNG state is untouched and on CPU
the same inputs and seed give bit-identical weights. CUDA kernels are not bit-reproducible.

`model.temporal` trains on whole videos instead (`training.segments` does not apply): a batch holds
`batch_size // segments_per_video` videos, the loss is the contrastive loss over all their present segments (a segment's other-video and same-video
segments are its negatives, as in MVPt) plus `video_loss_weight` times the loss over the video embeddings.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mvcl.loss import chance_loss, contrastive_loss, loss_floor
from mvcl.model import Autoencoder, ContrastiveModel, heads_kwargs, video_embedding

# Bytes per chunk when scanning all rows of a (memory-mapped) feature file for non-finite values.
_CHUNK_BYTES = 1 << 24
SEGMENT_COLUMNS = ("video_id", "segment", "split")


@dataclass
class TrainResult:
    """The trained model (best validation epoch restored) and what happened on the way."""

    model: ContrastiveModel
    history: pd.DataFrame  # one row per epoch: epoch, train_loss, val_loss, lr, seconds, temperature, bounds
    best_epoch: int
    dropped_rows: int  # segments left out for non-finite features


def as_views(video_features: np.ndarray) -> np.ndarray:
    """[n, V, Dv] as is; [n, Dv] as [n, 1, Dv] (a view of the same memory, nothing is read)."""
    return video_features if video_features.ndim == 3 else video_features[:, None, :]


def finite_rows(features: np.ndarray) -> np.ndarray:
    """[n] bool: rows whose every value is finite, scanned in chunks of about 16 MiB."""
    row_bytes = max(1, features[:1].nbytes)
    chunk = max(1, _CHUNK_BYTES // row_bytes)
    finite = np.empty(len(features), dtype=bool)
    for start in range(0, len(features), chunk):
        block = np.asarray(features[start : start + chunk])
        finite[start : start + chunk] = np.isfinite(block).reshape(len(block), -1).all(axis=1)
    return finite


def _seed_streams(seed: int, n: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(n)


def _torch_seed(stream: np.random.SeedSequence) -> int:
    return int(stream.generate_state(1, dtype=np.uint64)[0] >> 1)


def _fork_rng(device: torch.device) -> AbstractContextManager:
    """Fork torch's RNG (CPU, and the CUDA device in use) so seeding it leaves the caller's state alone."""
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


def segment_batches(
    rows: np.ndarray, video_codes: np.ndarray, batch_size: int, all_segments: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of feature rows (each sorted) in which no video appears twice; see the module docstring."""
    n = len(rows)
    by_video = np.lexsort((rng.random(n), video_codes))  # grouped by video, random order inside each
    codes = video_codes[by_video]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # first position of each video
    rank = np.empty(n, dtype=np.int64)  # position of each row in its video's random order
    rank[by_video] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    batches = []
    for layer in range(rank.max() + 1 if all_segments else 1):
        members = rows[rank == layer]
        members = members[rng.permutation(len(members))]
        parts = np.array_split(members, math.ceil(len(members) / batch_size))
        batches += [np.sort(part) for part in parts if len(part) >= 2]
    return [batches[i] for i in rng.permutation(len(batches))]


def video_batches(
    n_videos: int, batch_size: int, segments_per_video: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of video indices for the temporal model: `batch_size` counts segments, at least 2 videos."""
    per_batch = max(2, batch_size // segments_per_video)
    order = rng.permutation(n_videos)
    parts = np.array_split(order, math.ceil(n_videos / per_batch))
    return [np.sort(part) for part in parts if len(part) >= 2]


def view_zero(rows: np.ndarray) -> np.ndarray:
    """View 0 for every row: validation and test rows hold the centre crop in every view slot."""
    return np.zeros(len(rows), dtype=np.int64)


def _read(features: np.ndarray, rows: np.ndarray, views: np.ndarray | None = None) -> np.ndarray:
    """float32 copy of `rows` (sorted) and, for video, one view per row; only these rows are read."""
    block = features[rows] if views is None else features[rows, views]
    return np.asarray(block, dtype=np.float32)


@dataclass
class _Split:
    """The finite rows of one split, and for the temporal model its [videos, S] table of rows (-1 = missing)."""

    rows: np.ndarray
    video_codes: np.ndarray
    slots: np.ndarray


def _split(segments: pd.DataFrame, keep: np.ndarray, name: str, segments_per_video: int) -> _Split:
    rows = np.flatnonzero(keep & (segments["split"].to_numpy() == name))
    if len(rows) < 2:
        raise ValueError(
            f"segments: {len(rows)} {name!r} rows with finite features; training needs at least 2"
        )
    video_codes, _ = pd.factorize(segments["video_id"].to_numpy()[rows])
    slots = np.full((video_codes.max() + 1, segments_per_video), -1, dtype=np.int64)
    slots[video_codes, segments["segment"].to_numpy()[rows]] = rows
    return _Split(rows, video_codes, slots)


@dataclass
class _Features:
    audio: np.ndarray  # [n, Da]
    video: np.ndarray  # [n, V, Dv]
    device: torch.device

    def flat(self, rows: np.ndarray, views: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, Da], [B, Dv] for sorted `rows`, video view `views[i]` for row i."""
        audio = torch.from_numpy(_read(self.audio, rows)).to(self.device)
        video = torch.from_numpy(_read(self.video, rows, views)).to(self.device)
        return audio, video

    def sequences(
        self, slots: np.ndarray, view_of: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[N, S, Da], [N, S, Dv], present [N, S] for a [N, S] table of rows (-1 = missing segment)."""
        present = slots >= 0
        order = np.argsort(slots[present])  # read in file order, then put back in table order
        rows = slots[present][order]
        audio_rows, video_rows = self.flat(rows, view_of(rows))
        audio = audio_rows.new_zeros(*slots.shape, audio_rows.shape[1])
        video = video_rows.new_zeros(*slots.shape, video_rows.shape[1])
        mask = torch.from_numpy(present).to(self.device)
        flat_index = torch.from_numpy(np.argsort(order)).to(self.device)
        audio[mask], video[mask] = audio_rows[flat_index], video_rows[flat_index]
        return audio, video, mask


def _bounds(
    sizes: list[int], loss_cfg: dict, output_activation: str, temperature: float
) -> tuple[float, float]:
    """Chance and floor of the summed loss terms of one batch, for the pair counts in `sizes`."""
    args = {"exclude_positive": loss_cfg["exclude_positive"], "reduction": loss_cfg["reduction"]}
    chance = sum(chance_loss(b, **args) for b in sizes)
    floor = sum(loss_floor(b, temperature, output_activation, **args) for b in sizes)
    return chance, floor


def _batch_loss(
    model: ContrastiveModel, features: _Features, batch: np.ndarray, cfg: dict, split: _Split, view_of
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


def _scheduler(optimizer: torch.optim.Optimizer, training: dict) -> torch.optim.lr_scheduler.LRScheduler:
    """Learning rate per epoch: the paper's exponential decay (γ), or their code's cosine annealing to min_lr."""
    if training["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, training["max_epochs"], training["min_lr"]
        )
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, training["gamma"])


def train_heads(
    audio_features: np.ndarray,
    video_features: np.ndarray,
    segments: pd.DataFrame,
    cfg: dict,
    seed: int,
    device: torch.device | str,
    log: Callable[[str], None] = print,
    init_states: dict[str, dict] | None = None,
) -> TrainResult:
    """Train both heads of configuration `cfg` (resolve_configuration's output) with early stopping.

    `init_states` ({"audio"|"video": encoder state dict}) starts the heads from pre-trained autoencoders; with
    `model.init: autoencoder` and no `init_states` they are trained here first (`pretrain_autoencoders`).
    """
    model_cfg, training, device = cfg["model"], cfg["training"], torch.device(device)
    video_features = as_views(video_features)
    _check_inputs(audio_features, video_features, segments)
    keep = finite_rows(audio_features) & finite_rows(video_features)
    dropped = int((~keep).sum())
    if dropped:
        log(f"dropped {dropped} of {len(keep)} segments with non-finite audio or video features")
    segments_per_video = int(segments["segment"].max()) + 1
    train, val = (_split(segments, keep, name, segments_per_video) for name in ("train", "val"))
    features = _Features(audio_features, video_features, device)
    init_stream, batch_stream, view_stream, val_stream, ae_stream = _seed_streams(seed, 5)
    batch_rng, view_rng = np.random.default_rng(batch_stream), np.random.default_rng(view_stream)
    n_views = video_features.shape[1]

    def train_views(rows: np.ndarray) -> np.ndarray:
        return view_rng.integers(n_views, size=len(rows))

    with _fork_rng(device):
        torch.manual_seed(_torch_seed(init_stream))
        model = ContrastiveModel(
            audio_features.shape[1], video_features.shape[2], model_cfg, cfg["loss"], segments_per_video
        ).to(device)
        if model_cfg["init"] == "autoencoder" and init_states is None:
            init_states = pretrain_autoencoders(
                audio_features, video_features, segments, cfg, _torch_seed(ae_stream), device, log
            )
        for modality, state in (init_states or {}).items():
            model.heads[modality].load_state_dict(state)
        optimizer = torch.optim.Adam(model.parameters(), lr=training["lr"])
        scheduler = _scheduler(optimizer, training)

        def make_batches(split: _Split, rng: np.random.Generator, all_segments: bool) -> list[np.ndarray]:
            if model.temporal:
                return video_batches(len(split.slots), training["batch_size"], segments_per_video, rng)
            return segment_batches(split.rows, split.video_codes, training["batch_size"], all_segments, rng)

        val_batches = make_batches(val, np.random.default_rng(val_stream), all_segments=True)
        if not val_batches:
            raise ValueError(
                "segments: the 'val' split has no batch of 2 or more videos; early stopping needs one"
            )
        history, best_loss, best_state, best_epoch, stale = [], math.inf, None, -1, 0
        for epoch in range(training["max_epochs"]):
            start, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            model.train()
            batches = make_batches(train, batch_rng, all_segments=training["segments"] == "all")
            train_loss, train_chance, train_floor = _epoch(
                model, features, batches, cfg, train, train_views, optimizer
            )
            model.eval()
            with torch.no_grad():
                val_loss, val_chance, val_floor = _epoch(model, features, val_batches, cfg, val, view_zero)
            scheduler.step()
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
                }
            )
            log(
                f"epoch {epoch}: train {train_loss:.4f} val {val_loss:.4f} (chance {val_chance:.4f}) lr {lr:.3g}"
            )
            if val_loss < best_loss:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= training["patience"]:  # study: stop after 3 epochs without validation gain
                    log(f"early stop after epoch {epoch}; best epoch {best_epoch}")
                    break
    if best_state is None:
        raise RuntimeError("the validation loss was never finite; check the features and the learning rate")
    model.load_state_dict(best_state)
    return TrainResult(model, pd.DataFrame(history), best_epoch, dropped)


def _check_inputs(audio_features: np.ndarray, video_features: np.ndarray, segments: pd.DataFrame) -> None:
    missing = [c for c in SEGMENT_COLUMNS if c not in segments.columns]
    if missing:
        raise ValueError(f"segments: missing columns {missing}; expected {list(SEGMENT_COLUMNS)}")
    if not len(audio_features) == len(video_features) == len(segments):
        raise ValueError(
            f"features and segments must be row-aligned: audio {len(audio_features)}, "
            f"video {len(video_features)}, segments {len(segments)} rows"
        )


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
    with _fork_rng(device):
        torch.manual_seed(seed)
        autoencoder = Autoencoder(head).to(device).train()
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
        for epoch in range(epochs):
            order = rng.permutation(rows)
            total = 0.0
            for part in np.array_split(order, math.ceil(len(order) / batch_size)):
                if len(part) < 2:  # batch norm needs two rows
                    continue
                batch = torch.from_numpy(_read(features, np.sort(part))).to(device)  # [B, in_dim]
                loss = torch.nn.functional.mse_loss(autoencoder(batch), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(part)
            log(f"autoencoder {head['in_dim']}→{head['out_dim']} epoch {epoch}: mse {total / len(rows):.5f}")
    return {key: value.detach().cpu() for key, value in autoencoder.encoder.state_dict().items()}


def pretrain_autoencoders(
    audio_features: np.ndarray,
    video_features: np.ndarray,
    segments: pd.DataFrame,
    cfg: dict,
    seed: int,
    device: torch.device | str,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, torch.Tensor]]:
    """{"audio"|"video": encoder state dict} for `model.init: autoencoder`, on the finite training rows.

    Video uses view 0 (a random crop for training rows). The single-head variant's audio side has no
    parameters and gets none. Epochs, batch size and learning rate come from `training`.
    """
    video_features = as_views(video_features)
    training = cfg["training"]
    keep = finite_rows(audio_features) & finite_rows(video_features)
    rows = np.flatnonzero(keep & (segments["split"].to_numpy() == "train"))
    heads = heads_kwargs(audio_features.shape[1], video_features.shape[2], cfg["model"])
    sources = {"audio": audio_features, "video": video_features[:, 0]}
    seeds = {"audio": seed, "video": seed + 1}
    return {
        modality: train_autoencoder(
            sources[modality],
            head,
            training["autoencoder_epochs"],
            seeds[modality],
            device,
            rows,
            training["batch_size"],
            training["lr"],
            log,
        )
        for modality, head in heads.items()
        if head is not None
    }


@torch.no_grad()
def embed(
    model: ContrastiveModel,
    audio_features: np.ndarray,
    video_features: np.ndarray,
    device: torch.device | str,
    batch: int = 4096,
    segments: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row-aligned embeddings (eval mode, video view 0): audio [n, d], video [n, d], float32.

    Rows with non-finite features get NaN embeddings, so retrieval and probes must drop them. The temporal
    model needs `segments` (video_id, segment) to put each video's segments in sequence.
    """
    video_features, device = as_views(video_features), torch.device(device)
    model = model.to(device).eval()
    n = len(audio_features)
    audio_emb = np.full((n, model.embedding_dim), np.nan, dtype=np.float32)
    video_emb = np.full((n, model.embedding_dim), np.nan, dtype=np.float32)
    keep = finite_rows(audio_features) & finite_rows(video_features)
    features = _Features(audio_features, video_features, device)
    if model.temporal:
        if segments is None:
            raise ValueError("embed: the temporal model needs `segments` to order each video's segments")
        everything = segments.assign(split="all")
        table = _split(everything, keep, "all", model.segments_per_video).slots  # [videos, S] rows
        per_chunk = max(1, batch // model.segments_per_video)
        for start in range(0, len(table), per_chunk):
            slots = table[start : start + per_chunk]
            audio, video, present = features.sequences(slots, view_zero)
            audio_out, video_out = model(audio, video, present)  # [N, S, d]
            rows = slots[slots >= 0]  # table order, as audio_out[present]
            audio_emb[rows] = audio_out[present].cpu().numpy()
            video_emb[rows] = video_out[present].cpu().numpy()
        return audio_emb, video_emb
    rows = np.flatnonzero(keep)
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        audio_out, video_out = model(*features.flat(part, view_zero(part)))  # [B, d]
        audio_emb[part], video_emb[part] = audio_out.cpu().numpy(), video_out.cpu().numpy()
    return audio_emb, video_emb


def save_heads(
    path: str | Path, model: ContrastiveModel, resolved_cfg: dict, extra: dict | None = None
) -> None:
    """Write weights, the resolved configuration and the feature sizes to `path` (atomically)."""
    checkpoint = {
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "config": resolved_cfg,
        "audio_dim": model.audio_dim,
        "video_dim": model.video_dim,
        "segments_per_video": model.segments_per_video,
        "extra": extra or {},
    }
    partial = Path(f"{path}.partial")
    torch.save(checkpoint, partial)
    os.replace(partial, path)


def load_heads(path: str | Path, device: torch.device | str = "cpu") -> tuple[ContrastiveModel, dict]:
    """The model saved by `save_heads` (eval mode, on `device`) and the whole checkpoint dict."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    cfg = checkpoint["config"]
    model = ContrastiveModel(
        checkpoint["audio_dim"],
        checkpoint["video_dim"],
        cfg["model"],
        cfg["loss"],
        checkpoint["segments_per_video"],
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint
