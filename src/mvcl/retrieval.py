"""Cross-modal retrieval ranks on test-segment embeddings (study section 5, Table 1), and the study's own numbers.

Rank. For audio query i, the rank of its own video i among the candidate videos by cosine similarity (the
embeddings are L2-normalised, so a dot product), 1 = retrieved first; video → audio likewise. Ties count half:
rank = 1 + #{j: s_ij > s_ii} + #{j ≠ i: s_ij = s_ii} / 2, the expected rank under a random tie-break (mid-rank).
So a collapsed model whose embeddings are all equal ranks at chance, (pool + 1) / 2, neither at 1 (optimistic)
nor at the pool size (pessimistic). Similarities are computed in float64 and values within 1e-9 of the
positive's count as ties, so equal vectors tie whatever order BLAS sums in. Recall@k is the same expectation:
a positive tied with t - 1 others takes each of its t possible ranks with probability 1 / t, so it counts the
share of them that are k or better (`recall_credit`), and a collapsed model scores chance, k / candidates.

Pools. The study ranks among pools of 1000 test segments. We shuffle the test set (seeded) and cut it into
disjoint pools of `pool_size`. The r leftover segments (r < pool_size) are ranked against themselves plus
pool_size - r candidates drawn from the other pools, so every query is ranked once and always among exactly
`pool_size` candidates (chance stays (pool_size + 1) / 2). A test set smaller than one pool is one pool. The
whole test set is also ranked as a single pool, blockwise, so memory stays flat (no n x n matrix). Ranking
videos instead of segments (the temporal model) is `median_rank` on `mean_by_video` embeddings.

The study's computation (`study_median_rank`) is kept to be reported beside ours: their code takes
`np.diag(np.argsort(sim, axis=1))` in consecutive pools of 1000, an index into the sorted row rather than a
rank, which sits near pool/2 for any model, and reuses the video → audio numbers for audio → video.

Candidates (`retrieval.candidates`). `all_segments` ranks a query among every segment of its pool, its own
video's other segments included; those share the song and the look, so a model that recognises the video can
still rank a sibling above the true segment. `other_videos` leaves a query's own video's other segments out of
its candidates (its positive stays), which is what the study's test effectively did (one segment per video):
each query's pool shrinks by its siblings, and chance is the median over queries of (candidates + 1) / 2.
Video-level ranks (MVPt's track-level retrieval) rank each test video's mean embedding (`mvcl.vectors.video_means`,
L2-normalised) among all test videos' means; chance (videos + 1) / 2.

Intervals (`evaluate_retrieval`). Ranks are computed once on the whole test set; a bootstrap draw resamples
test videos with replacement (mvcl.stats, seeded) and re-selects the queries of the drawn videos,
each keeping the rank it got in its own pool (segment queries) or among all test videos (video queries). So
the interval is over which queries the test set holds, with the candidates held fixed: a draw never re-pools
or re-ranks, which keeps 1000 draws at the study's size to seconds. The median of a draw is a weighted median
over the queries ranked once (a video drawn twice weighs twice), equal to np.median of the re-selected ranks.
Against chance, the audio-video pairing is permuted within each pool (query i's positive becomes another
query's partner of the same pool) and the pooled median rank recomputed (`permutation_p`); the one-sided p-value
is how often a random pairing ranks as well as the real one.

Replicates. A configuration's test embeddings come from `training.replicates` training runs, ranked alike (the
same pools). Its record (`RetrievalRecord`, results/metrics/{configuration}/retrieval.json) gives each figure as
the median over replicates with a two-level interval (mvcl.stats.two_level_interval: replicates, then test
videos), each replicate's own figures and permutation p-values ("learned": better than chance both ways), and
the configuration's p-value against chance: each permutation's median over replicates is the null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mvcl.io import save_json
from mvcl.plan import RECALL_AT
from mvcl.stats import (
    DEFAULT_RESAMPLES,
    Comparison,
    Interval,
    p_at_most,
    permutation_values,
    two_level_interval,
    two_level_paired,
    video_codes,
)
from mvcl.vectors import video_means

CANDIDATES = ("all_segments", "other_videos")
# Below this many test videos, Table 1 says its intervals rest on a small collection (and the log warns).
SMALL_TEST_VIDEOS = 30
DIRECTIONS = ("a2v", "v2a")
_TIE = 1e-9
_BLOCK = 2048  # rows per block: a block of similarities is 2048 x 2048 float32 = 16 MiB
_CELLS = 1 << 22  # draws x queries (or permutations x pool cells) held at once: 32 MiB of float64


def _check(audio_emb: np.ndarray, video_emb: np.ndarray) -> None:
    if audio_emb.shape != video_emb.shape or audio_emb.ndim != 2:
        raise ValueError(
            f"embeddings must be [n, d] and row-aligned: audio {audio_emb.shape}, video {video_emb.shape}"
        )
    if len(audio_emb) < 2:
        raise ValueError(f"ranking needs at least 2 test segments, got {len(audio_emb)}")
    for name, emb in (("audio", audio_emb), ("video", video_emb)):
        if not np.isfinite(emb).all():
            raise ValueError(
                f"{name} embeddings hold non-finite rows; drop them (and their pairs) before ranking"
            )


def _float32_error(dim: int) -> float:
    """Bound on |float32 dot - exact dot| / (|q| |c|) for dim-d vectors rounded to float32 and summed in float32
    in any order (Higham's gamma_{d+2}; Cauchy-Schwarz bounds sum |q_k c_k| by |q| |c|)."""
    k = (dim + 2) * 2.0**-24
    return k / (1 - k)


def _dots(query: np.ndarray, candidates: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """float64 similarities of the pairs (query[rows[k]], candidates[columns[k]]), in chunks (memory stays
    flat): every float64 similarity that decides a count comes from here."""
    out = np.empty(len(rows))
    for start in range(0, len(rows), _BLOCK):
        part = slice(start, start + _BLOCK)
        out[part] = np.einsum(
            "kd,kd->k",
            np.asarray(query[rows[part]], dtype=np.float64),
            np.asarray(candidates[columns[part]], dtype=np.float64),
        )
    return out


def _classify(sim: np.ndarray, positive_sim: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(above, tied) of float64 similarities against the positive's: ties within _TIE."""
    return sim > positive_sim + _TIE, np.abs(sim - positive_sim) <= _TIE


def ranks_and_ties(
    query: np.ndarray,
    candidates: np.ndarray,
    positive: np.ndarray,
    query_groups: np.ndarray | None = None,
    candidate_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """([m] 1-based mid-ranks, [m] tie counts): the rank of `candidates[positive[i]]` among all candidates
    for `query[i]`, and how many candidates tie with it (itself included, so at least 1).

    With groups (video codes), the candidates of query i's own group other than its positive are left out
    (`other_videos`); the positive always stays.

    Similarities are computed in float32 blocks, yet every count is the float64 one: a candidate whose float32
    similarity lies within the float32 error bound (plus twice the tie tolerance) of the positive's float64
    similarity is re-scored in float64, so "above" and "tied" are decided as on float64 similarities.
    """
    counts = _RankCounts(query, candidates, positive)
    query32 = np.ascontiguousarray(query, dtype=np.float32)
    candidates32 = np.ascontiguousarray(candidates, dtype=np.float32)
    for q0 in range(0, len(query), _BLOCK):
        for c0 in range(0, len(candidates), _BLOCK):
            counts.add(query32[q0 : q0 + _BLOCK] @ candidates32[c0 : c0 + _BLOCK].T, q0, c0)
    return counts.ranks_and_ties(query_groups, candidate_groups)


def recall_credit(rank: np.ndarray, tied: np.ndarray, k: float) -> np.ndarray:
    """[m] expected hit@k under a random tie-break: the share of a positive's `tied` equally likely ranks,
    rank - (tied - 1) / 2 ... rank + (tied - 1) / 2 around its mid-rank, that are k or better."""
    best = rank - (tied - 1) / 2
    return np.clip((k - best + 1) / tied, 0.0, 1.0)


def ranks_both_ways(
    audio_emb: np.ndarray, video_emb: np.ndarray, groups: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """`ranks_and_ties`'s ranks both ways (a2v, v2a) of every row's partner among all rows; see `ranks_and_ties_both_ways`."""
    return {d: rank for d, (rank, _) in ranks_and_ties_both_ways(audio_emb, video_emb, groups).items()}


def ranks_and_ties_both_ways(
    audio_emb: np.ndarray, video_emb: np.ndarray, groups: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`ranks_and_ties` of every row's partner both ways (a2v, v2a) among all rows: one similarity block serves both
    directions (v2a's block is a2v's transposed), so the whole test set costs one matrix product."""
    everyone = np.arange(len(audio_emb))
    a2v, v2a = _RankCounts(audio_emb, video_emb, everyone), _RankCounts(video_emb, audio_emb, everyone)
    audio32 = np.ascontiguousarray(audio_emb, dtype=np.float32)
    video32 = np.ascontiguousarray(video_emb, dtype=np.float32)
    # The two directions count a block side by side (numpy's comparisons run on one core each).
    with ThreadPoolExecutor(max_workers=2) as workers:
        for a0 in range(0, len(audio32), _BLOCK):
            for v0 in range(0, len(video32), _BLOCK):
                sim = audio32[a0 : a0 + _BLOCK] @ video32[v0 : v0 + _BLOCK].T  # [audio, video] float32
                counted = [workers.submit(a2v.add, sim, a0, v0), workers.submit(v2a.add, sim.T, v0, a0)]
                for future in counted:
                    future.result()
    return {"a2v": a2v.ranks_and_ties(groups, groups), "v2a": v2a.ranks_and_ties(groups, groups)}


class _RankCounts:
    """Candidates above and tied with each query's positive, counted block by block (see `ranks_and_ties`)."""

    def __init__(self, query: np.ndarray, candidates: np.ndarray, positive: np.ndarray) -> None:
        self.query, self.candidates, self.positive = query, candidates, positive
        self.positive_sim = _dots(query, candidates, np.arange(len(query)), positive)  # [m]
        margin = _float32_error(query.shape[1]) * _norms(query) * _norms(candidates).max() + 2 * _TIE
        # Float32 thresholds rounded outwards: above `high` is surely above, below `low` surely neither.
        self.high = np.nextafter((self.positive_sim + margin).astype(np.float32), np.float32(np.inf))[:, None]
        self.low = np.nextafter((self.positive_sim - margin).astype(np.float32), np.float32(-np.inf))[:, None]
        self.above = np.zeros(len(query), dtype=np.int64)
        self.tied = np.ones(len(query), dtype=np.int64)  # the positive ties with itself

    def add(self, sim: np.ndarray, q0: int, c0: int) -> None:
        """Count a float32 block sim [c, c'] of queries q0.. against candidates c0..."""
        rows = slice(q0, q0 + len(sim))
        surely_above = sim > self.high[rows]
        self.above[rows] += np.count_nonzero(surely_above, axis=1)
        unsure = sim >= self.low[rows]
        unsure ^= surely_above  # within the bound of the positive: near-ties, the positive itself
        positive = self.positive[rows]
        here = (positive >= c0) & (positive < c0 + sim.shape[1])  # the positive is in this block
        to_check = np.flatnonzero(np.count_nonzero(unsure, axis=1) > here)  # rare but for collapsed models
        block_rows, columns = np.nonzero(unsure[to_check])
        i, columns = q0 + to_check[block_rows], c0 + columns
        keep = columns != self.positive[i]  # the positive already counts as tied
        i, columns = i[keep], columns[keep]
        exact_above, exact_tied = _classify(
            _dots(self.query, self.candidates, i, columns), self.positive_sim[i]
        )
        self.above[rows] += np.bincount(i[exact_above] - q0, minlength=len(sim))
        self.tied[rows] += np.bincount(i[exact_tied] - q0, minlength=len(sim))

    def ranks_and_ties(
        self, query_groups: np.ndarray | None, candidate_groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mid-ranks [m], and how many candidates tie with each positive (itself included)."""
        above, tied = self.above.copy(), self.tied.copy()
        if query_groups is not None and candidate_groups is not None:
            # Leave out each query's own video's other segments: take back what they were counted as (the
            # blocks counted each as its float64 classification, which is what _classify gives here).
            pairs_query, pairs_candidate = _same_group_pairs(query_groups, candidate_groups, self.positive)
            pair_above, pair_tied = _classify(
                _dots(self.query, self.candidates, pairs_query, pairs_candidate),
                self.positive_sim[pairs_query],
            )
            above -= np.bincount(pairs_query[pair_above], minlength=len(above))
            tied -= np.bincount(pairs_query[pair_tied], minlength=len(tied))
        return 1 + above + (tied - 1) / 2, tied.astype(np.float64)


def _norms(vectors: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("kd,kd->k", vectors, vectors, dtype=np.float64))


def _same_group_pairs(
    query_groups: np.ndarray, candidate_groups: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(query row, candidate row) of every candidate in the query's group other than its positive."""
    order = np.argsort(candidate_groups, kind="stable")
    sorted_groups = candidate_groups[order]
    start = np.searchsorted(sorted_groups, query_groups, side="left")
    counts = np.searchsorted(sorted_groups, query_groups, side="right") - start
    pairs_query = np.repeat(np.arange(len(query_groups)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pairs_candidate = order[np.repeat(start, counts) + offsets]
    keep = pairs_candidate != positive[pairs_query]
    return pairs_query[keep], pairs_candidate[keep]


def candidate_counts(
    query_groups: np.ndarray, candidate_groups: np.ndarray, other_videos: bool
) -> np.ndarray:
    """[m] candidates each query is ranked among: the pool, less its own video's other segments when asked."""
    if not other_videos:
        return np.full(len(query_groups), len(candidate_groups))
    same = np.bincount(candidate_groups, minlength=int(query_groups.max()) + 1)[query_groups]
    return len(candidate_groups) - same + 1


def _summary(rank: np.ndarray, tied: np.ndarray, direction: str, prefix: str = "") -> dict[str, float]:
    """Median and mean rank and recall@k (ties shared, `recall_credit`) of one direction."""
    out = {
        f"{prefix}median_rank_{direction}": float(np.median(rank)),
        f"{prefix}mean_rank_{direction}": float(np.mean(rank)),
    }
    out.update(
        {f"{prefix}recall@{k}_{direction}": float(np.mean(recall_credit(rank, tied, k))) for k in RECALL_AT}
    )
    return out


def pools(n: int, pool_size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query rows, candidate rows) per pool; the queries are the first rows of their candidates."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if n <= pool_size:
        return [(order, order)]
    n_full = n // pool_size
    full = order[: n_full * pool_size]
    out = [(pool, pool) for pool in np.split(full, n_full)]
    rest = order[n_full * pool_size :]
    if len(rest):  # leftovers: topped up with candidates from the full pools
        extra = rng.choice(full, pool_size - len(rest), replace=False)
        out.append((rest, np.concatenate([rest, extra])))
    return out


@dataclass(frozen=True)
class RankSettings:
    """How a test set is ranked: shuffled by `seed` into pools of `pool_size` (`pools`), each query among its
    pool's candidates (`candidates`: all_segments, or other_videos, which needs `codes` [n], each row's video)."""

    pool_size: int
    seed: int
    codes: np.ndarray | None = None
    candidates: str = "all_segments"

    def pools(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(query rows, candidate rows) of each pool of a test set of `n` rows (`pools`)."""
        return pools(n, self.pool_size, self.seed)

    def groups(self, n: int) -> np.ndarray | None:
        """[n] the group whose other members each query's candidates leave out (its video), or None."""
        if self.candidates not in CANDIDATES:
            raise ValueError(
                f"retrieval.candidates is '{self.candidates}'; use one of {', '.join(CANDIDATES)}"
            )
        if self.candidates == "all_segments":
            return None
        if self.codes is None or len(self.codes) != n:
            raise ValueError("retrieval.candidates: other_videos needs the video of every test segment")
        return np.asarray(self.codes)


@dataclass(frozen=True)
class RankSet:
    """Per-query ranks of one configuration's test set, computed once; intervals re-select from them."""

    codes: np.ndarray  # [n] video code (0..V-1) of each segment query
    pooled: dict[str, np.ndarray]  # direction -> [n] rank in its pool
    full: dict[str, np.ndarray]  # direction -> [n] rank among the whole test set
    pooled_tied: dict[str, np.ndarray]  # direction -> [n] candidates tied with the positive in its pool
    full_tied: dict[str, np.ndarray]  # direction -> [n] the same among the whole test set
    chance: np.ndarray  # [n] chance rank of each query in its pool, (candidates + 1) / 2
    full_chance: np.ndarray  # [n] the same among the whole test set


def rank_set(audio_emb: np.ndarray, video_emb: np.ndarray, settings: RankSettings) -> RankSet:
    """Ranks both ways (a2v: audio query, video candidates), in pools and over the whole test set."""
    _check(audio_emb, video_emb)
    n = len(audio_emb)
    groups = settings.groups(n)
    codes = np.zeros(n, dtype=np.int64) if settings.codes is None else np.asarray(settings.codes)
    pooled = {direction: np.empty(n) for direction in DIRECTIONS}
    pooled_tied = {direction: np.empty(n) for direction in DIRECTIONS}
    chance = np.empty(n)
    for query_rows, candidate_rows in settings.pools(n):
        positive = np.arange(len(query_rows))
        query_groups = None if groups is None else groups[query_rows]
        candidate_groups = None if groups is None else groups[candidate_rows]
        for direction, (query, pool) in {
            "a2v": (audio_emb, video_emb),
            "v2a": (video_emb, audio_emb),
        }.items():
            pooled[direction][query_rows], pooled_tied[direction][query_rows] = ranks_and_ties(
                query[query_rows], pool[candidate_rows], positive, query_groups, candidate_groups
            )
        chance[query_rows] = (
            candidate_counts(codes[query_rows], codes[candidate_rows], groups is not None) + 1
        ) / 2
    both = ranks_and_ties_both_ways(audio_emb, video_emb, groups)
    full = {direction: rank for direction, (rank, _) in both.items()}
    full_tied = {direction: tied for direction, (_, tied) in both.items()}
    full_chance = (candidate_counts(codes, codes, groups is not None) + 1) / 2
    return RankSet(codes, pooled, full, pooled_tied, full_tied, chance, full_chance)


def median_rank(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    pool_size: int,
    seed: int,
    codes: np.ndarray | None = None,
    candidates: str = "all_segments",
) -> dict[str, float]:
    """Correct ranks both ways (a2v: audio query, video candidates) in pools and over the whole test set.

    Takes `RankSettings`' fields as arguments (pool_size, seed, codes, candidates). Keys: n_queries,
    pool_size, n_pools, chance_median_rank, {median_rank, mean_rank, recall@1/5/10}_{a2v,v2a}, and the same
    for the whole set prefixed `full_` (full_pool_size = n_queries). `codes` (each row's video) with
    candidates='other_videos' leaves a query's own video's other segments out of its candidates.
    """
    settings = RankSettings(pool_size, seed, codes, candidates)
    return _rank_summary(rank_set(audio_emb, video_emb, settings), pool_size)


def _rank_summary(ranked: RankSet, pool_size: int) -> dict[str, float]:
    n = len(ranked.codes)
    size = min(pool_size, n)
    result = {
        "n_queries": n,
        "pool_size": size,
        "n_pools": max(1, math.ceil(n / pool_size)),
        "chance_median_rank": float(np.median(ranked.chance)),
        "mean_candidates": float(np.mean(2 * ranked.chance - 1)),
        "full_pool_size": n,
        "full_chance_median_rank": float(np.median(ranked.full_chance)),
    }
    for direction in DIRECTIONS:
        result.update(_summary(ranked.pooled[direction], ranked.pooled_tied[direction], direction))
        result.update(
            _summary(ranked.full[direction], ranked.full_tied[direction], direction, prefix="full_")
        )
    return result


def mean_by_video(emb: np.ndarray, video_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Video-level embeddings: (sorted unique video ids, L2-normalised mean of each video's rows [V, d])."""
    ids, codes = np.unique(video_ids, return_inverse=True)
    return ids, _normalised_means(emb, codes, len(ids))


def _normalised_means(emb: np.ndarray, codes: np.ndarray, n_videos: int) -> np.ndarray:
    means = video_means(emb, codes, n_videos)[0].astype(np.float64)
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def video_ranks(audio_emb: np.ndarray, video_emb: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Track-level ranks both ways: each test video's mean embedding ranked among all test videos' [V]."""
    return {
        direction: rank for direction, (rank, _) in video_ranks_and_ties(audio_emb, video_emb, codes).items()
    }


def video_ranks_and_ties(
    audio_emb: np.ndarray, video_emb: np.ndarray, codes: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`video_ranks` with the tie counts of `ranks_and_ties`, per direction."""
    n_videos = int(codes.max()) + 1
    audio, video = (
        _normalised_means(audio_emb, codes, n_videos),
        _normalised_means(video_emb, codes, n_videos),
    )
    return ranks_and_ties_both_ways(audio, video)


def _draw_weights(draws: np.ndarray, n_videos: int) -> np.ndarray:
    """[B, n_videos] how often each video was drawn in each row of `draws` [B, m]."""
    rows = np.repeat(np.arange(len(draws)), draws.shape[1])
    return (
        np.bincount(rows * n_videos + draws.ravel(), minlength=len(draws) * n_videos)
        .reshape(len(draws), n_videos)
        .astype(np.float64)
    )


class ByVideo:
    """Statistics of per-query values on a bootstrap draw of videos, without re-selecting rows.

    A draw is an array of video codes (with repeats); each query weighs as often as its video was drawn. The
    weighted median equals np.median of the re-selected values (the mean of the two middle ones when even).
    `tied` (ranks_and_ties's tie counts; none tied when omitted) shares recall@k's credit among tied ranks.
    """

    def __init__(self, values: np.ndarray, codes: np.ndarray, n_videos: int, tied: np.ndarray | None = None):
        order = np.argsort(values, kind="stable")
        self.sorted, self.sorted_codes, self.n_videos = values[order], codes[order], n_videos
        self.rows = np.bincount(codes, minlength=n_videos).astype(np.float64)
        self.codes, self.values = codes, values
        self.tied = np.ones(len(values)) if tied is None else tied

    def _weights(self, videos: np.ndarray) -> np.ndarray:
        return np.bincount(videos, minlength=self.n_videos).astype(np.float64)

    def median(self, videos: np.ndarray) -> float:
        cumulative = np.cumsum(self._weights(videos)[self.sorted_codes])
        total = int(cumulative[-1])
        if total == 0:
            return math.nan
        middle = np.searchsorted(cumulative, [(total - 1) // 2, total // 2], side="right")
        return float(self.sorted[middle].mean())

    def medians(self, draws: np.ndarray) -> np.ndarray:
        """[B] `median` on each row of `draws` [B, videos drawn], computed together (in chunks)."""
        out, n = np.empty(len(draws)), len(self.sorted)
        chunk = max(1, _CELLS // max(1, n))
        for b0 in range(0, len(draws), chunk):
            cumulative = np.cumsum(
                _draw_weights(draws[b0 : b0 + chunk], self.n_videos)[:, self.sorted_codes], 1
            )
            total = cumulative[:, -1].astype(np.int64)
            # np.searchsorted(cumulative, t, side="right") row by row: how many cumulative weights are <= t
            low = (cumulative <= ((total - 1) // 2)[:, None]).sum(axis=1)
            high = (cumulative <= (total // 2)[:, None]).sum(axis=1)
            values = (self.sorted[np.minimum(low, n - 1)] + self.sorted[np.minimum(high, n - 1)]) / 2
            out[b0 : b0 + len(values)] = np.where(total > 0, values, np.nan)
        return out

    def shares_at_most(self, k: float, draws: np.ndarray) -> np.ndarray:
        """[B] `share_at_most(k)` on each row of `draws`: per-video credits once, then one product per draw."""
        recall = self.share_at_most(k)
        credit = np.array(
            [recall(np.array([v])) * self.rows[v] if self.rows[v] else 0.0 for v in range(self.n_videos)]
        )
        weights = _draw_weights(draws, self.n_videos)
        return (weights @ credit) / (weights @ self.rows)

    def share_at_most(self, k: float) -> Callable[[np.ndarray], float]:
        """Recall@k on a draw: the weighted share of queries ranked k or better (ties shared)."""
        credit = recall_credit(self.values, self.tied, k)
        hits = np.bincount(self.codes, weights=credit, minlength=self.n_videos)

        def recall(videos: np.ndarray) -> float:
            weights = self._weights(videos)
            return float(weights @ hits / (weights @ self.rows))

        return recall


def pooled_permutation_p(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    settings: RankSettings,
    observed: dict[str, float],
    permutations: int = DEFAULT_RESAMPLES,
) -> dict[str, float]:
    """One-sided p-value of each direction's pooled median rank against random audio-video pairings
    (`pooled_permutation_null`)."""
    null = pooled_permutation_null(audio_emb, video_emb, settings, permutations)
    return {
        f"median_rank_{direction}_chance_p": p_at_most(null[direction], observed[f"median_rank_{direction}"])
        for direction in DIRECTIONS
    }


def pooled_permutation_null(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    settings: RankSettings,
    permutations: int = DEFAULT_RESAMPLES,
) -> dict[str, np.ndarray]:
    """Per direction, [permutations] pooled median ranks under random audio-video pairings.

    A permutation of the test rows re-pairs, within each pool, query i with the partner of another query of
    the same pool (the order the permutation gives the pool's queries); candidates are those of the real
    evaluation. Each pool's similarities are computed once (float64, queries x pool: 8 MB per pool of 1000).
    """
    n = len(audio_emb)
    groups = settings.groups(n)
    cached = []
    for query_rows, candidate_rows in settings.pools(n):
        sibling = None
        if groups is not None:
            sibling = groups[query_rows][:, None] == groups[candidate_rows][None, :]
        sims = {
            "a2v": np.asarray(audio_emb[query_rows], np.float64)
            @ np.asarray(video_emb[candidate_rows], np.float64).T,
            "v2a": np.asarray(video_emb[query_rows], np.float64)
            @ np.asarray(audio_emb[candidate_rows], np.float64).T,
        }
        cached.append((query_rows, sims, sibling))

    def statistic(direction: str) -> Callable[[np.ndarray], np.ndarray]:
        def medians(permutations: np.ndarray) -> np.ndarray:
            """[P] pooled median rank under each row of `permutations` [P, n]."""
            out = []
            for query_rows, sims, sibling in cached:
                positive = np.argsort(permutations[:, query_rows], axis=1)  # [P, q] candidate columns
                out.append(_permuted_ranks(sims[direction], sibling, positive))
            return np.median(np.concatenate(out, axis=1), axis=1)

        return medians

    return {
        direction: permutation_values(statistic(direction), n, permutations, settings.seed, batched=True)
        for direction in DIRECTIONS
    }


def _permuted_ranks(sim: np.ndarray, sibling: np.ndarray | None, positive: np.ndarray) -> np.ndarray:
    """[P, q] ranks of query i's candidate `positive[p, i]` among its candidates (float64 similarities [q, c];
    `sibling[i, c]`: candidate c is of query i's video and left out, unless it is the positive), ties sharing
    the mean rank: 1 + #above + (#tied - 1) / 2, with "above" sim > s + _TIE and "tied" |sim - s| <= _TIE as
    float64 arithmetic decides them for the positive's similarity s.

    Each query's kept similarities are sorted once and searched for every permutation: O(P q log c) instead of
    comparing every candidate (O(P q c)). The counts are exactly the comparisons': "above" is a search for
    fl(s + _TIE); the tied candidates are those with fl(|sim - s|) <= _TIE, a contiguous run of the sorted row
    (fl(sim - s) is monotone in sim), whose ends are checked, and where needed found, on that very test.
    """
    q = len(sim)
    rows = np.arange(q)
    s = sim[rows[:, None], positive.T]  # [q, P] the positive's similarity, a query's draws contiguous
    if sibling is None:
        kept, counts = np.sort(sim, axis=1), np.full(q, sim.shape[1])
        self_tied = np.zeros(positive.T.shape)
    else:  # a sibling is out, so sorts last as NaN; a sibling positive is tied with itself
        kept, counts = np.sort(np.where(sibling, np.nan, sim), axis=1), (~sibling).sum(axis=1)
        self_tied = sibling[rows[:, None], positive.T].astype(np.float64)
    ranks = np.empty(positive.shape)
    for i in range(q):
        row, value = kept[i, : counts[i]], s[i]
        above = counts[i] - np.searchsorted(row, value + _TIE, side="right")
        first = _run_end(row, value, -_TIE, "left", lambda x, v: x - v >= -_TIE)
        after = _run_end(row, value, _TIE, "right", lambda x, v: x - v > _TIE)
        ranks[:, i] = 1 + above + (after - first + self_tied[i] - 1) / 2
    return ranks


def _run_end(row: np.ndarray, value: np.ndarray, offset: float, side: str, test) -> np.ndarray:
    """Per value, the first index of the sorted `row` where `test(row[index], value)` holds (len(row) if
    none), for a test that is false then true along the row and about `value + offset`: a search for
    value + offset, kept where the test agrees at the found index and before it, otherwise bisected on the
    test itself inside a window surely holding the answer (float64 rounding is far below _TIE)."""
    n = len(row)
    guess = np.searchsorted(row, value + offset, side=side)
    if n == 0:
        return guess
    ok = (guess == n) | test(row[np.minimum(guess, n - 1)], value)
    ok &= (guess == 0) | ~test(row[np.maximum(guess - 1, 0)], value)
    if ok.all():
        return guess
    wrong = np.flatnonzero(~ok)
    slack = 2 * _TIE + 1e-12 * np.abs(value[wrong])
    low = np.searchsorted(row, value[wrong] - slack, side="left")
    high = np.searchsorted(row, value[wrong] + slack, side="right")
    guess[wrong] = _first_true(row, low, high, lambda x: test(x, value[wrong]))
    return guess


def _first_true(row: np.ndarray, low: np.ndarray, high: np.ndarray, test) -> np.ndarray:
    """Per entry, the first index in [low, high) where `test(row[index])` holds (high if none), for a test
    that is false then true along the sorted row; `test` takes the values and returns one bool per entry."""
    low, high = low.copy(), high.copy()
    while True:
        open_ = low < high
        if not open_.any():
            return low
        middle = (low + high) // 2
        holds = test(row[np.minimum(middle, len(row) - 1)]) & open_
        high = np.where(holds, middle, high)
        low = np.where(open_ & ~holds, middle + 1, low)


# A replicate "learned" when its pooled median rank beats random pairings both ways at this one-sided level.
LEARNED_ALPHA = 0.05
# Where a figure was ranked: in pools (Table 1's), among the whole test set, video means among all videos.
LEVELS = {"pooled": "", "full": "full_", "video": "video_"}
FIGURES = ("median_rank", *(f"recall@{k}" for k in RECALL_AT))


def figure_key(figure: str, direction: str, level: str = "pooled") -> str:
    """The name of one figure in a retrieval record and in Table 1's CSV, e.g. 'video_recall@5_a2v'."""
    return f"{LEVELS[level]}{figure}_{direction}"


@dataclass(frozen=True)
class ReplicateRetrieval:
    """One training replicate's ranks on the whole test set (no interval: the configuration's is two-level)."""

    replicate: int
    seed: int
    figures: dict[str, float]  # figure_key (and mean_rank_*, study_*) -> value on all test videos
    chance_p: dict[str, float]  # direction -> one-sided permutation p of its pooled median rank

    @property
    def learned(self) -> bool:
        return all(p <= LEARNED_ALPHA for p in self.chance_p.values())


@dataclass(frozen=True)
class RetrievalRecord:
    """results/metrics/{configuration}/retrieval.json: what the retrieval rule writes and every reader reads.

    `intervals[figure_key]` is the median over replicates with its two-level 95% interval; `chance_p` the
    one-sided permutation p-value of the median over replicates of the pooled median rank (each replicate's
    pairing shuffled); `replicates` each replicate's own figures.
    """

    configuration: str
    candidates: str
    n_queries: int
    n_videos: int
    pool_size: int
    n_pools: int
    chance_median_rank: float
    full_pool_size: int
    full_chance_median_rank: float
    video_pool_size: int
    bootstrap_resamples: int
    permutations: int
    intervals: dict[str, Interval]
    chance_p: dict[str, float]
    replicates: list[ReplicateRetrieval]

    @property
    def learned(self) -> int:
        """How many replicates beat chance both ways."""
        return sum(replicate.learned for replicate in self.replicates)

    def replicate_values(self, key: str) -> np.ndarray:
        return np.array([replicate.figures.get(key, math.nan) for replicate in self.replicates])

    def flat(self) -> dict[str, float | str]:
        """Figure name -> value (median over replicates), `_ci_low`/`_ci_high` and `_chance_p`, with the
        sample sizes: the columns the ablation table and the coupling sweep read."""
        out: dict = {
            "configuration": self.configuration,
            "chance_median_rank": self.chance_median_rank,
            "full_chance_median_rank": self.full_chance_median_rank,
            "n_videos": self.n_videos,
            "n_replicates": len(self.replicates),
            "replicates_learned": self.learned,
        }
        for key, figure in self.intervals.items():
            out.update(figure.as_dict(key))
        for direction, p in self.chance_p.items():
            out[f"{figure_key('median_rank', direction)}_chance_p"] = p
        return out

    def save(self, path: str | Path) -> None:
        save_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> RetrievalRecord:
        record = json.loads(Path(path).read_text())
        record["intervals"] = {key: Interval(**value) for key, value in record["intervals"].items()}
        record["replicates"] = [ReplicateRetrieval(**replicate) for replicate in record["replicates"]]
        return cls(**record)


def _replicate_ranks(
    audio_emb: np.ndarray, video_emb: np.ndarray, settings: RankSettings
) -> tuple[RankSet, dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]]:
    """One replicate's rank set, and per level its (ranks, tie counts) per direction ([queries], or [videos]
    for 'video')."""
    ranked = rank_set(audio_emb, video_emb, settings)
    by_video = video_ranks_and_ties(audio_emb, video_emb, settings.codes)
    by_level = {
        "pooled": (ranked.pooled, ranked.pooled_tied),
        "full": (ranked.full, ranked.full_tied),
        "video": ({d: by_video[d][0] for d in DIRECTIONS}, {d: by_video[d][1] for d in DIRECTIONS}),
    }
    return ranked, by_level


def evaluate_retrieval(
    embeddings: list[tuple[np.ndarray, np.ndarray]],
    video_ids: np.ndarray,
    pool_size: int,
    seed: int,
    configuration: str = "",
    seeds: list[int] | None = None,
    candidates: str = "other_videos",
    resamples: int = DEFAULT_RESAMPLES,
    permutations: int = DEFAULT_RESAMPLES,
    study_protocol: bool = True,
) -> tuple[RetrievalRecord, pd.DataFrame]:
    """Table 1's record of one configuration's replicates (a list of (audio, video) test embeddings, row-
    aligned with `video_ids`), and their ranks (replicate, level, video_id, rank_a2v, rank_v2a).

    Every replicate is ranked in the same pools (`seed`); the configuration's figures are medians over
    replicates with two-level intervals (mvcl.stats.two_level_interval); its p-value against chance compares
    the median over replicates with the median over replicates of each one's permutation null.
    """
    ids, codes = video_codes(video_ids)
    n_videos, every_video = len(ids), np.arange(len(ids))
    seeds = seeds if seeds is not None else list(range(len(embeddings)))
    settings = RankSettings(pool_size, seed, codes, candidates)
    replicates, levels, nulls, rank_rows = [], [], [], []
    for replicate, (audio_emb, video_emb) in enumerate(embeddings):
        ranked, by_level = _replicate_ranks(audio_emb, video_emb, settings)
        figures = _rank_summary(ranked, pool_size)
        for direction in DIRECTIONS:
            video_rank, video_tied = (part[direction] for part in by_level["video"])
            figures.update(_summary(video_rank, video_tied, direction, prefix="video_"))
        if study_protocol:
            figures.update(study_median_rank(audio_emb, video_emb, pool_size))
        null = pooled_permutation_null(audio_emb, video_emb, settings, permutations)
        chance_p = {d: p_at_most(null[d], figures[figure_key("median_rank", d)]) for d in DIRECTIONS}
        replicates.append(ReplicateRetrieval(replicate, int(seeds[replicate]), figures, chance_p))
        levels.append(
            {
                level: {
                    d: ByVideo(values[d], every_video if level == "video" else codes, n_videos, tied[d])
                    for d in DIRECTIONS
                }
                for level, (values, tied) in by_level.items()
            }
        )
        nulls.append(null)
        for level, (values, _) in by_level.items():
            rank_rows.append(
                pd.DataFrame(
                    {
                        "replicate": replicate,
                        "level": level,
                        "video_id": ids if level == "video" else np.asarray(video_ids),
                        **{f"rank_{d}": values[d] for d in DIRECTIONS},
                    }
                )
            )
    first = replicates[0].figures
    intervals = {}
    for level in LEVELS:
        for direction in DIRECTIONS:
            for figure in FIGURES:
                intervals[figure_key(figure, direction, level)] = two_level_interval(
                    _figure_metric(levels, level, direction, figure),
                    len(embeddings),
                    n_videos,
                    resamples,
                    seed,
                )
    chance_p = {}
    for direction in DIRECTIONS:
        null = np.median([replicate_null[direction] for replicate_null in nulls], axis=0)
        chance_p[direction] = p_at_most(null, intervals[figure_key("median_rank", direction)].value)
    record = RetrievalRecord(
        configuration=configuration,
        candidates=candidates,
        n_videos=n_videos,
        video_pool_size=n_videos,
        **{field: kind(first[field]) for field, kind in POOL_FACTS.items()},
        bootstrap_resamples=resamples,
        permutations=permutations,
        intervals=intervals,
        chance_p=chance_p,
        replicates=replicates,
    )
    return record, pd.concat(rank_rows, ignore_index=True)


# The record's facts about the pools, the same in every replicate (their test set is the same): field -> type.
POOL_FACTS = {
    "n_queries": int,
    "pool_size": int,
    "n_pools": int,
    "chance_median_rank": float,
    "full_pool_size": int,
    "full_chance_median_rank": float,
}


class _Figure:
    """One figure of every replicate on bootstrap draws: figure(replicate, videos) and on_draws(replicate,
    draws [B, m]) for mvcl.stats' two-level bootstrap."""

    def __init__(self, by_video: list[ByVideo], figure: str):
        self.by_video, self.figure = by_video, figure
        self.k = None if figure == "median_rank" else int(figure.removeprefix("recall@"))

    def __call__(self, replicate: int, videos: np.ndarray) -> float:
        return float(self.on_draws(replicate, videos[None, :])[0])

    def on_draws(self, replicate: int, draws: np.ndarray) -> np.ndarray:
        ranked = self.by_video[replicate]
        return ranked.medians(draws) if self.k is None else ranked.shares_at_most(self.k, draws)


def _figure_metric(levels: list[dict], level: str, direction: str, figure: str) -> _Figure:
    """The two-level bootstrap's metric of one figure."""
    return _Figure([replicate[level][direction] for replicate in levels], figure)


def _replicate_metrics(ranks: pd.DataFrame, direction: str, ids: np.ndarray) -> list[ByVideo]:
    """ByVideo over each replicate's pooled ranks of one direction (rows in the order of `ids`' codes)."""
    pooled = ranks[ranks["level"] == "pooled"]
    _, codes = video_codes(pooled.loc[pooled["replicate"] == 0, "video_id"].to_numpy())
    return [
        ByVideo(table[f"rank_{direction}"].to_numpy(float), codes, len(ids))
        for _, table in pooled.groupby("replicate", sort=True)
    ]


def against_reference(
    ranks_of: dict[str, pd.DataFrame], reference: str, resamples: int, seed: int
) -> dict[str, dict[str, Comparison]]:
    """Per configuration and direction, its median over replicates of the pooled median rank minus the
    reference's: a two-level paired bootstrap (replicates paired by seed when the counts match, the same
    drawn test videos on both sides). Negative = better. Empty when the reference is not among them.

    `ranks_of[name]` is evaluate_retrieval's rank table; every configuration must rank the same test segments.
    """
    if reference not in ranks_of:
        return {}
    base = ranks_of[reference]
    base_ids = base.loc[(base["level"] == "pooled") & (base["replicate"] == 0), "video_id"].to_numpy()
    ids, _ = video_codes(base_ids)
    out = {}
    for name, table in ranks_of.items():
        mine_ids = table.loc[(table["level"] == "pooled") & (table["replicate"] == 0), "video_id"].to_numpy()
        if not np.array_equal(mine_ids, base_ids):
            raise ValueError(
                f"configurations '{name}' and '{reference}' rank different test segments; rerun their "
                "retrieval rules on the same segments.parquet"
            )
        if name == reference:
            continue
        out[name] = {}
        for direction in DIRECTIONS:
            mine, theirs = _replicate_metrics(table, direction, ids), _replicate_metrics(base, direction, ids)
            out[name][direction] = two_level_paired(
                _Figure(mine, "median_rank"),
                len(mine),
                _Figure(theirs, "median_rank"),
                len(theirs),
                len(ids),
                resamples,
                seed,
            )
    return out


def study_median_rank(
    audio_emb: np.ndarray, video_emb: np.ndarray, pool_size: int = 1000
) -> dict[str, float]:
    """The study's rank computation, reproduced (mmnet/evaluation.py, `get_validation_metrics`).

    In consecutive pools of `pool_size` rows (a last partial pool is dropped, as `n // batch_size` does):
    sim = video @ audioᵀ, "ranks" = np.diag(np.argsort(sim, axis=1)) (0-based), their median, mean and
    recall@k (ranks < k); the mean over pools; audio → video reports the same numbers as video → audio.
    Deviations: a set smaller than one pool is one pool (theirs would report 0 from an empty average), and
    we average plainly (their AverageMeter divides by count + 1e-4, a relative change below 1e-4).
    """
    _check(audio_emb, video_emb)
    size = min(pool_size, len(audio_emb))
    n_pools = len(audio_emb) // size
    per_pool = []
    for p in range(n_pools):
        videos = np.asarray(video_emb[p * size : (p + 1) * size], dtype=np.float64)
        audios = np.asarray(audio_emb[p * size : (p + 1) * size], dtype=np.float64)
        index = np.diag(np.argsort(videos @ audios.T, axis=1))  # [size]: an index, not a rank
        per_pool.append([np.median(index), np.mean(index), *(np.mean(index < k) for k in RECALL_AT)])
    median, mean, *recalls = np.mean(per_pool, axis=0)
    result = {"study_pool_size": size, "study_n_pools": n_pools}
    for direction in ("a2v", "v2a"):  # a2v reuses v2a, as in their code
        result[f"study_median_rank_{direction}"] = float(median)
        result[f"study_mean_rank_{direction}"] = float(mean)
        result.update(
            {f"study_recall@{k}_{direction}": float(r) for k, r in zip(RECALL_AT, recalls, strict=True)}
        )
    return result
