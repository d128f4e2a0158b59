"""Downstream probes of study Table 2: genre classification and MSD-overlap tagging on frozen representations.

A representation (musicnn, R(2+1)D, both, or the contrastive embeddings CL_a, CL_v, CL_agg) is averaged over
a video's segments (`video_level`), standardised with train statistics, and fed to the study's probe: an MLP
D -> 512 -> 256 -> out with ReLU and dropout. Genre is multi-class (softmax cross-entropy), tagging is
multi-label (sigmoid binary cross-entropy). The probe trains on the train split, stops early on validation
loss and is scored on the test split: ROC-AUC (macro; one-vs-rest for genre), F1 (macro; genre by argmax,
tagging with per-tag thresholds chosen on validation, or 0.5 with `probe.f1_threshold: 0.5`) and, for tagging,
PR-AUC (macro average precision).

Test data never shapes the probe: the scaler is fitted on the train split, early stopping and F1 thresholds
use the validation split. A segment-level probe (`probe.level: segment`) trains on segments but is scored per
video, on the mean of its segments' predictions, so that every Table 2 number and interval is over test videos.
Each result keeps every seed's test predictions (`predictions`), from which the report bootstraps intervals.

Degenerate cases never crash and never give a silent NaN: a label without a training video (`untrained`) or
absent from the test split is left out of the macro averages and listed under `excluded`; a tag whose F1
threshold fell back to 0.5 (no positive validation video) is named under `threshold_fallbacks`; an undefined
metric is NaN with its reason in `nan_reasons`; every such decision is also issued as a `ProbeWarning` and
listed under `warnings`.
"""

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mvcl.device import pick_device
from mvcl.learn.stopping import EarlyStopping
from mvcl.probe.data import (
    LEVELS,
    SPLITS,
    VideoLevel,
    check_task,
    note,
    task_labels,
)
from mvcl.probe.metrics import (
    METRICS,
    empty_metrics,
    f1_thresholds,
    genre_metrics,
    tagging_metrics,
    undefined,
)
from mvcl.rng import fork_rng
from mvcl.stats import video_codes

# Defaults of the `probe` config section (schemas/config.schema.yaml); dropout and batch_size have no key yet.
PROBE_DEFAULTS: dict[str, Any] = {
    "hidden": [512, 256],
    "lr": 0.001,
    "max_epochs": 200,
    "patience": 10,
    "repeats": 5,
    "dropout": 0.3,
    "batch_size": 256,
    "top_tags": 10,
    "min_tag_count": 0.0,
    "level": "video",
    "f1_threshold": "validation",
}
F1_THRESHOLDS = ("validation", 0.5)


class ProbeMLP(nn.Module):
    """The study's probe (Table 2): D -> hidden[0] -> hidden[1] -> out, ReLU and dropout after each hidden layer."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # logits [batch, out]


# --- from segments to videos -------------------------------------------------------------------------------


# --- labels --------------------------------------------------------------------------------------------------


# --- metrics -------------------------------------------------------------------------------------------------


# --- training ------------------------------------------------------------------------------------------------


def probe_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `probe` config section with defaults filled in (unknown keys are kept, bad values refused)."""
    settings = {**PROBE_DEFAULTS, **cfg}
    for key in ("max_epochs", "patience", "repeats", "batch_size"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise ValueError(f"probe.{key} must be a positive integer, got {settings[key]!r}")
    if not all(isinstance(width, int) and width > 0 for width in settings["hidden"]):
        raise ValueError(f"probe.hidden must list positive integers, got {settings['hidden']!r}")
    if not 0 <= settings["dropout"] < 1:
        raise ValueError(f"probe.dropout must lie in [0, 1), got {settings['dropout']!r}")
    if settings["level"] not in LEVELS:
        raise ValueError(f"probe.level must be one of {LEVELS}, got {settings['level']!r}")
    if settings["f1_threshold"] not in F1_THRESHOLDS:
        raise ValueError(
            f"probe.f1_threshold must be one of {F1_THRESHOLDS}, got {settings['f1_threshold']!r}"
        )
    return settings


def run_probe(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    task: str,
    cfg: dict[str, Any],
    seed: int,
    device: str | torch.device = "auto",
    label_names: Sequence[str] | None = None,
    video_ids: Sequence[str] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Train one probe on the train split, stop early on validation loss, score it on the test split.

    genre: `y` is one class label per row (any sortable values; classes are its sorted unique values).
    tagging: `y` is a 0/1 matrix [n, k] with column names `label_names`. `cfg` is the `probe` config section.
    `video_ids` names each row's video (default: each row is its own video); rows of one video train as
    separate examples and their validation and test predictions are averaged per video.
    Same seed, same numbers on CPU. Returns metrics (see `genre_metrics`, `tagging_metrics`), the split sizes
    (rows) and n_test_videos, n_classes, training history, every warning raised on the way, and `predictions`:
    the test videos (`video_ids`), their `targets` (genre: class index; tagging: 0/1 per tag), this run's
    `scores` [videos, labels] and tagging's F1 `thresholds` (None when the probe could not train).
    """
    check_task(task)
    settings = probe_settings(cfg)
    device = pick_device(str(device))
    X = np.asarray(X, dtype=np.float32)
    split = np.asarray(split).astype(str)
    if X.ndim != 2 or len(X) != len(y) or len(X) != len(split):
        raise ValueError(f"run_probe: X {X.shape}, y ({len(y)}) and split ({len(split)}) must be row-aligned")
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad_rows):
        raise ValueError(f"run_probe: X row {bad_rows[0]} is not finite; video_level drops such segments")
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise ValueError(f"run_probe: split values must be one of {SPLITS}, found {unknown}")
    video_ids = np.arange(len(X)).astype(str) if video_ids is None else np.asarray(video_ids).astype(str)
    if len(video_ids) != len(X):
        raise ValueError(f"run_probe: {len(video_ids)} video_ids for {len(X)} rows")

    notes: list[str] = []
    targets, names, untrained = _encode_targets(task, y, split, label_names, notes)
    sizes = {f"n_{name}": int((split == name).sum()) for name in SPLITS}
    sizes["n_test_videos"] = len(np.unique(video_ids[split == "test"]))
    result: dict[str, Any] = {"task": task, "seed": seed, **sizes, "n_classes": len(names), "labels": names}
    result.update(untrained=list(untrained), threshold_fallbacks=[])
    reason = _cannot_train(task, names, sizes)
    if reason:
        note(notes, reason)
        metrics = undefined(empty_metrics(task), reason, METRICS[task])
        return {
            **result,
            **metrics,
            "warnings": notes,
            "epochs": 0,
            "best_epoch": 0,
            "best_val_loss": math.nan,
            "predictions": None,
        }

    parts = {name: split == name for name in SPLITS}
    # Scaler fitted on the train split only; constant features are centred, not scaled.
    mean, std = (
        X[parts["train"]].mean(axis=0, dtype=np.float64),
        X[parts["train"]].std(axis=0, dtype=np.float64),
    )
    standardised = (X - mean.astype(np.float32)) / np.where(std > 1e-12, std, 1.0).astype(np.float32)
    x = {
        name: torch.as_tensor(standardised[rows], dtype=torch.float32, device=device)
        for name, rows in parts.items()
    }
    target_dtype = torch.long if task == "genre" else torch.float32
    t = {
        name: torch.as_tensor(targets[rows], dtype=target_dtype, device=device)
        for name, rows in parts.items()
    }
    if sizes["n_val"] == 0:
        note(notes, f"the validation split is empty: no early stopping, {settings['max_epochs']} epochs")

    model, history = _fit(x, t, task, len(names), settings, seed, device)
    scored = {
        name: _per_video(video_ids[parts[name]], targets[parts[name]], _predict(model, x[name], task))
        for name in ("val", "test")
    }
    test_ids, test_targets, test_scores = scored["test"]
    thresholds = None
    if task == "genre":
        metrics = genre_metrics(test_targets, test_scores, names, untrained)
    else:
        if settings["f1_threshold"] == "validation":
            _, val_targets, val_scores = scored["val"]
            thresholds, threshold_notes = f1_thresholds(val_targets, val_scores, names)
            notes += threshold_notes
            result["threshold_fallbacks"] = [names[j] for j in np.flatnonzero(~val_targets.any(axis=0))]
        else:
            thresholds = np.full(len(names), float(settings["f1_threshold"]))
        metrics = tagging_metrics(test_targets, test_scores, thresholds, names, untrained)
    notes += metrics.pop("warnings")
    predictions = {
        "video_ids": test_ids.tolist(),
        "targets": test_targets.astype(int).tolist(),
        "scores": test_scores.tolist(),
        "thresholds": None if thresholds is None else thresholds.tolist(),
    }
    return {**result, **metrics, **history, "warnings": notes, "predictions": predictions}


def run_probe_repeats(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`probe.repeats` runs of `run_probe` (same arguments) with seeds seed, seed+1, ...; per-run results and
    mean/std per metric.

    The split is the same for every run (it is by video); seeds change initialisation, dropout and batch order.
    std is the population standard deviation over runs (0 for a single run); a NaN metric stays NaN.
    """
    arguments = inspect.signature(run_probe).bind(*args, **kwargs)
    arguments.apply_defaults()
    given = arguments.arguments
    repeats, task = probe_settings(given["cfg"])["repeats"], given["task"]
    runs = [run_probe(**{**given, "seed": given["seed"] + i}) for i in range(repeats)]
    first = runs[0]
    summary: dict[str, Any] = {
        key: first[key]
        for key in ("task", "n_train", "n_val", "n_test", "n_test_videos", "n_classes", "labels")
    }
    summary.update(repeats=repeats, seeds=[run["seed"] for run in runs])
    summary["mean"] = {metric: float(np.mean([run[metric] for run in runs])) for metric in METRICS[task]}
    summary["std"] = {metric: float(np.std([run[metric] for run in runs])) for metric in METRICS[task]}
    summary["excluded"] = first["excluded"]
    summary["untrained"] = first["untrained"]  # the split is the same for every seed
    summary["threshold_fallbacks"] = first["threshold_fallbacks"]
    summary["nan_reasons"] = first["nan_reasons"]
    # Test videos and targets once, every seed's scores and thresholds: what Table 2's intervals resample.
    predictions = [run.pop("predictions") for run in runs]
    summary["predictions"] = predictions[0] and {
        "video_ids": predictions[0]["video_ids"],
        "targets": predictions[0]["targets"],
        "scores": [p["scores"] for p in predictions],
        "thresholds": [p["thresholds"] for p in predictions],
    }
    summary["runs"] = runs
    return summary


def probe_task(
    task: str,
    representation: VideoLevel,
    videos: pd.DataFrame,
    cfg: dict[str, Any],
    seed: int,
    device: str | torch.device = "auto",
    tags: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One Table 2 cell: label the rows of `representation` for `task`, then `run_probe_repeats`.

    The tagging task is the `probe.top_tags` most frequent tags among the training videos with Last.fm
    weight at least `probe.min_tag_count` (`tag_matrix`).
    """
    settings = probe_settings(cfg)
    train_ids = representation.video_ids[representation.split == "train"]
    labels = task_labels(
        task,
        representation.video_ids,
        videos,
        tags,
        settings["top_tags"],
        settings["min_tag_count"],
        train_ids=train_ids,
    )
    result = run_probe_repeats(
        representation.X[labels.mask],
        labels.y,
        representation.split[labels.mask],
        task,
        cfg,
        seed,
        device,
        label_names=labels.label_names if task == "tagging" else None,
        video_ids=representation.video_ids[labels.mask],
    )
    return {
        "n_videos": len(np.unique(representation.video_ids)),
        "n_labelled": len(np.unique(representation.video_ids[labels.mask])),
        "level": settings["level"],
        **result,
    }


def _encode_targets(
    task: str, y: np.ndarray, split: np.ndarray, label_names: Sequence[str] | None, notes: list[str]
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Targets as the probe's arrays, the label names, and the labels it cannot learn (name -> reason)."""
    untrained: dict[str, str] = {}
    y = np.asarray(y)
    if task == "genre":
        if y.ndim != 1:
            raise ValueError(f"run_probe: genre labels must be one per row, got shape {y.shape}")
        if pd.isna(y).any():
            raise ValueError(
                "run_probe: genre labels contain missing values; leave unlabelled videos out (task_labels)"
            )
        classes, codes = np.unique(y, return_inverse=True)
        names = [str(c) for c in classes]
        for c, name in enumerate(names):
            total, in_train = int((codes == c).sum()), int((codes[split == "train"] == c).sum())
            if in_train == 0:
                untrained[name] = "no training video"
                note(notes, f"genre class {name!r} has no training video; left out of the macro averages")
            elif total == 1:
                note(notes, f"genre class {name!r} has a single video; its scores are noise")
        return codes, names, untrained
    if y.ndim != 2 or not np.isin(y, (0, 1)).all():
        raise ValueError(f"run_probe: tagging labels must be a 0/1 matrix [n, tags], got shape {y.shape}")
    names = list(label_names) if label_names is not None else [f"tag{j}" for j in range(y.shape[1])]
    if len(names) != y.shape[1]:
        raise ValueError(f"run_probe: {len(names)} label_names for {y.shape[1]} tag columns")
    for j in np.flatnonzero(~y[split == "train"].any(axis=0)):
        untrained[names[j]] = "no positive training video"
        note(notes, f"tag {names[j]!r} has no positive training video; left out of the macro averages")
    return y.astype(np.float32), names, untrained


def _cannot_train(task: str, names: list[str], sizes: dict[str, int]) -> str:
    if task == "genre" and len(names) < 2:
        return f"fewer than 2 genre classes among the labelled videos ({names}); nothing to classify"
    if task == "tagging" and not names:
        return "no tag in the MSD-overlap set; nothing to predict"
    if sizes["n_train"] == 0:
        return "the train split holds no labelled video"
    if sizes["n_test"] == 0:
        return "the test split holds no labelled video"
    return ""


def _fit(
    x: dict[str, torch.Tensor],
    t: dict[str, torch.Tensor],
    task: str,
    n_out: int,
    settings: dict[str, Any],
    seed: int,
    device: torch.device,
) -> tuple[nn.Module, dict[str, Any]]:
    """Adam on minibatches of the train split; keep the weights of the best validation loss."""
    loss_fn = nn.CrossEntropyLoss() if task == "genre" else nn.BCEWithLogitsLoss()
    # Seeds stay local: the global RNG is restored on exit, so probes do not disturb each other.
    with fork_rng(device):
        torch.manual_seed(seed)
        order_rng = torch.Generator().manual_seed(seed)
        model = ProbeMLP(x["train"].shape[1], settings["hidden"], n_out, settings["dropout"]).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
        stopping, epoch = EarlyStopping(settings["patience"]), 0
        for epoch in range(1, settings["max_epochs"] + 1):
            model.train()
            for batch in torch.randperm(len(x["train"]), generator=order_rng).split(settings["batch_size"]):
                batch = batch.to(device)
                loss = loss_fn(model(x["train"][batch]), t["train"][batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if len(x["val"]) == 0:
                continue
            model.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(model(x["val"]), t["val"]))
            if stopping.step(epoch, val_loss, model):
                break
    if stopping.best_state is not None:
        model.load_state_dict(stopping.best_state)
    model.eval()
    best_loss = stopping.best_loss if stopping.best_state is not None else math.nan
    return model, {"epochs": epoch, "best_epoch": stopping.best_epoch or epoch, "best_val_loss": best_loss}


def _per_video(
    video_ids: np.ndarray, targets: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(videos in order of appearance, one target per video, the mean score of each video's rows)."""
    videos, codes = video_codes(video_ids)
    counts = np.bincount(codes, minlength=len(videos))
    sums = np.zeros((len(videos), scores.shape[1]))
    np.add.at(sums, codes, scores)
    first = np.unique(codes, return_index=True)[1]  # each video's first row
    return videos, targets[first], sums / np.maximum(counts, 1)[:, None]


def _predict(model: nn.Module, x: torch.Tensor, task: str, chunk: int = 8192) -> np.ndarray:
    """Class probabilities (genre, softmax) or tag scores (tagging, sigmoid) as float64 numpy."""
    with torch.no_grad():
        logits = torch.cat([model(part) for part in x.split(chunk)]) if len(x) else model(x)
    scores = logits.softmax(dim=1) if task == "genre" else logits.sigmoid()
    return scores.double().cpu().numpy()


