"""Uncertainty of a metric over the test set: bootstrap over test videos, paired comparisons, permutations.

A test set is a sample of videos; a metric computed on it (a median rank, a probe's ROC-AUC) would come out
differently on another sample of the same size. The bootstrap redraws the test videos with replacement
(`resample` times, seeded) and recomputes the metric on each draw; the 2.5th and 97.5th percentiles of those
values are the 95% interval (percentile bootstrap). A video is drawn with all its segments, since segments of
one video are not independent.

Two representations scored on the same test videos are compared *paired*: every draw scores both on the same
resampled videos, so their shared sampling noise cancels in the difference. The two-sided p-value of "no
difference" is twice the smaller tail of the bootstrap differences around zero (with the usual +1 correction,
so it is never 0). A median rank against chance uses a permutation test instead: the pairing of audio and video
is shuffled, which is exactly what "no alignment" means.

Metrics are functions of an index array of videos (`metric(videos) -> float`), so one draw can be any
statistic of any per-video data; a draw on which the metric is undefined (NaN, e.g. an AUC on a draw with a
single class) is left out, and the number of such draws is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95

Metric = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate on the whole test set and its bootstrap interval."""

    value: float
    low: float
    high: float
    n_videos: int  # test videos the interval rests on
    resamples: int  # draws on which the metric was defined
    undefined: int = 0  # draws on which it was not (left out)

    def as_dict(self, prefix: str) -> dict[str, float]:
        """{prefix: value, prefix_ci_low: low, prefix_ci_high: high} for a results table."""
        return {prefix: self.value, f"{prefix}_ci_low": self.low, f"{prefix}_ci_high": self.high}

    def text(self, digits: int = 2) -> str:
        """'0.83 [0.71, 0.92]' (or 'n/a')."""
        if not math.isfinite(self.value):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Comparison:
    """A paired difference `a - b` on the same test videos, its bootstrap interval and two-sided p-value."""

    difference: Interval
    p_value: float

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self.difference), "p_value": self.p_value}


def draws(n_videos: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_videos] indices of videos drawn with replacement; the same seed, the same draws."""
    if n_videos < 1:
        raise ValueError("the bootstrap needs at least one test video")
    return np.random.default_rng(np.random.SeedSequence([seed, n_videos])).integers(
        n_videos, size=(resamples, n_videos)
    )


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if len(values) == 0:
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _summary(value: float, values: np.ndarray, n_videos: int, level: float) -> tuple[Interval, np.ndarray]:
    """The interval of `value` from its bootstrap `values` on `n_videos` test videos, and the defined draws."""
    defined = values[np.isfinite(values)]
    low, high = _percentiles(defined, level)
    return Interval(value, low, high, n_videos, len(defined), len(values) - len(defined)), defined


def _on_draws(metric: Metric, indices: np.ndarray) -> np.ndarray:
    return np.array([metric(draw) for draw in indices], dtype=np.float64)


def interval(
    metric: Metric, n_videos: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Interval:
    """The metric on all `n_videos` test videos and its percentile-bootstrap interval."""
    value = float(metric(np.arange(n_videos)))
    return _summary(value, _on_draws(metric, draws(n_videos, resamples, seed)), n_videos, level)[0]


def paired(
    metric_a: Metric,
    metric_b: Metric,
    n_videos: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Comparison:
    """`metric_a - metric_b` on the same test videos, with a paired bootstrap interval and p-value."""
    value = float(metric_a(np.arange(n_videos)) - metric_b(np.arange(n_videos)))
    indices = draws(n_videos, resamples, seed)
    differences = _on_draws(metric_a, indices) - _on_draws(metric_b, indices)
    difference, defined = _summary(value, differences, n_videos, level)
    return Comparison(difference, two_sided_p(defined))


def two_sided_p(differences: np.ndarray) -> float:
    """Bootstrap p-value of 'no difference': twice the smaller share of draws on either side of 0."""
    n = len(differences)
    if n == 0:
        return math.nan
    below, above = int((differences <= 0).sum()), int((differences >= 0).sum())
    return float(min(1.0, 2 * (min(below, above) + 1) / (n + 1)))


def permutation_p(
    statistic: Callable[[np.ndarray], float],
    observed: float,
    n: int,
    permutations: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> float:
    """One-sided permutation p-value: how often a random pairing (`statistic(permutation)`) is as good as the
    observed one, i.e. `<= observed` (smaller is better, as for a median rank)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, 1]))
    values = np.array([statistic(rng.permutation(n)) for _ in range(permutations)])
    return float((int((values <= observed).sum()) + 1) / (permutations + 1))


def video_codes(video_ids: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique video ids in order of appearance, [n_rows] code of each row's video) for resampling rows by video."""
    ids = np.asarray(video_ids)
    unique, first, codes = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # appearance order
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return unique[order], remap[codes]


def rows_of(videos: np.ndarray, rows_by_video: list[np.ndarray]) -> np.ndarray:
    """The row indices of the drawn videos (a video drawn twice contributes its rows twice)."""
    return np.concatenate([rows_by_video[v] for v in videos]) if len(videos) else np.zeros(0, dtype=np.int64)


def rows_by_video(codes: np.ndarray, n_videos: int) -> list[np.ndarray]:
    """For each video code, the indices of its rows."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_videos + 1))
    return [order[bounds[v] : bounds[v + 1]] for v in range(n_videos)]
