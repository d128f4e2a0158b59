"""Cross-modal retrieval ranks on test-segment embeddings (study section 5, Table 1), and the study's own numbers.

Rank. For audio query i, the rank of its own video i among the candidate videos by cosine similarity (the
embeddings are L2-normalised, so a dot product), 1 = retrieved first; video → audio likewise. Ties count half:
rank = 1 + #{j: s_ij > s_ii} + #{j ≠ i: s_ij = s_ii} / 2, the expected rank under a random tie-break (mid-rank).
So a collapsed model whose embeddings are all equal ranks at chance, (pool + 1) / 2, neither at 1 (optimistic)
nor at the pool size (pessimistic). Similarities are computed in float64 and values within 1e-9 of the
positive's count as ties, so equal vectors tie whatever order BLAS sums in.

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
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mvcl.plan import RECALL_AT
from mvcl.stats import DEFAULT_RESAMPLES, Interval, interval, paired, permutation_p, video_codes
from mvcl.vectors import video_means

CANDIDATES = ("all_segments", "other_videos")
# Below this many test videos, Table 1 says its intervals rest on a small collection (and the log warns).
SMALL_TEST_VIDEOS = 30
DIRECTIONS = ("a2v", "v2a")
_TIE = 1e-9
_BLOCK = 2048  # rows per block: a block of similarities is 2048 x 2048 float32 = 16 MiB


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


def _mid_ranks(sim: np.ndarray, positive_sim: np.ndarray, excluded: np.ndarray | None) -> np.ndarray:
    """(above, tied) counts per row of sim [c, c'] against positive_sim [c, 1], excluded candidates left out."""
    above = sim > positive_sim + _TIE
    tied = np.abs(sim - positive_sim) <= _TIE
    if excluded is not None:
        above, tied = above & ~excluded, tied & ~excluded
    return np.stack([above.sum(axis=1), tied.sum(axis=1)])


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


def ranks(
    query: np.ndarray,
    candidates: np.ndarray,
    positive: np.ndarray,
    query_groups: np.ndarray | None = None,
    candidate_groups: np.ndarray | None = None,
) -> np.ndarray:
    """[m] 1-based mid-ranks: the rank of `candidates[positive[i]]` among all candidates for `query[i]`.

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
    return counts.ranks(query_groups, candidate_groups)


def ranks_both_ways(
    audio_emb: np.ndarray, video_emb: np.ndarray, groups: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """`ranks` of every row's partner both ways (a2v, v2a) among all rows: one similarity block serves both
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
    return {"a2v": a2v.ranks(groups, groups), "v2a": v2a.ranks(groups, groups)}


class _RankCounts:
    """Candidates above and tied with each query's positive, counted block by block (see `ranks`)."""

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

    def ranks(self, query_groups: np.ndarray | None, candidate_groups: np.ndarray | None) -> np.ndarray:
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
        return 1 + above + (tied - 1) / 2


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


def _summary(rank: np.ndarray, direction: str, prefix: str = "") -> dict[str, float]:
    """Median and mean rank and recall@k (rank <= k) of one direction."""
    out = {
        f"{prefix}median_rank_{direction}": float(np.median(rank)),
        f"{prefix}mean_rank_{direction}": float(np.mean(rank)),
    }
    out.update({f"{prefix}recall@{k}_{direction}": float(np.mean(rank <= k)) for k in RECALL_AT})
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


def _groups(codes: np.ndarray | None, candidates: str, n: int) -> np.ndarray | None:
    if candidates not in CANDIDATES:
        raise ValueError(f"retrieval.candidates is '{candidates}'; use one of {', '.join(CANDIDATES)}")
    if candidates == "all_segments":
        return None
    if codes is None or len(codes) != n:
        raise ValueError("retrieval.candidates: other_videos needs the video of every test segment")
    return np.asarray(codes)


@dataclass(frozen=True)
class RankSet:
    """Per-query ranks of one configuration's test set, computed once; intervals re-select from them."""

    codes: np.ndarray  # [n] video code (0..V-1) of each segment query
    pooled: dict[str, np.ndarray]  # direction -> [n] rank in its pool
    full: dict[str, np.ndarray]  # direction -> [n] rank among the whole test set
    chance: np.ndarray  # [n] chance rank of each query in its pool, (candidates + 1) / 2
    full_chance: np.ndarray  # [n] the same among the whole test set


def rank_set(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    pool_size: int,
    seed: int,
    codes: np.ndarray | None = None,
    candidates: str = "all_segments",
) -> RankSet:
    """Ranks both ways (a2v: audio query, video candidates), in pools and over the whole test set."""
    _check(audio_emb, video_emb)
    n = len(audio_emb)
    groups = _groups(codes, candidates, n)
    codes = np.zeros(n, dtype=np.int64) if codes is None else np.asarray(codes)
    pooled = {direction: np.empty(n) for direction in DIRECTIONS}
    chance = np.empty(n)
    for query_rows, candidate_rows in pools(n, pool_size, seed):
        positive = np.arange(len(query_rows))
        query_groups = None if groups is None else groups[query_rows]
        candidate_groups = None if groups is None else groups[candidate_rows]
        for direction, (query, pool) in {
            "a2v": (audio_emb, video_emb),
            "v2a": (video_emb, audio_emb),
        }.items():
            pooled[direction][query_rows] = ranks(
                query[query_rows], pool[candidate_rows], positive, query_groups, candidate_groups
            )
        chance[query_rows] = (
            candidate_counts(codes[query_rows], codes[candidate_rows], groups is not None) + 1
        ) / 2
    full = ranks_both_ways(audio_emb, video_emb, groups)
    full_chance = (candidate_counts(codes, codes, groups is not None) + 1) / 2
    return RankSet(codes, pooled, full, chance, full_chance)


def median_rank(*args: Any, **kwargs: Any) -> dict[str, float]:
    """Correct ranks both ways (a2v: audio query, video candidates) in pools and over the whole test set.

    Takes `rank_set`'s arguments (audio_emb, video_emb, pool_size, seed, codes, candidates). Keys: n_queries,
    pool_size, n_pools, chance_median_rank, {median_rank, mean_rank, recall@1/5/10}_{a2v,v2a}, and the same
    for the whole set prefixed `full_` (full_pool_size = n_queries). `codes` (each row's video) with
    candidates='other_videos' leaves a query's own video's other segments out of its candidates.
    """
    arguments = inspect.signature(rank_set).bind(*args, **kwargs)
    return _rank_summary(rank_set(*args, **kwargs), arguments.arguments["pool_size"])


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
        result.update(_summary(ranked.pooled[direction], direction))
        result.update(_summary(ranked.full[direction], direction, prefix="full_"))
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
    n_videos = int(codes.max()) + 1
    audio, video = (
        _normalised_means(audio_emb, codes, n_videos),
        _normalised_means(video_emb, codes, n_videos),
    )
    return ranks_both_ways(audio, video)


class ByVideo:
    """Statistics of per-query values on a bootstrap draw of videos, without re-selecting rows.

    A draw is an array of video codes (with repeats); each query weighs as often as its video was drawn. The
    weighted median equals np.median of the re-selected values (the mean of the two middle ones when even).
    """

    def __init__(self, values: np.ndarray, codes: np.ndarray, n_videos: int):
        order = np.argsort(values, kind="stable")
        self.sorted, self.sorted_codes, self.n_videos = values[order], codes[order], n_videos
        self.rows = np.bincount(codes, minlength=n_videos).astype(np.float64)
        self.codes, self.values = codes, values

    def _weights(self, videos: np.ndarray) -> np.ndarray:
        return np.bincount(videos, minlength=self.n_videos).astype(np.float64)

    def median(self, videos: np.ndarray) -> float:
        cumulative = np.cumsum(self._weights(videos)[self.sorted_codes])
        total = int(cumulative[-1])
        if total == 0:
            return math.nan
        middle = np.searchsorted(cumulative, [(total - 1) // 2, total // 2], side="right")
        return float(self.sorted[middle].mean())

    def share_at_most(self, k: float) -> Callable[[np.ndarray], float]:
        """Recall@k on a draw: the weighted share of queries ranked k or better."""
        hits = np.bincount(self.codes, weights=(self.values <= k).astype(np.float64), minlength=self.n_videos)

        def recall(videos: np.ndarray) -> float:
            weights = self._weights(videos)
            return float(weights @ hits / (weights @ self.rows))

        return recall


def _intervals(
    values: np.ndarray,
    codes: np.ndarray,
    n_videos: int,
    prefix: str,
    direction: str,
    resamples: int,
    seed: int,
) -> dict[str, float]:
    by_video = ByVideo(values, codes, n_videos)
    out = interval(by_video.median, n_videos, resamples, seed).as_dict(f"{prefix}median_rank_{direction}")
    for k in RECALL_AT:
        name = f"{prefix}recall@{k}_{direction}"
        out.update(interval(by_video.share_at_most(k), n_videos, resamples, seed).as_dict(name))
    return out


def pooled_permutation_p(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    pool_size: int,
    seed: int,
    observed: dict[str, float],
    codes: np.ndarray | None = None,
    candidates: str = "all_segments",
    permutations: int = DEFAULT_RESAMPLES,
) -> dict[str, float]:
    """One-sided p-value of each direction's pooled median rank against random audio-video pairings.

    A permutation of the test rows re-pairs, within each pool, query i with the partner of another query of
    the same pool (the order the permutation gives the pool's queries); candidates are those of the real
    evaluation. Each pool's similarities are computed once (float64, queries x pool: 8 MB per pool of 1000).
    """
    n = len(audio_emb)
    groups = _groups(codes, candidates, n)
    cached = []
    for query_rows, candidate_rows in pools(n, pool_size, seed):
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

    def statistic(direction: str):
        def median(permutation: np.ndarray) -> float:
            out = []
            for query_rows, sims, sibling in cached:
                positive = np.argsort(permutation[query_rows])
                sim = sims[direction]
                positive_sim = sim[np.arange(len(sim)), positive][:, None]
                excluded = None
                if sibling is not None:
                    excluded = sibling & (np.arange(sim.shape[1])[None, :] != positive[:, None])
                above, tied = _mid_ranks(sim, positive_sim, excluded)
                out.append(1 + above + (tied - 1) / 2)
            return float(np.median(np.concatenate(out)))

        return median

    return {
        f"median_rank_{direction}_chance_p": permutation_p(
            statistic(direction), observed[f"median_rank_{direction}"], n, permutations, seed
        )
        for direction in DIRECTIONS
    }


def evaluate_retrieval(
    audio_emb: np.ndarray,
    video_emb: np.ndarray,
    video_ids: np.ndarray,
    pool_size: int,
    seed: int,
    candidates: str = "other_videos",
    resamples: int = DEFAULT_RESAMPLES,
    permutations: int = DEFAULT_RESAMPLES,
    study_protocol: bool = True,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Table 1's record of one configuration's test embeddings, and its per-query pooled ranks.

    The record: `median_rank` keys (pooled, `full_`), video-level keys (`video_`), a 95% bootstrap interval
    (`_ci_low`, `_ci_high`) beside each median rank and recall, the p-value of each pooled median rank against
    random pairings (`median_rank_{a2v,v2a}_chance_p`), the sample sizes and protocol, and the study's
    computation (`study_`) when asked. The ranks ({video_id, rank_a2v, rank_v2a}, one per test segment, in
    the input's order) let Table 1 compare configurations on the same resampled videos.
    """
    ids, codes = video_codes(video_ids)
    n_videos = len(ids)
    ranked = rank_set(audio_emb, video_emb, pool_size, seed, codes, candidates)
    record: dict = {"candidates": candidates, "n_videos": n_videos, **_rank_summary(ranked, pool_size)}
    by_video = video_ranks(audio_emb, video_emb, codes)
    record.update(video_pool_size=n_videos, video_chance_median_rank=(n_videos + 1) / 2)
    every_video = np.arange(n_videos)
    for direction in DIRECTIONS:
        record.update(_summary(by_video[direction], direction, prefix="video_"))
        record.update(_intervals(ranked.pooled[direction], codes, n_videos, "", direction, resamples, seed))
        record.update(
            _intervals(ranked.full[direction], codes, n_videos, "full_", direction, resamples, seed)
        )
        record.update(
            _intervals(by_video[direction], every_video, n_videos, "video_", direction, resamples, seed)
        )
    record.update(
        pooled_permutation_p(audio_emb, video_emb, pool_size, seed, record, codes, candidates, permutations)
    )
    record.update(bootstrap_resamples=resamples, permutations=permutations)
    if study_protocol:
        record.update(study_median_rank(audio_emb, video_emb, pool_size))
    rank_table = {"video_id": np.asarray(video_ids), **{f"rank_{d}": ranked.pooled[d] for d in DIRECTIONS}}
    return record, rank_table


def against_reference(
    ranks_of: dict[str, dict[str, np.ndarray]], reference: str, resamples: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per configuration, its pooled median rank minus the reference's, paired on the same resampled videos.

    `ranks_of[name]` holds video_id and rank_{a2v,v2a} per test segment (evaluate_retrieval's rank table);
    every configuration must rank the same test segments in the same order. Keys per direction:
    median_rank_{d}_vs_{reference} (the difference, negative = better), its _ci_low/_ci_high and _p.
    """
    if reference not in ranks_of:
        return {name: {} for name in ranks_of}
    base = ranks_of[reference]
    ids, codes = video_codes(base["video_id"])
    out = {}
    for name, table in ranks_of.items():
        if not np.array_equal(np.asarray(table["video_id"]), np.asarray(base["video_id"])):
            raise ValueError(
                f"configurations '{name}' and '{reference}' rank different test segments; rerun their "
                "retrieval rules on the same segments.parquet"
            )
        row: dict[str, float] = {}
        for direction in DIRECTIONS:
            mine = ByVideo(np.asarray(table[f"rank_{direction}"], float), codes, len(ids))
            theirs = ByVideo(np.asarray(base[f"rank_{direction}"], float), codes, len(ids))
            comparison = paired(mine.median, theirs.median, len(ids), resamples, seed)
            key = f"median_rank_{direction}_vs_{reference}"
            row.update(comparison.difference.as_dict(key))
            row[f"{key}_p"] = comparison.p_value
        out[name] = row
    return out


def ci(record: dict, key: str) -> Interval:
    """The interval of `key` in a retrieval record (NaN bounds where the record has none)."""
    return Interval(
        float(record.get(key, math.nan)),
        float(record.get(f"{key}_ci_low", math.nan)),
        float(record.get(f"{key}_ci_high", math.nan)),
        int(record.get("n_videos", 0)),
        int(record.get("bootstrap_resamples", 0)),
    )


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
