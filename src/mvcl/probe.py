"""Downstream probes of study Table 2: genre classification and MSD-overlap tagging on frozen representations.

A representation (musicnn, R(2+1)D, both, or the contrastive embeddings CL_a, CL_v, CL_agg) is averaged over
a video's segments (`video_level`), standardised with train statistics, and fed to the study's probe: an MLP
D -> 512 -> 256 -> out with ReLU and dropout. Genre is multi-class (softmax cross-entropy), tagging is
multi-label (sigmoid binary cross-entropy). The probe trains on the train split, stops early on validation
loss and is scored on the test split: ROC-AUC (macro; one-vs-rest for genre), F1 (macro; genre by argmax,
tagging with per-tag thresholds chosen on validation) and, for tagging, PR-AUC (macro average precision).

Degenerate cases never crash and never give a silent NaN: a label absent from the test split is left out of
the macro averages and listed under `excluded`; an undefined metric is NaN with its reason in `nan_reasons`;
every such decision is also issued as a `ProbeWarning` and listed under `warnings`.
"""

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse
import torch
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score
from torch import nn

from mvcl.configuration import pick_device
from mvcl.tags import tag_matrix

TASKS = ("genre", "tagging")
SPLITS = ("train", "val", "test")
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
}
METRICS = {"genre": ("roc_auc", "f1", "accuracy"), "tagging": ("roc_auc", "f1", "pr_auc")}
# Which segment arrays each representation of Table 2 reads, and how two of them combine per segment.
REPRESENTATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "musicnn": (("audio_features",), "single"),
    "r2plus1d": (("video_features",), "single"),
    "both": (("audio_features", "video_features"), "concat"),
    "cl_a": (("audio_embeddings",), "single"),
    "cl_v": (("video_embeddings",), "single"),
    "cl_agg": (("audio_embeddings", "video_embeddings"), "mean"),
}
_THRESHOLD_FALLBACK = 0.5


class ProbeWarning(UserWarning):
    """A degenerate case the probe handled in a defined way (also listed in the result's `warnings`)."""


class VideoLevel(NamedTuple):
    """One row per video: `X[i]` is the mean of video `video_ids[i]`'s segment vectors, in split `split[i]`."""

    video_ids: np.ndarray
    X: np.ndarray
    split: np.ndarray


class TaskLabels(NamedTuple):
    """Labels for the rows of a `VideoLevel` where `mask` is true (genre: class names; tagging: 0/1 matrix)."""

    mask: np.ndarray
    y: np.ndarray
    label_names: list[str]


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


def _note(notes: list[str], message: str) -> None:
    warnings.warn(message, ProbeWarning, stacklevel=3)
    notes.append(message)


# --- from segments to videos -------------------------------------------------------------------------------


def video_level(
    features: np.ndarray | Sequence[np.ndarray], segments: pd.DataFrame, chunk_rows: int = 65536
) -> VideoLevel:
    """Average segment vectors per video (DESIGN: a video vector is the mean over its segments).

    `features` is one array row-aligned with `segments` ([n_segments, D], or [n_segments, V, D] whose V crop
    views are averaged first), or several such arrays whose per-segment vectors are concatenated. Segments with
    a non-finite value are dropped with a warning (a video left without segments is dropped too). Works in
    chunks, so memory-mapped features of the full study fit in memory. Videos keep their order of appearance.
    """
    arrays = [features] if isinstance(features, np.ndarray) else list(features)
    missing = [column for column in ("video_id", "split") if column not in segments.columns]
    if missing:
        raise ValueError(f"segments table lacks column(s) {missing}; has {list(segments.columns)}")
    for i, array in enumerate(arrays):
        if array.ndim not in (2, 3) or len(array) != len(segments):
            raise ValueError(
                f"feature array {i} has shape {array.shape}; expected [{len(segments)}, D] or "
                f"[{len(segments)}, views, D], row-aligned with the segments table"
            )
    codes, video_ids = pd.factorize(segments["video_id"], sort=False)
    split = _split_per_video(codes, video_ids, segments["split"].to_numpy())

    sums = np.zeros((len(video_ids), sum(array.shape[-1] for array in arrays)))
    counts = np.zeros(len(video_ids))
    n_dropped = 0
    for start in range(0, len(segments), chunk_rows):
        stop = start + chunk_rows
        block = np.concatenate([_mean_over_views(array[start:stop]) for array in arrays], axis=1)
        finite = np.isfinite(block).all(axis=1)
        n_dropped += int((~finite).sum())
        rows = codes[start:stop][finite]
        onehot = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(video_ids), len(rows))
        )
        sums += onehot @ block[finite]
        counts += np.bincount(rows, minlength=len(video_ids))
    kept = counts > 0
    if n_dropped:
        lost = video_ids[~kept]
        warnings.warn(
            f"dropped {n_dropped} of {len(segments)} segments with non-finite feature values; "
            f"{len(lost)} video(s) lost all segments and are left out{_examples(lost)}",
            ProbeWarning,
            stacklevel=2,
        )
    X = (sums[kept] / counts[kept, None]).astype(np.float32)
    return VideoLevel(video_ids=np.asarray(video_ids)[kept], X=X, split=split[kept])


def _mean_over_views(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    return block.mean(axis=1) if block.ndim == 3 else block


def _split_per_video(codes: np.ndarray, video_ids: pd.Index, split: np.ndarray) -> np.ndarray:
    unknown = sorted(set(np.unique(split.astype(str))) - set(SPLITS))
    if unknown:
        raise ValueError(f"segments table: split must be one of {SPLITS}, found {unknown}")
    per_video = pd.DataFrame({"code": codes, "split": split}).groupby("code")["split"]
    mixed = per_video.nunique() > 1
    if mixed.any():
        raise ValueError(
            f"segments table: video {video_ids[mixed.idxmax()]!r} has segments in several splits; "
            "the split is by video, regenerate segments.parquet"
        )
    return per_video.first().to_numpy().astype(str)


def video_representation(
    name: str,
    segments: pd.DataFrame,
    *,
    audio_features: np.ndarray | None = None,
    video_features: np.ndarray | None = None,
    audio_embeddings: np.ndarray | None = None,
    video_embeddings: np.ndarray | None = None,
) -> VideoLevel:
    """The video-level matrix of one Table 2 representation (see `REPRESENTATIONS`).

    `both` concatenates musicnn and R(2+1)D vectors; `cl_agg` is the mean of the audio and video embeddings
    (DESIGN: the aggregated vector). Arrays are row-aligned with `segments`.
    """
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; choose one of {list(REPRESENTATIONS)}")
    given = {
        "audio_features": audio_features,
        "video_features": video_features,
        "audio_embeddings": audio_embeddings,
        "video_embeddings": video_embeddings,
    }
    needed, combine = REPRESENTATIONS[name]
    absent = [key for key in needed if given[key] is None]
    if absent:
        raise ValueError(f"representation {name!r} needs {list(needed)}; missing {absent}")
    arrays = [given[key] for key in needed]
    if combine == "mean" and arrays[0].shape[-1] != arrays[1].shape[-1]:
        raise ValueError(
            f"representation {name!r} averages {needed[0]} ({arrays[0].shape[-1]}-d) and {needed[1]} "
            f"({arrays[1].shape[-1]}-d), which must have the same size"
        )
    videos = video_level(arrays, segments)
    if combine == "mean":
        half = arrays[0].shape[-1]
        videos = videos._replace(X=(videos.X[:, :half] + videos.X[:, half:]) / 2)
    return videos


# --- labels --------------------------------------------------------------------------------------------------


def task_labels(
    task: str,
    video_ids: np.ndarray,
    videos: pd.DataFrame,
    tags: pd.DataFrame | None = None,
    top_k: int = 10,
    min_count: float = 0.0,
) -> TaskLabels:
    """Labels of `task` for the videos `video_ids`: genre from the metadata's `genre` column (videos without
    one are left out), tagging from `tags.tag_matrix` (videos outside the MSD-overlap set are left out)."""
    _check_task(task)
    if "video_id" not in videos.columns:
        raise ValueError(f"metadata table lacks column 'video_id'; has {list(videos.columns)}")
    video_ids = np.asarray(video_ids)
    unknown = ~np.isin(video_ids, videos["video_id"].to_numpy())
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} video(s) with features are not in the metadata and get no label"
            f"{_examples(video_ids[unknown])}",
            ProbeWarning,
            stacklevel=2,
        )
    if task == "genre":
        if "genre" not in videos.columns:
            raise ValueError(
                "metadata has no 'genre' column; the genre probe needs one (metadata CSV: genre)"
            )
        genre = videos.set_index("video_id")["genre"].reindex(video_ids).astype("string").str.strip()
        mask = (genre.notna() & (genre != "")).to_numpy()
        y = genre[mask].to_numpy(dtype=object)
        return TaskLabels(mask=mask, y=y, label_names=sorted(set(y)))
    if tags is None:
        raise ValueError("the tagging probe needs MSD tags; set dataset.msd_tags to a CSV or lastfm_tags.db")
    if "msd_id" not in videos.columns:
        raise ValueError(
            "metadata has no 'msd_id' column; the tagging probe needs one (metadata CSV: msd_id)"
        )
    matrix = tag_matrix(videos, tags, top_k=top_k, min_count=min_count)
    row = pd.Series(np.arange(len(matrix.video_ids)), index=matrix.video_ids)
    mask = np.isin(video_ids, matrix.video_ids)
    y = matrix.labels[row[video_ids[mask]].to_numpy()]
    return TaskLabels(mask=mask, y=y, label_names=list(matrix.tag_names))


# --- metrics -------------------------------------------------------------------------------------------------


def genre_metrics(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """ROC-AUC (macro one-vs-rest), F1 (macro, argmax) and accuracy on test predictions.

    `y_true` holds class indices into `class_names` (the columns of `proba`). Classes absent from `y_true` are
    left out of both macro averages and listed under `excluded`.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    notes: list[str] = []
    result = _empty_metrics("genre")
    if len(y_true) == 0:
        return _undefined(result, "the test split holds no labelled video", ("roc_auc", "f1", "accuracy"))
    predicted = proba.argmax(axis=1)
    result["accuracy"] = float((predicted == y_true).mean())
    present = np.unique(y_true)
    for c in sorted(set(range(len(class_names))) - set(present.tolist())):
        result["excluded"][class_names[c]] = "absent from the test split"
        _note(
            notes,
            f"genre class {class_names[c]!r} is absent from the test split; left out of the macro averages",
        )
    f1 = f1_score(y_true, predicted, labels=present, average=None, zero_division=0.0)
    for c, value in zip(present, f1, strict=True):
        result["per_label"][class_names[c]] = {"f1": float(value), "n_test": int((y_true == c).sum())}
    result["f1"] = float(np.mean(f1))
    if len(present) < 2:
        reason = (
            f"the test split holds a single class ({class_names[present[0]]!r}); one-vs-rest AUC is undefined"
        )
        _note(notes, reason)
        result["nan_reasons"]["roc_auc"] = reason
    else:
        auc = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
        for c, value in zip(present, auc, strict=True):
            result["per_label"][class_names[c]]["roc_auc"] = float(value)
        result["roc_auc"] = float(np.mean(auc))
    result["warnings"] = notes
    return result


def f1_thresholds(
    y_val: np.ndarray, scores_val: np.ndarray, tag_names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Per-tag score thresholds that maximise F1 on the validation split (predict positive when score >= t).

    A tag without a positive validation video keeps 0.5, with a warning. Returns thresholds and warnings.
    """
    notes: list[str] = []
    thresholds = np.full(len(tag_names), _THRESHOLD_FALLBACK)
    for j, tag in enumerate(tag_names):
        if not y_val[:, j].any():
            _note(
                notes,
                f"tag {tag!r} has no positive video in the validation split; its F1 threshold stays 0.5",
            )
            continue
        precision, recall, candidates = precision_recall_curve(y_val[:, j], scores_val[:, j])
        # The last (precision 1, recall 0) point has no threshold.
        precision, recall = precision[:-1], recall[:-1]
        denominator = np.where(precision + recall > 0, precision + recall, 1.0)
        thresholds[j] = candidates[np.argmax(2 * precision * recall / denominator)]
    return thresholds, notes


def tagging_metrics(
    y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, tag_names: Sequence[str]
) -> dict[str, Any]:
    """ROC-AUC, F1 (at `thresholds`) and PR-AUC (average precision), each a macro average over the tags that
    have both positive and negative test videos; other tags are listed under `excluded`."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    notes: list[str] = []
    result = _empty_metrics("tagging")
    if len(y_true) == 0:
        return _undefined(result, "the test split holds no tagged video", ("roc_auc", "f1", "pr_auc"))
    for j, tag in enumerate(tag_names):
        positives = int(y_true[:, j].sum())
        if positives in (0, len(y_true)):
            reason = (
                "no positive video in the test split" if positives == 0 else "every test video carries it"
            )
            result["excluded"][tag] = reason
            _note(notes, f"tag {tag!r}: {reason}; left out of the macro averages")
            continue
        result["per_label"][tag] = {
            "roc_auc": float(roc_auc_score(y_true[:, j], scores[:, j])),
            "pr_auc": float(average_precision_score(y_true[:, j], scores[:, j])),
            "f1": float(f1_score(y_true[:, j], scores[:, j] >= thresholds[j], zero_division=0.0)),
            "threshold": float(thresholds[j]),
            "n_test_positive": positives,
        }
    if not result["per_label"]:
        reason = "no tag has both positive and negative videos in the test split"
        _note(notes, reason)
        result["warnings"] = notes
        return _undefined(result, reason, ("roc_auc", "f1", "pr_auc"))
    for metric in ("roc_auc", "f1", "pr_auc"):
        result[metric] = float(np.mean([values[metric] for values in result["per_label"].values()]))
    result["warnings"] = notes
    return result


def _empty_metrics(task: str) -> dict[str, Any]:
    metrics = dict.fromkeys(METRICS[task], math.nan)
    return {**metrics, "per_label": {}, "excluded": {}, "nan_reasons": {}, "warnings": []}


def _undefined(result: dict[str, Any], reason: str, metrics: Sequence[str]) -> dict[str, Any]:
    for metric in metrics:
        result[metric] = math.nan
        result["nan_reasons"][metric] = reason
    return result


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
) -> dict[str, Any]:
    """Train one probe on the train split, stop early on validation loss, score it on the test split.

    genre: `y` is one class label per row (any sortable values; classes are its sorted unique values).
    tagging: `y` is a 0/1 matrix [n, k] with column names `label_names`. `cfg` is the `probe` config section.
    Same seed, same numbers on CPU. Returns metrics (see `genre_metrics`, `tagging_metrics`), the split sizes,
    n_classes, training history and every warning raised on the way.
    """
    _check_task(task)
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

    notes: list[str] = []
    targets, names = _encode_targets(task, y, split, label_names, notes)
    sizes = {f"n_{name}": int((split == name).sum()) for name in SPLITS}
    result: dict[str, Any] = {"task": task, "seed": seed, **sizes, "n_classes": len(names), "labels": names}
    reason = _cannot_train(task, names, sizes)
    if reason:
        _note(notes, reason)
        metrics = _undefined(_empty_metrics(task), reason, METRICS[task])
        return {
            **result,
            **metrics,
            "warnings": notes,
            "epochs": 0,
            "best_epoch": 0,
            "best_val_loss": math.nan,
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
        _note(notes, f"the validation split is empty: no early stopping, {settings['max_epochs']} epochs")

    model, history = _fit(x, t, task, len(names), settings, seed, device)
    if task == "genre":
        metrics = genre_metrics(targets[parts["test"]], _predict(model, x["test"], task), names)
    else:
        val_scores = _predict(model, x["val"], task)
        thresholds, threshold_notes = f1_thresholds(targets[parts["val"]], val_scores, names)
        notes += threshold_notes
        metrics = tagging_metrics(targets[parts["test"]], _predict(model, x["test"], task), thresholds, names)
    notes += metrics.pop("warnings")
    return {**result, **metrics, **history, "warnings": notes}


def run_probe_repeats(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    task: str,
    cfg: dict[str, Any],
    seed: int,
    device: str | torch.device = "auto",
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """`probe.repeats` runs of `run_probe` with seeds seed, seed+1, ...; per-run results and mean/std per metric.

    The split is the same for every run (it is by video); seeds change initialisation, dropout and batch order.
    std is the population standard deviation over runs (0 for a single run); a NaN metric stays NaN.
    """
    repeats = probe_settings(cfg)["repeats"]
    runs = [run_probe(X, y, split, task, cfg, seed + i, device, label_names) for i in range(repeats)]
    first = runs[0]
    summary: dict[str, Any] = {
        key: first[key] for key in ("task", "n_train", "n_val", "n_test", "n_classes", "labels")
    }
    summary.update(repeats=repeats, seeds=[run["seed"] for run in runs])
    summary["mean"] = {metric: float(np.mean([run[metric] for run in runs])) for metric in METRICS[task]}
    summary["std"] = {metric: float(np.std([run[metric] for run in runs])) for metric in METRICS[task]}
    summary["excluded"] = first["excluded"]
    summary["nan_reasons"] = first["nan_reasons"]
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
    """One Table 2 cell: label the videos of `representation` for `task`, then `run_probe_repeats`."""
    settings = probe_settings(cfg)
    labels = task_labels(
        task, representation.video_ids, videos, tags, settings["top_tags"], settings["min_tag_count"]
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
    )
    return {"n_videos": len(representation.video_ids), "n_labelled": int(labels.mask.sum()), **result}


def _encode_targets(
    task: str, y: np.ndarray, split: np.ndarray, label_names: Sequence[str] | None, notes: list[str]
) -> tuple[np.ndarray, list[str]]:
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
            if total == 1:
                _note(notes, f"genre class {name!r} has a single video; its scores are noise")
            elif in_train == 0:
                _note(notes, f"genre class {name!r} has no training video; the probe cannot learn it")
        return codes, names
    if y.ndim != 2 or not np.isin(y, (0, 1)).all():
        raise ValueError(f"run_probe: tagging labels must be a 0/1 matrix [n, tags], got shape {y.shape}")
    names = list(label_names) if label_names is not None else [f"tag{j}" for j in range(y.shape[1])]
    if len(names) != y.shape[1]:
        raise ValueError(f"run_probe: {len(names)} label_names for {y.shape[1]} tag columns")
    for j in np.flatnonzero(~y[split == "train"].any(axis=0)):
        _note(notes, f"tag {names[j]!r} has no positive training video; the probe cannot learn it")
    return y.astype(np.float32), names


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
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    # Seeds stay local: the global RNG is restored on exit, so probes do not disturb each other.
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        order_rng = torch.Generator().manual_seed(seed)
        model = ProbeMLP(x["train"].shape[1], settings["hidden"], n_out, settings["dropout"]).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
        best_loss, best_epoch, best_state, epoch = math.inf, 0, None, 0
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
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                best_state = {key: value.clone() for key, value in model.state_dict().items()}
            elif epoch - best_epoch >= settings["patience"]:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    best_loss = best_loss if best_state is not None else math.nan
    return model, {"epochs": epoch, "best_epoch": best_epoch or epoch, "best_val_loss": best_loss}


def _predict(model: nn.Module, x: torch.Tensor, task: str, chunk: int = 8192) -> np.ndarray:
    """Class probabilities (genre, softmax) or tag scores (tagging, sigmoid) as float64 numpy."""
    with torch.no_grad():
        logits = torch.cat([model(part) for part in x.split(chunk)]) if len(x) else model(x)
    scores = logits.softmax(dim=1) if task == "genre" else logits.sigmoid()
    return scores.double().cpu().numpy()


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose one of {TASKS}")


def _examples(ids: np.ndarray, n: int = 3) -> str:
    return f" (e.g. {', '.join(repr(str(i)) for i in ids[:n])})" if len(ids) else ""
