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

import functools
import math
from collections.abc import Sequence
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from mvcl.configuration import deep_merge, find_schema, schema_defaults
from mvcl.device import pick_device
from mvcl.learn.optim import Adam
from mvcl.learn.stopping import EarlyStopping
from mvcl.probe.data import (
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
from mvcl.stats import video_codes


def resolve_probe_section(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `probe` config section completed with the schema's defaults; a key or value the schema refuses
    raises ValueError naming it (a partial section from a test or notebook works as Snakemake's does)."""
    schema, defaults = _probe_schema(find_schema())
    settings = deep_merge(defaults, cfg)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(settings))
    if error is not None:
        key = ".".join(["probe", *map(str, error.absolute_path)])
        raise ValueError(f"{key}: {error.message} (see schemas/config.schema.yaml)")
    return settings


@functools.cache
def _probe_schema(path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema's `probe` section and its defaults, parsed once per process and schema file, by libyaml
    where PyYAML has it (a probe job resolves its section several times; each pure-Python parse of the schema
    cost ~0.3 CPU-s, libyaml's ~0.03: the same objects). Callers never change them (deep_merge copies)."""
    with open(path) as f:
        schema = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["properties"]["probe"]
    return schema, schema_defaults(schema["properties"])


class SeedProbes:
    """The study's probe (Table 2), one copy per seed, trained side by side as one batched model.

    Copy s is D -> hidden[0] -> hidden[1] -> out with ReLU and dropout after each hidden layer, its layer i
    `x @ weights[i][s] + biases[i][s]`: every seed has its own initialisation (nn.Linear's, drawn from its
    seed), its own dropout masks and batches, and its own loss, so its gradient is what it would be alone.
    Batching the seeds turns the many small per-seed operations into a few large ones (torch.bmm).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        dropout: float,
        seeds: Sequence[int],
        device: torch.device,
    ) -> None:
        sizes = [in_dim, *hidden, out_dim]
        # One generator per seed, drawn in the order torch.manual_seed(seed) + nn.Linear layers would be.
        init_rngs = [torch.Generator().manual_seed(seed) for seed in seeds]
        per_seed = [
            [_linear_init(a, b, rng) for a, b in zip(sizes, sizes[1:], strict=False)] for rng in init_rngs
        ]
        self.weights, self.biases = [], []
        for pairs in zip(*per_seed, strict=True):  # one layer: a (weight, bias) per seed
            self.weights.append(torch.stack([weight for weight, _ in pairs]).to(device))
            self.biases.append(torch.stack([bias for _, bias in pairs]).to(device))
        self.keep = 1.0 - dropout
        # Dropout continues the seed's CPU stream (as after torch.manual_seed); on a GPU its own device stream.
        on_cpu = torch.device(device).type == "cpu"
        self.dropout_rngs = init_rngs if on_cpu else [torch.Generator(device).manual_seed(s) for s in seeds]

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def __call__(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """Logits [seeds, rows, out] of x [seeds, rows, D] (each seed its own rows) or [rows, D] (shared)."""
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(bias, h, weight) if h.dim() == 3 else torch.matmul(h, weight) + bias
            if i < len(self.weights) - 1:
                h = h.relu()
                if train and self.keep < 1:
                    h = h * self._dropout_mask(h)
        return h

    def _dropout_mask(self, h: torch.Tensor) -> torch.Tensor:
        """F.dropout's CPU mask (bernoulli(keep) / keep), each seed's rows from its own generator."""
        mask = torch.empty_like(h)
        for row, rng in zip(mask, self.dropout_rngs, strict=True):
            row.bernoulli_(self.keep, generator=rng)
        return mask.div_(self.keep)

    def state_of(self, s: int) -> dict[str, torch.Tensor]:
        """Seed s's weights (views; EarlyStopping copies what it keeps)."""
        return {f"layer{i}": t[s] for i, t in enumerate(self.parameters())}

    def select(self, rows: list[int]) -> None:
        """Keep only these seeds (the others stopped early)."""
        self.weights = [w.detach()[rows] for w in self.weights]
        self.biases = [b.detach()[rows] for b in self.biases]
        self.dropout_rngs = [self.dropout_rngs[r] for r in rows]

    def load(self, states: Sequence[dict[str, torch.Tensor]]) -> None:
        """Stack one state per seed (from `state_of`) as the weights."""
        n = len(self.weights)
        stacked = [torch.stack([state[f"layer{i}"] for state in states]) for i in range(2 * n)]
        self.weights, self.biases = stacked[:n], stacked[n:]


class _SeedView:
    """One seed of a SeedProbes, seen as a model by EarlyStopping (which only calls state_dict)."""

    def __init__(self, probes: SeedProbes, row: int) -> None:
        self.probes, self.row = probes, row

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.probes.state_of(self.row)


def _linear_init(fan_in: int, fan_out: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.Linear's default initialisation from `rng`, the weight transposed to [in, out]."""
    weight = torch.empty(fan_out, fan_in)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=rng)
    bound = 1 / math.sqrt(fan_in)
    bias = torch.empty(fan_out).uniform_(-bound, bound, generator=rng)
    return weight.T.contiguous(), bias[None, :]


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
    return run_probe_seeds(X, y, split, task, cfg, [seed], device, label_names, video_ids)[0]


def run_probe_seeds(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    task: str,
    cfg: dict[str, Any],
    seeds: Sequence[int],
    device: str | torch.device = "auto",
    label_names: Sequence[str] | None = None,
    video_ids: Sequence[str] | np.ndarray | None = None,
    replicate_of_seed: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """`run_probe` for every seed, the seeds trained together (`SeedProbes`); one result per seed, in order.

    Each seed's result is what `run_probe` with that seed alone gives: the seeds share only the data. With
    `replicate_of_seed`, `X` is a list of row-aligned arrays (one per training replicate: the same videos,
    labels and split) and seed s trains on X[replicate_of_seed[s]], standardised with that array's own train
    statistics, exactly as alone on it.
    """
    check_task(task)
    settings = resolve_probe_section(cfg)
    device = pick_device(str(device))
    arrays = [np.asarray(part, dtype=np.float32) for part in (X if replicate_of_seed is not None else [X])]
    replicate_of_seed = np.asarray(replicate_of_seed if replicate_of_seed is not None else [0] * len(seeds))
    if len(replicate_of_seed) != len(seeds) or not set(replicate_of_seed) <= set(range(len(arrays))):
        raise ValueError(f"run_probe: replicate_of_seed {list(replicate_of_seed)} for {len(arrays)} arrays")
    X = arrays[0]
    split = np.asarray(split).astype(str)
    for X in arrays:
        if X.ndim != 2 or len(X) != len(y) or len(X) != len(split) or X.shape != arrays[0].shape:
            raise ValueError(
                f"run_probe: X {X.shape}, y ({len(y)}) and split ({len(split)}) must be row-aligned"
            )
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
    results = [
        {
            "task": task,
            "seed": seed,
            **sizes,
            "n_classes": len(names),
            "labels": names,
            "untrained": list(untrained),
            "threshold_fallbacks": [],
        }
        for seed in seeds
    ]
    reason = _cannot_train(task, names, sizes)
    if reason:
        note(notes, reason)
        metrics = undefined(empty_metrics(task), reason, METRICS[task])
        failed = {"warnings": notes, "epochs": 0, "best_epoch": 0, "best_val_loss": math.nan}
        return [{**result, **metrics, **failed, "predictions": None} for result in results]

    parts = {name: split == name for name in SPLITS}
    x = _standardised(arrays, parts, device)
    target_dtype = torch.long if task == "genre" else torch.float32
    t = {
        name: torch.as_tensor(targets[rows], dtype=target_dtype, device=device)
        for name, rows in parts.items()
    }
    if sizes["n_val"] == 0:
        note(notes, f"the validation split is empty: no early stopping, {settings['max_epochs']} epochs")

    replicate = torch.as_tensor(replicate_of_seed, device=device)
    probes, histories = _fit(x, t, task, len(names), settings, seeds, device, replicate)
    scores = {name: _predict(probes, _inputs(x[name], replicate), task) for name in ("val", "test")}
    for s, (result, history) in enumerate(zip(results, histories, strict=True)):
        scored = {
            name: _per_video(video_ids[parts[name]], targets[parts[name]], scores[name][s])
            for name in ("val", "test")
        }
        test_ids, test_targets, test_scores = scored["test"]
        seed_notes, thresholds = list(notes), None
        if task == "genre":
            metrics = genre_metrics(test_targets, test_scores, names, untrained)
        else:
            if settings["f1_threshold"] == "validation":
                _, val_targets, val_scores = scored["val"]
                thresholds, threshold_notes = f1_thresholds(val_targets, val_scores, names)
                seed_notes += threshold_notes
                result["threshold_fallbacks"] = [names[j] for j in np.flatnonzero(~val_targets.any(axis=0))]
            else:
                thresholds = np.full(len(names), float(settings["f1_threshold"]))
            metrics = tagging_metrics(test_targets, test_scores, thresholds, names, untrained)
        seed_notes += metrics.pop("warnings")
        predictions = {
            "video_ids": test_ids.tolist(),
            "targets": test_targets.astype(int).tolist(),
            "scores": test_scores.tolist(),
            "thresholds": None if thresholds is None else thresholds.tolist(),
        }
        result.update(**metrics, **history, warnings=seed_notes, predictions=predictions)
    return results


def _standardised(arrays: list[np.ndarray], parts: dict, device) -> dict[str, torch.Tensor]:
    """Each split's rows of every array, standardised with that array's train statistics (constant features
    centred, not scaled): [rows, D] for one array, [arrays, rows, D] for several."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name in parts}
    for X in arrays:
        mean, std = (
            X[parts["train"]].mean(axis=0, dtype=np.float64),
            X[parts["train"]].std(axis=0, dtype=np.float64),
        )
        standardised = (X - mean.astype(np.float32)) / np.where(std > 1e-12, std, 1.0).astype(np.float32)
        for name, rows in parts.items():
            out[name].append(torch.as_tensor(standardised[rows], dtype=torch.float32, device=device))
    return {name: tensors[0] if len(arrays) == 1 else torch.stack(tensors) for name, tensors in out.items()}


def _inputs(x: torch.Tensor, replicate: torch.Tensor) -> torch.Tensor:
    """What the probes score: the rows shared by every seed [rows, D], or each seed's replicate's [seeds, rows,
    D] (x [replicates, rows, D])."""
    return x if x.dim() == 2 else x[replicate]


def repeat_seeds(cfg: dict[str, Any], seed: int) -> list[int]:
    """The seeds of the `probe.repeats` runs of one Table 2 cell: seed, seed+1, ..."""
    return [seed + i for i in range(resolve_probe_section(cfg)["repeats"])]


def summarise_repeats(task: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One Table 2 cell from the runs of `run_probe_seeds` over `repeat_seeds`: per-run results and
    mean/std per metric.

    The split is the same for every run (it is by video); seeds change initialisation, dropout and batch order.
    std is the population standard deviation over runs (0 for a single run); a NaN metric stays NaN.
    """
    first = runs[0]
    summary: dict[str, Any] = {
        key: first[key]
        for key in ("task", "n_train", "n_val", "n_test", "n_test_videos", "n_classes", "labels")
    }
    summary.update(repeats=len(runs), seeds=[run["seed"] for run in runs])
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


def _cell_labels(
    task: str, representation: VideoLevel, videos: pd.DataFrame, tags: pd.DataFrame | None, settings: dict
):
    """The labels of a Table 2 cell's rows (`task_labels`); the tag vocabulary from the training videos only."""
    train_ids = representation.video_ids[representation.split == "train"]
    return task_labels(
        task,
        representation.video_ids,
        videos,
        tags,
        settings["top_tags"],
        settings["min_tag_count"],
        train_ids=train_ids,
    )


def probe_task(
    task: str,
    representation: VideoLevel,
    videos: pd.DataFrame,
    cfg: dict[str, Any],
    seed: int,
    device: str | torch.device = "auto",
    tags: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One Table 2 cell: label the rows of `representation` for `task`, then `probe.repeats` seeded runs.

    The tagging task is the `probe.top_tags` most frequent tags among the training videos with Last.fm
    weight at least `probe.min_tag_count` (`tag_matrix`).
    """
    settings = resolve_probe_section(cfg)
    labels = _cell_labels(task, representation, videos, tags, settings)
    runs = run_probe_seeds(
        representation.X[labels.mask],
        labels.y,
        representation.split[labels.mask],
        task,
        cfg,
        repeat_seeds(cfg, seed),
        device,
        label_names=labels.label_names if task == "tagging" else None,
        video_ids=representation.video_ids[labels.mask],
    )
    return {
        "n_videos": len(np.unique(representation.video_ids)),
        "n_labelled": len(np.unique(representation.video_ids[labels.mask])),
        "level": settings["level"],
        **summarise_repeats(task, runs),
    }


def probe_replicates(
    task: str,
    representations: Sequence[VideoLevel],
    videos: pd.DataFrame,
    cfg: dict[str, Any],
    seeds: Sequence[int],
    device: str | torch.device = "auto",
    tags: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """`probe_task` on each training replicate's representation r with seed `seeds[r]`, every replicate's
    `probe.repeats` seeds trained together as one batched model (a CL row's seeds, one per replicate, would
    otherwise each train alone); one result per replicate, each what `probe_task` gives on it.

    The representations must hold the same videos in the same order (one collection's replicates)."""
    first = representations[0]
    for r, representation in enumerate(representations[1:], start=1):
        if not (
            np.array_equal(representation.video_ids, first.video_ids)
            and np.array_equal(representation.split, first.split)
        ):
            raise ValueError(
                f"probe of replicate {r}: other videos or splits than replicate 0; the replicates' embeddings "
                "must cover the same videos (rerun the train rule)"
            )
    settings = resolve_probe_section(cfg)
    labels = _cell_labels(task, first, videos, tags, settings)
    repeats = settings["repeats"]
    runs = run_probe_seeds(
        [representation.X[labels.mask] for representation in representations],
        labels.y,
        first.split[labels.mask],
        task,
        cfg,
        [seed + i for seed in seeds for i in range(repeats)],
        device,
        label_names=labels.label_names if task == "tagging" else None,
        video_ids=first.video_ids[labels.mask],
        replicate_of_seed=[r for r in range(len(representations)) for _ in range(repeats)],
    )
    sizes = {
        "n_videos": len(np.unique(first.video_ids)),
        "n_labelled": len(np.unique(first.video_ids[labels.mask])),
        "level": settings["level"],
    }
    return [
        {**sizes, **summarise_repeats(task, runs[r * repeats : (r + 1) * repeats])}
        for r in range(len(representations))
    ]


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
    seeds: Sequence[int],
    device: torch.device,
    replicate: torch.Tensor | None = None,
) -> tuple[SeedProbes, list[dict[str, Any]]]:
    """Adam on minibatches of the train split, every seed at once; each seed keeps the weights of its best
    validation loss and leaves the batch when it stops early. Returns the probes holding each seed's kept
    weights and each seed's history."""
    probes = SeedProbes(x["train"].shape[-1], settings["hidden"], n_out, settings["dropout"], seeds, device)
    replicate = torch.zeros(len(seeds), dtype=torch.long) if replicate is None else replicate
    n_train = x["train"].shape[-2]
    order_rngs = [torch.Generator().manual_seed(seed) for seed in seeds]
    stoppings = [EarlyStopping(settings["patience"]) for _ in seeds]
    epochs = [0] * len(seeds)
    final: dict[int, dict[str, torch.Tensor]] = {}  # weights of the seeds that have stopped
    active = list(range(len(seeds)))  # the seeds still training, in the order of probes' rows
    optimizer = _adam(probes, settings["lr"])
    for epoch in range(1, settings["max_epochs"] + 1):
        order = torch.stack([torch.randperm(n_train, generator=order_rngs[s]) for s in active])
        replicates = replicate[active].to(device)[:, None]
        for batch in order.to(device).split(settings["batch_size"], dim=1):  # [seeds, batch] row indices
            rows = x["train"][batch] if x["train"].dim() == 2 else x["train"][replicates, batch]
            loss = _seed_losses(probes(rows, train=True), t["train"][batch], task).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for s in active:
            epochs[s] = epoch
        if x["val"].shape[-2] == 0:
            continue
        val_losses = _validation_losses(probes, _inputs(x["val"], replicate[active]), t["val"], task)
        stopped = [
            row
            for row, (s, loss) in enumerate(zip(active, val_losses, strict=True))
            if stoppings[s].step(epoch, loss, _SeedView(probes, row))
        ]
        if stopped:
            for row in stopped:
                final[active[row]] = {k: v.detach().clone() for k, v in probes.state_of(row).items()}
            rows = [row for row in range(len(active)) if row not in stopped]
            active = [active[row] for row in rows]
            if not active:
                break
            optimizer = _adam(probes, settings["lr"], optimizer, rows)
    for row, s in enumerate(active):
        final[s] = {k: v.detach().clone() for k, v in probes.state_of(row).items()}
    probes.load([stopping.best_state or final[s] for s, stopping in enumerate(stoppings)])
    histories = [
        {
            "epochs": epochs[s],
            "best_epoch": stopping.best_epoch or epochs[s],
            "best_val_loss": stopping.best_loss if stopping.best_state is not None else math.nan,
        }
        for s, stopping in enumerate(stoppings)
    ]
    return probes, histories


def _adam(
    probes: SeedProbes,
    lr: float,
    previous: Adam | None = None,
    rows: list[int] | None = None,
) -> Adam:
    """Adam over the probes' weights (fused: one pass per step); given `previous` and `rows`, keep only those
    seeds, weights and Adam moments alike."""
    if previous is not None:
        moments = [previous.state[p] for p in probes.parameters()]
        probes.select(rows)
    for p in probes.parameters():
        p.requires_grad_(True)
    optimizer = Adam(probes.parameters(), lr, fused=True)
    if previous is not None:
        for p, state in zip(probes.parameters(), moments, strict=True):
            optimizer.state[p] = {
                "step": state["step"].clone(),
                "exp_avg": state["exp_avg"][rows].contiguous(),
                "exp_avg_sq": state["exp_avg_sq"][rows].contiguous(),
            }
    return optimizer


def _seed_losses(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    """Each seed's mean loss [seeds] of logits [seeds, rows, out]; targets per seed or shared by the seeds."""
    seeds, rows = logits.shape[:2]
    if targets.dim() == (1 if task == "genre" else 2):  # shared: the validation rows
        targets = targets.expand(seeds, *targets.shape)
    if task == "genre":
        losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(0, 1), reduction="none")
        return losses.view(seeds, rows).mean(dim=1)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(1, 2))


def _validation_losses(
    probes: SeedProbes, x: torch.Tensor, t: torch.Tensor, task: str, chunk: int = 8192
) -> list[float]:
    """Each seed's mean loss on the validation split, in chunks of rows (memory stays bounded)."""
    with torch.no_grad():
        totals = sum(
            _seed_losses(probes(rows, train=False), targets, task).double() * len(targets)
            for rows, targets in zip(x.split(chunk, dim=-2), t.split(chunk), strict=True)
        )
    return (totals / x.shape[-2]).tolist()


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


def _predict(probes: SeedProbes, x: torch.Tensor, task: str, chunk: int = 8192) -> np.ndarray:
    """Class probabilities (genre, softmax) or tag scores (tagging, sigmoid) [seeds, rows, out], float64."""
    with torch.no_grad():
        logits = (
            [probes(part, train=False) for part in x.split(chunk, dim=-2)]
            if x.shape[-2]
            else [probes(x, train=False)]
        )
        logits = torch.cat(logits, dim=1)
    scores = logits.softmax(dim=2) if task == "genre" else logits.sigmoid()
    return scores.double().cpu().numpy()
