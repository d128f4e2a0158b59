"""Table 2's intervals and the paired answer to RQ1, bootstrapped over test videos from stored predictions.

A probe result (`probe_task`) keeps every seed's scores on every test video and the videos' targets. A Table 2
figure is the mean over seeds of a metric; on a bootstrap draw of the test videos it is the mean over seeds of
that metric on the drawn videos (every seed on the same draw). So the interval is about the sampling of test
videos; the spread over seeds stays a column of its own (`*_std`). A draw on which the metric is undefined (a
single class drawn) is left out and counted (`mvcl.stats`).

A CL row probed on several training replicates (mvcl.probe.replicates: `replicate_of_seed`) is the mean over
replicates of each replicate's seed mean, with a two-level interval (draw replicates, then test videos), so it
carries the contrastive training's variance as well as the test videos'. One replicate gives the interval
above, draw for draw.

RQ1 ("does contrastive learning beat the frozen features it starts from?") compares a CL representation with
its frozen counterpart *paired*: both probes are scored on the same draws of the test videos they share (the
intersection, should one of them have dropped a video), and the difference has its own interval and p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from mvcl.probe.metrics import metric_on_draws, metric_on_videos
from mvcl.stats import (
    DEFAULT_RESAMPLES,
    Comparison,
    Interval,
    ReplicateMetric,
    two_level_interval,
    two_level_paired,
)

TABLE_METRICS = ("roc_auc", "f1", "pr_auc")
# Below these sizes a number is reported but flagged: an AUC over fewer than 30 test videos has a 95% interval
# wider than about 0.13 (benchmarks/ci_width.py: 0.19 at 17), and a label on fewer than 2 test videos has no
# AUC or F1 to speak of.
SMALL_TEST_SET = 30
SMALL_LABEL = 2


class Predictions(NamedTuple):
    """One probe's test predictions: `scores[s, i]` is seed s's scores of video `video_ids[i]`."""

    task: str
    video_ids: np.ndarray  # [n]
    targets: np.ndarray  # genre: [n] class index; tagging: [n, tags] 0/1
    scores: np.ndarray  # [seeds, n, labels]
    thresholds: np.ndarray | None  # tagging: [seeds, tags] F1 thresholds
    labels: list[str]
    kept: np.ndarray  # [labels] False for a label without training videos, left out of the macro averages
    replicate_of_seed: np.ndarray  # [seeds] the training replicate whose embeddings seed s probed (0: frozen)

    @property
    def replicates(self) -> int:
        return int(self.replicate_of_seed.max()) + 1


def predictions(result: dict[str, Any], name: str, required: bool = True) -> Predictions | None:
    """The stored predictions of probe result `name`; None when the probe could not train (or, unless
    `required`, when the result holds none: a number without an interval rather than no table)."""
    if "predictions" not in result and not required:
        return None
    if "predictions" not in result or "untrained" not in result:
        raise ValueError(
            f"probe result {name} holds no test predictions or no `untrained` labels (written by an older "
            "mvcl); delete it and rerun the probe"
        )
    stored = result["predictions"]
    if stored is None:
        return None
    thresholds = stored["thresholds"]
    return Predictions(
        task=result["task"],
        video_ids=np.asarray(stored["video_ids"], dtype=str),
        targets=np.asarray(stored["targets"]),
        scores=np.asarray(stored["scores"], dtype=np.float64),
        thresholds=None if thresholds[0] is None else np.asarray(thresholds, dtype=np.float64),
        labels=list(result["labels"]),
        kept=~np.isin(result["labels"], result["untrained"]),
        replicate_of_seed=np.asarray(result.get("replicate_of_seed", [0] * len(stored["scores"])), dtype=int),
    )


class SeedMean:
    """metric(replicate, draw) = mean over that replicate's seeds of `metric` on the videos `positions[draw]`
    (default: all, in order); `on_draws(replicate, draws [B, m])` gives the same on every draw at once (from how
    often each video is drawn: `metric_on_draws`), which mvcl.stats' bootstrap uses."""

    def __init__(self, found: Predictions, metric: str, positions: np.ndarray | None = None):
        self.found, self.metric = found, metric
        self.positions = np.arange(len(found.video_ids)) if positions is None else np.asarray(positions)

    def _thresholds(self, seed: int) -> np.ndarray | None:
        return None if self.found.thresholds is None else self.found.thresholds[seed]

    def _seeds(self, replicate: int) -> np.ndarray:
        return np.flatnonzero(self.found.replicate_of_seed == replicate)

    def __call__(self, replicate: int, draw: np.ndarray) -> float:
        found, rows = self.found, self.positions[draw]
        values = [
            metric_on_videos(
                found.task,
                self.metric,
                found.targets[rows],
                found.scores[s][rows],
                self._thresholds(s),
                found.kept,
            )
            for s in self._seeds(replicate)
        ]
        return float(np.mean(values))

    def on_draws(self, replicate: int, draws: np.ndarray) -> np.ndarray:
        found, rows, seeds = self.found, self.positions, self._seeds(replicate)
        if len(seeds) == 0 or not np.isfinite(found.scores[seeds][:, rows]).all():
            return np.array([self(replicate, draw) for draw in draws], dtype=np.float64)  # NaN: as one by one
        size = len(rows)
        offsets = size * np.arange(len(draws))[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=len(draws) * size).reshape(len(draws), size)
        values = [
            metric_on_draws(
                found.task,
                self.metric,
                found.targets[rows],
                found.scores[s][rows],
                counts,
                self._thresholds(s),
                found.kept,
            )
            for s in seeds
        ]
        return np.stack(values, axis=1).mean(axis=1)  # [B, seeds]: each row as np.mean of one draw's list


def seed_mean(found: Predictions, metric: str, positions: np.ndarray | None = None) -> SeedMean:
    """The replicate metric of `metric` for mvcl.stats' two-level bootstrap (`SeedMean`)."""
    return SeedMean(found, metric, positions)


def metric_intervals(
    result: dict[str, Any], name: str, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, Interval]:
    """A 95% bootstrap interval over test videos for each of `TABLE_METRICS` (NaN where it has no value)."""
    found = predictions(result, name, required=False)
    n = 0 if found is None else len(found.video_ids)
    intervals = {}
    for metric in TABLE_METRICS:
        if found is None or n == 0 or (found.task == "genre" and metric == "pr_auc"):
            intervals[metric] = Interval(math.nan, math.nan, math.nan, n, 0)
        else:
            intervals[metric] = two_level_interval(
                seed_mean(found, metric), found.replicates, n, resamples, seed, center=np.mean
            )
    return intervals


def compare(
    result: dict[str, Any],
    baseline: dict[str, Any],
    names: tuple[str, str],
    metric: str = "roc_auc",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[Comparison, float, float]:
    """`metric` of `result` minus that of `baseline` on the test videos both scored, paired over the same draws
    (and over replicates: each side's replicates drawn as mvcl.stats.two_level_paired does).

    Returns the comparison and each side's seed-mean metric on the shared videos (mean over replicates).
    """
    found, other = predictions(result, names[0]), predictions(baseline, names[1])
    if found is None or other is None:
        nothing = Interval(math.nan, math.nan, math.nan, 0, 0)
        return Comparison(nothing, math.nan), math.nan, math.nan
    if found.task != other.task:
        raise ValueError(f"cannot compare {names[0]} ({found.task}) with {names[1]} ({other.task})")
    shared = np.isin(found.video_ids, other.video_ids)
    here = np.flatnonzero(shared)
    where = {video: i for i, video in enumerate(other.video_ids)}
    there = np.array([where[video] for video in found.video_ids[here]], dtype=np.int64)
    if len(here) == 0:
        nothing = Interval(math.nan, math.nan, math.nan, 0, 0)
        return Comparison(nothing, math.nan), math.nan, math.nan
    metric_a, metric_b = seed_mean(found, metric, here), seed_mean(other, metric, there)
    everything = np.arange(len(here))
    comparison = two_level_paired(
        metric_a, found.replicates, metric_b, other.replicates, len(here), resamples, seed, center=np.mean
    )
    return comparison, _mean_over(metric_a, found, everything), _mean_over(metric_b, other, everything)


def _mean_over(metric: ReplicateMetric, found: Predictions, videos: np.ndarray) -> float:
    return float(np.mean([metric(replicate, videos) for replicate in range(found.replicates)]))


def label_counts(found: Predictions | None) -> dict[str, int]:
    """Test videos of each class (genre) or carrying each tag (tagging)."""
    if found is None:
        return {}
    if found.task == "genre":
        counts = np.bincount(found.targets.astype(int), minlength=len(found.labels))
    else:
        counts = found.targets.sum(axis=0)
    return {label: int(count) for label, count in zip(found.labels, counts, strict=True)}


def small_labels(result: dict[str, Any], name: str) -> list[str]:
    """'label (n)' for each class or tag with fewer than `SMALL_LABEL` test videos."""
    counts = label_counts(predictions(result, name, required=False))
    return [f"{label} ({count})" for label, count in counts.items() if count < SMALL_LABEL]


def small_collection_notes(sizes: dict[str, int], small: dict[str, Sequence[str]]) -> list[str]:
    """Plain warnings for a test split (per task: `sizes`) or a label (`small`) too small to mean much."""
    notes = [
        f"{task}: only {n} test videos; with fewer than {SMALL_TEST_SET} an interval is too wide for the "
        "number to mean much"
        for task, n in sizes.items()
        if n < SMALL_TEST_SET
    ]
    notes += [
        f"{task}: {', '.join(labels)} {'has' if len(labels) == 1 else 'have'} fewer than {SMALL_LABEL} test "
        "videos (in brackets): noise in the macro AUC and F1, or left out of them at 0"
        for task, labels in small.items()
        if labels
    ]
    return notes
