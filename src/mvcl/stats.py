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

Training replicates. A configuration trained N times from N seeds is a sample of trained models: its figure is
the median over replicates of each replicate's metric, and its interval comes from a two-level bootstrap
(`two_level_interval`): each draw takes N replicates with replacement, then the test videos with replacement
(the same videos for every replicate of the draw: they rank the same test set), and recomputes the median over
the drawn replicates. So the interval carries training variance as well as test-video variance; with one
replicate it is the single-level interval above, draw for draw. Two configurations are compared the same way
(`two_level_paired`): replicates paired by index (replicate r of both was trained from the same seed) when
both have the same count, and the same drawn videos on both sides.

A family of p-values (one table's tests) is corrected with Holm's step-down method (`holm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

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
    n_replicates: int = 1  # training replicates it rests on (two-level bootstrap when more than one)

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
    """Bootstrap p-value of 'no difference': twice the smaller share of draws on either side of 0.

    A draw with a difference of exactly 0 counts half in each tail (not whole in both, which pushed p up to
    1 when many draws tie, as medians of ranks often do).
    """
    n = len(differences)
    if n == 0:
        return math.nan
    zeros = float((differences == 0).sum())
    below, above = float((differences < 0).sum()) + zeros / 2, float((differences > 0).sum()) + zeros / 2
    return float(min(1.0, 2 * (min(below, above) + 1) / (n + 1)))


def p_text(p: float) -> str:
    """A p-value as a table prints it: three decimals, '≤ 0.001' below that (the resolution of 1000 draws)."""
    if not math.isfinite(p):
        return "n/a"
    return "≤ 0.001" if p <= 0.001 else f"{p:.3f}"


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family (NaN entries stay NaN and do not count)."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


# metric(replicate, videos) -> float: one replicate's figure on a draw of test videos.
ReplicateMetric = Callable[[int, np.ndarray], float]


def replicate_draws(n_replicates: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_replicates] replicate indices drawn with replacement (all zeros for one replicate)."""
    if n_replicates < 1:
        raise ValueError("the bootstrap needs at least one replicate")
    rng = np.random.default_rng(np.random.SeedSequence([seed, n_replicates, 2]))
    return rng.integers(n_replicates, size=(resamples, n_replicates))


# How a figure sums up its replicates: Table 1 takes the median rank (robust to a replicate left at chance),
# Table 2 the mean AUC (the mean over seeds it always reported). Called with axis=1 on [draws, replicates].
Center = Callable[..., np.ndarray]


def _on_all_draws(metric: ReplicateMetric, n_replicates: int, videos: np.ndarray) -> np.ndarray:
    """[B, n_replicates] each replicate's metric on each draw of `videos` [B, n]; a metric with an
    `on_draws(replicate, videos)` method computes a replicate's draws together."""
    together = getattr(metric, "on_draws", None)
    columns = [
        together(r, videos) if together is not None else np.array([metric(r, row) for row in videos], float)
        for r in range(n_replicates)
    ]
    return np.stack(columns, axis=1)


def _center_on_draws(values: np.ndarray, replicates: np.ndarray, center: Center) -> np.ndarray:
    """[B] `center` over the drawn replicates (`replicates` [B, N] indices) of each draw's values [B, N];
    NaN where a drawn replicate's metric is undefined."""
    drawn = np.take_along_axis(values, replicates, axis=1)
    out = np.asarray(center(drawn, axis=1), dtype=np.float64)
    return np.where(np.isfinite(drawn).all(axis=1), out, np.nan)


def replicate_values(metric: ReplicateMetric, n_replicates: int, n_videos: int) -> np.ndarray:
    """[n_replicates] each replicate's metric on all test videos."""
    return np.array([metric(r, np.arange(n_videos)) for r in range(n_replicates)], dtype=np.float64)


def two_level_interval(
    metric: ReplicateMetric,
    n_replicates: int,
    n_videos: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    center: Center = np.median,
) -> Interval:
    """Median (`center`) over replicates of `metric` on all test videos, and its two-level percentile-bootstrap
    interval (draw replicates, then test videos)."""
    value = float(center(replicate_values(metric, n_replicates, n_videos)))
    videos, replicates = draws(n_videos, resamples, seed), replicate_draws(n_replicates, resamples, seed)
    values = _center_on_draws(_on_all_draws(metric, n_replicates, videos), replicates, center)
    return replace(_summary(value, values, n_videos, level)[0], n_replicates=n_replicates)


def two_level_paired(
    metric_a: ReplicateMetric,
    n_replicates_a: int,
    metric_b: ReplicateMetric,
    n_replicates_b: int,
    n_videos: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    center: Center = np.median,
) -> Comparison:
    """(median over a's replicates) - (median over b's), each draw on the same test videos for both sides;
    replicates paired by index (the same seeds) when the counts match, drawn independently otherwise."""
    value = float(
        center(replicate_values(metric_a, n_replicates_a, n_videos))
        - center(replicate_values(metric_b, n_replicates_b, n_videos))
    )
    videos = draws(n_videos, resamples, seed)
    drawn_a = replicate_draws(n_replicates_a, resamples, seed)
    drawn_b = (
        drawn_a if n_replicates_a == n_replicates_b else replicate_draws(n_replicates_b, resamples, seed + 1)
    )
    differences = _center_on_draws(
        _on_all_draws(metric_a, n_replicates_a, videos), drawn_a, center
    ) - _center_on_draws(_on_all_draws(metric_b, n_replicates_b, videos), drawn_b, center)
    difference, defined = _summary(value, differences, n_videos, level)
    return Comparison(
        replace(difference, n_replicates=min(n_replicates_a, n_replicates_b)), two_sided_p(defined)
    )


def permutation_p(
    statistic: Callable[[np.ndarray], float],
    observed: float,
    n: int,
    permutations: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> float:
    """One-sided permutation p-value: how often a random pairing (`statistic(permutation)`) is as good as the
    observed one, i.e. `<= observed` (smaller is better, as for a median rank)."""
    return p_at_most(permutation_values(statistic, n, permutations, seed), observed)


def permutation_values(
    statistic: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    permutations: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    batched: bool = False,
) -> np.ndarray:
    """[permutations] `statistic` on random permutations of n; the same seed and n, the same permutations.
    `statistic` takes one permutation [n], or all of them [permutations, n] when `batched`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, 1]))
    drawn = np.array([rng.permutation(n) for _ in range(permutations)]).reshape(permutations, n)
    if batched:
        return np.asarray(statistic(drawn), dtype=np.float64)
    return np.array([statistic(permutation) for permutation in drawn])


def p_at_most(null: np.ndarray, observed: float) -> float:
    """One-sided p-value: how often the null values are `<= observed` (+1 correction, never 0)."""
    return float((int((null <= observed).sum()) + 1) / (len(null) + 1))


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
