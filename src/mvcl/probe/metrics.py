"""Scores of a probe on the test split: ROC-AUC (macro; one-vs-rest for genre), F1 (macro; genre by argmax,
tagging at per-tag thresholds chosen on validation) and, for tagging, PR-AUC (macro average precision).

A label the probe could not learn (no training video: `left_out`) or cannot be scored on (absent from the test
split; for a tag, also one every test video carries) is left out of the macro averages and listed under
`excluded` with its reason; an undefined metric is NaN with its reason in `nan_reasons`. So a class without
training videos neither drags the average to chance nor hides: Table 2's footnote names it.

`metric_on_videos` recomputes one of these macro averages on any subset (or resample) of the test videos from
the stored labels and scores, without the bookkeeping, on arrays only (ranks for ROC-AUC, cumulative counts for
PR-AUC). On the whole test set it gives the numbers of `genre_metrics` and `tagging_metrics`.

`metric_on_draws` gives the same numbers, float for float, on all of a bootstrap's draws at once: a draw with
replacement is a count per test video, and each metric is a function of those counts (ranks and precision at
each distinct score, true positives per label), so one pass over the counts replaces a thousand calls. Its
sums add whole numbers (exact in float64), its divisions are those of `metric_on_videos`, and its averages add
the same values in the same order (`_mean_where`), so the two agree to the last bit (tests/test_probe_intervals.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mvcl.probe.data import note

METRICS = {"genre": ("roc_auc", "f1", "accuracy"), "tagging": ("roc_auc", "f1", "pr_auc")}


_THRESHOLD_FALLBACK = 0.5


def genre_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    left_out: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ROC-AUC (macro one-vs-rest), F1 (macro, argmax) and accuracy on test predictions.

    `y_true` holds class indices into `class_names` (the columns of `proba`). Classes absent from `y_true` and
    those in `left_out` (name -> reason, e.g. no training video) are left out of both macro averages and listed
    under `excluded`; accuracy counts every test video.
    """

    y_true, proba, result, notes = _start("genre", y_true, proba)
    if len(y_true) == 0:
        return undefined(result, "the test split holds no labelled video", METRICS["genre"])
    predicted = proba.argmax(axis=1)
    result["accuracy"] = float((predicted == y_true).mean())
    result["excluded"].update(left_out or {})
    kept = [c for c in range(len(class_names)) if class_names[c] not in result["excluded"]]
    present = np.intersect1d(np.unique(y_true), kept)
    if len(present) == 0:
        result["warnings"] = notes
        return undefined(result, "no class the probe learnt is in the test split", ("roc_auc", "f1"))
    for c in sorted(set(kept) - set(present.tolist())):
        result["excluded"][class_names[c]] = "absent from the test split"
        note(
            notes,
            f"genre class {class_names[c]!r} is absent from the test split; left out of the macro averages",
        )
    f1 = np.array([_binary_f1(y_true == c, predicted == c) for c in present])
    for c, value in zip(present, f1, strict=True):
        result["per_label"][class_names[c]] = {"f1": float(value), "n_test": int((y_true == c).sum())}
    result["f1"] = float(np.mean(f1))
    if len(present) < 2:
        reason = (
            f"the test split holds a single class ({class_names[present[0]]!r}) the probe learnt; one-vs-rest "
            "AUC is undefined"
        )
        note(notes, reason)
        result["nan_reasons"]["roc_auc"] = reason
    else:
        auc = [_binary_roc_auc(y_true == c, proba[:, c]) for c in present]
        for c, value in zip(present, auc, strict=True):
            result["per_label"][class_names[c]]["roc_auc"] = float(value)
        result["roc_auc"] = float(np.mean(auc))
    result["warnings"] = notes
    return result


def f1_thresholds(
    y_val: np.ndarray, scores_val: np.ndarray, tag_names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Per-tag score thresholds that maximise F1 on the validation split (predict positive when score >= t).

    A tag without a positive validation video keeps 0.5, with a warning (the probe record names such tags,
    `threshold_fallbacks`, and Table 2's footnote counts them). Returns thresholds and warnings.
    """

    notes: list[str] = []
    thresholds = np.full(len(tag_names), _THRESHOLD_FALLBACK)
    for j, tag in enumerate(tag_names):
        if not y_val[:, j].any():
            note(
                notes,
                f"tag {tag!r} has no positive video in the validation split; its F1 threshold stays 0.5",
            )
            continue
        precision, recall, candidates = _precision_recall_curve(y_val[:, j], scores_val[:, j])
        # The last (precision 1, recall 0) point has no threshold.
        precision, recall = precision[:-1], recall[:-1]
        denominator = np.where(precision + recall > 0, precision + recall, 1.0)
        thresholds[j] = candidates[np.argmax(2 * precision * recall / denominator)]
    return thresholds, notes


def tagging_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    tag_names: Sequence[str],
    left_out: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ROC-AUC, F1 (at `thresholds`) and PR-AUC (average precision), each a macro average over the tags that
    have both positive and negative test videos and are not in `left_out` (name -> reason, e.g. no positive
    training video); other tags are listed under `excluded`."""

    y_true, scores, result, notes = _start("tagging", y_true, scores)
    if len(y_true) == 0:
        return undefined(result, "the test split holds no tagged video", METRICS["tagging"])
    result["excluded"].update(left_out or {})
    for j, tag in enumerate(tag_names):
        if tag in result["excluded"]:
            continue
        positives = int(y_true[:, j].sum())
        if positives in (0, len(y_true)):
            reason = (
                "no positive video in the test split" if positives == 0 else "every test video carries it"
            )
            result["excluded"][tag] = reason
            note(notes, f"tag {tag!r}: {reason}; left out of the macro averages")
            continue
        result["per_label"][tag] = {
            "roc_auc": _binary_roc_auc(y_true[:, j], scores[:, j]),
            "pr_auc": _binary_average_precision(y_true[:, j], scores[:, j]),
            "f1": _binary_f1(y_true[:, j], scores[:, j] >= thresholds[j]),
            "threshold": float(thresholds[j]),
            "n_test_positive": positives,
        }
    if not result["per_label"]:
        reason = "no tag has both positive and negative videos in the test split"
        note(notes, reason)
        result["warnings"] = notes
        return undefined(result, reason, ("roc_auc", "f1", "pr_auc"))
    for metric in ("roc_auc", "f1", "pr_auc"):
        result[metric] = float(np.mean([values[metric] for values in result["per_label"].values()]))
    result["warnings"] = notes
    return result


# scikit-learn's binary metrics (1.9) re-done on arrays, operation for operation, so that they give its numbers to
# the last bit (tests/test_probe_metrics_exact.py compares them): a probe job then neither imports scikit-learn
# and scipy.stats (~1.2 CPU-s) nor pays its input validation on every call (~1 CPU-s a job). The inputs here are
# always a 0/1 (or boolean) vector with both classes present and finite float scores.


def _curve_counts(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, threshold) at each distinct score, highest first, as float64 counts
    (sklearn's `confusion_matrix_at_thresholds`; the order within tied scores does not change them)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], np.asarray(truth, dtype=np.float64)[order]
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last row of each distinct score
    tps = np.cumsum(truth, dtype=np.float64)[ends]
    fps = 1 + ends.astype(np.float64) - tps
    return fps, tps, scores[ends]


def _binary_roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's roc_auc_score of one label: the trapezoid under its ROC curve with intermediate points dropped."""
    fps, tps, _ = _curve_counts(truth, scores)
    if len(fps) > 2:
        optimal = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[optimal], tps[optimal]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0, dtype=np.float64))


def _precision_recall_curve(
    truth: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's precision_recall_curve: precision and recall by increasing threshold, then (1, 0)."""
    fps, tps, thresholds = _curve_counts(truth, scores)
    ps = tps + fps
    precision = np.where(ps != 0, np.divide(tps, ps), 0.0)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _binary_average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's average_precision_score of one label (the step integral of its precision-recall curve)."""
    precision, recall, _ = _precision_recall_curve(truth, scores)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _binary_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """sklearn's f1_score (zero_division=0) of one label: 2 TP / (2 TP + FP + FN)."""
    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    denominator = float(truth.sum()) + float(predicted.sum())
    return 2.0 * float((truth & predicted).sum()) / denominator if denominator > 0 else 0.0


def _start(
    task: str, y_true: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict, list[str]]:
    """Labels and float64 scores as arrays, an empty result of `task` and its list of notes."""
    return np.asarray(y_true), np.asarray(scores, dtype=np.float64), empty_metrics(task), []


def empty_metrics(task: str) -> dict[str, Any]:
    metrics = dict.fromkeys(METRICS[task], math.nan)
    return {**metrics, "per_label": {}, "excluded": {}, "nan_reasons": {}, "warnings": []}


def undefined(result: dict[str, Any], reason: str, metrics: Sequence[str]) -> dict[str, Any]:
    for metric in metrics:
        result[metric] = math.nan
        result["nan_reasons"][metric] = reason
    return result


def metric_on_videos(
    task: str,
    metric: str,
    labels: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> float:
    """`metric` ('roc_auc', 'f1', 'pr_auc') of `task` on the given test videos, as the macro average of
    `genre_metrics` / `tagging_metrics`; NaN where it is undefined (a draw holding a single class).

    genre: `labels` [n] class indices into the columns of `scores` [n, classes]; macro over the classes present,
    F1 by argmax. tagging: `labels` [n, tags] 0/1; macro over the tags with positive and negative videos, F1 at
    `thresholds` [tags]. `kept` [labels] (default: all) marks the labels that may enter the average: the
    metrics' `left_out` labels are False.
    """
    scores = np.asarray(scores, dtype=np.float64)
    kept = np.ones(scores.shape[1], dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    if task == "genre":
        if metric == "pr_auc":
            return math.nan
        truth = np.asarray(labels)[:, None] == np.arange(scores.shape[1])  # one-vs-rest, [n, classes]
        if metric == "roc_auc":
            return _macro_roc_auc(truth[:, kept], scores[:, kept])
        present = truth.any(axis=0) & kept
        predicted = scores.argmax(axis=1)[:, None] == np.arange(scores.shape[1])
        return float(_f1(truth, predicted)[present].mean()) if present.any() else math.nan
    truth = np.asarray(labels).astype(bool)
    if metric == "roc_auc":
        return _macro_roc_auc(truth[:, kept], scores[:, kept])
    positives = truth.sum(axis=0)
    usable = (positives > 0) & (positives < len(truth)) & kept
    if not usable.any():
        return math.nan
    if metric == "f1":
        if thresholds is None:
            raise ValueError("metric_on_videos: tagging F1 needs the per-tag thresholds")
        return float(_f1(truth, scores >= np.asarray(thresholds))[usable].mean())
    if metric == "pr_auc":
        return float(np.mean([_average_precision(truth[:, j], scores[:, j]) for j in np.flatnonzero(usable)]))
    raise ValueError(f"metric_on_videos: unknown metric {metric!r}; choose roc_auc, f1 or pr_auc")


def _macro_roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mean over the columns with both classes of the Mann-Whitney AUC (ties share their mean rank)."""
    positives = truth.sum(axis=0)
    negatives = len(truth) - positives
    usable = (positives > 0) & (negatives > 0)
    if not usable.any():
        return math.nan
    ranks = _average_ranks(scores[:, usable])
    p, n = positives[usable], negatives[usable]
    auc = ((ranks * truth[:, usable]).sum(axis=0) - p * (p + 1) / 2) / (p * n)
    return float(auc.mean())


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks 1..n of each column's scores, ties sharing their mean rank (scipy.stats.rankdata's 'average', whose
    import is slow); NaN down a column holding a NaN, as rankdata propagates it."""
    n = len(scores)
    order = np.argsort(scores, axis=0, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=0)
    position = np.arange(n)[:, None]
    new = np.ones(ordered.shape, dtype=bool)  # a score differing from the one below it starts a group of ties
    new[1:] = ordered[1:] != ordered[:-1]
    last = np.ones(ordered.shape, dtype=bool)
    last[:-1] = new[1:]
    first_of_group = np.maximum.accumulate(np.where(new, position, 0), axis=0)
    last_of_group = np.minimum.accumulate(np.where(last, position, n)[::-1], axis=0)[::-1]
    ranks = np.empty(ordered.shape)
    np.put_along_axis(ranks, order, (first_of_group + last_of_group) / 2 + 1, axis=0)
    ranks[:, np.isnan(scores).any(axis=0)] = np.nan
    return ranks


def _f1(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-column F1 = 2TP / (2TP + FP + FN), 0 where nothing is positive in either."""
    tp = (truth & predicted).sum(axis=0)
    denominator = truth.sum(axis=0) + predicted.sum(axis=0)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Average precision as scikit-learn computes it: sum over distinct thresholds of (R_i - R_{i-1}) P_i."""
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last row of each distinct score
    true_positives = np.cumsum(truth)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def metric_on_draws(
    task: str,
    metric: str,
    labels: np.ndarray,
    scores: np.ndarray,
    counts: np.ndarray,
    thresholds: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> np.ndarray:
    """[B] `metric_on_videos` on each of B draws of the test videos, equal to it float for float; `counts[b, i]`
    is how often draw b holds video i (a row of `labels` and `scores`). Scores must be finite."""
    scores = np.asarray(scores, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)  # whole numbers: every sum of them below is exact
    kept = np.ones(scores.shape[1], dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    drawn = counts.sum(axis=1)[:, None]  # videos per draw
    if task == "genre":
        if metric == "pr_auc":
            return np.full(len(counts), math.nan)
        truth = np.asarray(labels)[:, None] == np.arange(scores.shape[1])  # one-vs-rest, [n, classes]
        if metric == "roc_auc":
            return _macro_roc_auc_on_draws(truth[:, kept], scores[:, kept], counts)
        present = (counts @ truth > 0) & kept
        predicted = scores.argmax(axis=1)[:, None] == np.arange(scores.shape[1])
        return _mean_where(_f1_on_draws(truth, predicted, counts), present)
    truth = np.asarray(labels).astype(bool)
    if metric == "roc_auc":
        return _macro_roc_auc_on_draws(truth[:, kept], scores[:, kept], counts)
    positives = counts @ truth
    usable = (positives > 0) & (positives < drawn) & kept
    if metric == "f1":
        if thresholds is None:
            raise ValueError("metric_on_draws: tagging F1 needs the per-tag thresholds")
        return _mean_where(_f1_on_draws(truth, scores >= np.asarray(thresholds), counts), usable)
    if metric == "pr_auc":
        precision = np.full(usable.shape, math.nan)
        for j in np.flatnonzero(usable.any(axis=0)):
            precision[:, j] = _average_precision_on_draws(truth[:, j], scores[:, j], counts)
        return _mean_where(precision, usable)
    raise ValueError(f"metric_on_draws: unknown metric {metric!r}; choose roc_auc, f1 or pr_auc")


def _levels(scores: np.ndarray, counts: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([B, L] videos, [B, L] positive videos) of each draw at each of the L distinct `scores` [n], in the order
    of `scores` (sort them first)."""
    starts = np.r_[0, np.flatnonzero(np.diff(scores)) + 1]
    return np.add.reduceat(counts, starts, axis=1), np.add.reduceat(counts * truth, starts, axis=1)


def _macro_roc_auc_on_draws(truth: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`_macro_roc_auc` on each draw: the rank sum of a column's positives from the videos drawn at each
    distinct score (a tie at one score shares its mean rank, as a video drawn twice ties with itself)."""
    positives = counts @ truth  # [B, labels]
    negatives = counts.sum(axis=1)[:, None] - positives
    auc = np.full(positives.shape, math.nan)
    for c in range(scores.shape[1]):
        order = np.argsort(scores[:, c], kind="stable")
        videos, hits = _levels(scores[order, c], counts[:, order], truth[order, c])
        below = np.cumsum(videos, axis=1) - videos
        # Twice a video's mean rank, 2 * below + videos + 1, is a whole number; so is twice the rank sum.
        rank_sum = (hits * (2 * below + videos + 1)).sum(axis=1) / 2
        p, n = positives[:, c], negatives[:, c]
        with np.errstate(divide="ignore", invalid="ignore"):
            auc[:, c] = (rank_sum - p * (p + 1) / 2) / (p * n)
    return _mean_where(auc, (positives > 0) & (negatives > 0))


def _f1_on_draws(truth: np.ndarray, predicted: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`_f1` on each draw: [B, labels]."""
    tp = counts @ (truth & predicted)
    denominator = counts @ truth + counts @ predicted
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _average_precision_on_draws(truth: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`_average_precision` of one tag on each draw: [B]. Precision and recall at every distinct score, from
    the highest; a score no video of the draw holds adds nothing and is skipped in the sum."""
    order = np.argsort(-scores, kind="stable")
    videos, hits = _levels(scores[order], counts[:, order], truth[order])
    true_positives, ranked = np.cumsum(hits, axis=1), np.cumsum(videos, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = true_positives / ranked
        recall = true_positives / true_positives[:, -1:]
    return _sum_where(np.diff(recall, axis=1, prepend=0.0) * precision, videos > 0)


def _packed(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row's values where `mask` holds, moved left in their order; how many per row)."""
    order = np.argsort(~mask, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), mask.sum(axis=1)


def _mean_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[B] np.mean of each row's values where `mask` holds (NaN where none does), bit for bit: rows with the
    same count are averaged together, so numpy adds each row's values in the order it adds one row's."""
    packed, sizes = _packed(values, mask)
    means = np.full(len(values), math.nan)
    for size in np.unique(sizes[sizes > 0]):
        rows = sizes == size
        means[rows] = packed[rows, :size].mean(axis=1)
    return means


def _sum_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[B] np.sum of each row's values where `mask` holds (0 where none does), bit for bit like `_mean_where`."""
    packed, sizes = _packed(values, mask)
    sums = np.zeros(len(values))
    for size in np.unique(sizes[sizes > 0]):
        rows = sizes == size
        sums[rows] = packed[rows, :size].sum(axis=1)
    return sums
