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
"""

from __future__ import annotations

import numpy as np

from mvcl.plan import RECALL_AT
from mvcl.rows import video_means

_TIE = 1e-9
_BLOCK = 2048  # rows per block: a block of similarities is 2048 x 2048 float64 = 32 MiB


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


def ranks(query: np.ndarray, candidates: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """[m] 1-based mid-ranks: the rank of `candidates[positive[i]]` among all candidates for `query[i]`."""
    out = np.empty(len(query))
    for q0 in range(0, len(query), _BLOCK):
        block = np.asarray(query[q0 : q0 + _BLOCK], dtype=np.float64)  # [c, d]
        target = np.asarray(candidates[positive[q0 : q0 + _BLOCK]], dtype=np.float64)  # [c, d]
        positive_sim = np.einsum("cd,cd->c", block, target)[:, None]  # [c, 1]
        above = np.zeros(len(block))
        tied = np.zeros(len(block))  # counts the positive itself
        for c0 in range(0, len(candidates), _BLOCK):
            sim = block @ np.asarray(candidates[c0 : c0 + _BLOCK], dtype=np.float64).T  # [c, c']
            above += (sim > positive_sim + _TIE).sum(axis=1)
            tied += (np.abs(sim - positive_sim) <= _TIE).sum(axis=1)
        out[q0 : q0 + _BLOCK] = 1 + above + (tied - 1) / 2
    return out


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


def median_rank(audio_emb: np.ndarray, video_emb: np.ndarray, pool_size: int, seed: int) -> dict[str, float]:
    """Correct ranks both ways (a2v: audio query, video candidates) in pools and over the whole test set.

    Keys: n_queries, pool_size, n_pools, chance_median_rank, {median_rank, mean_rank, recall@1/5/10}_{a2v,v2a},
    and the same for the whole set prefixed `full_` (full_pool_size = n_queries).
    """
    _check(audio_emb, video_emb)
    n = len(audio_emb)
    pooled = {"a2v": np.empty(n), "v2a": np.empty(n)}
    pool_list = pools(n, pool_size, seed)
    for query_rows, candidate_rows in pool_list:
        positive = np.arange(len(query_rows))
        pooled["a2v"][query_rows] = ranks(audio_emb[query_rows], video_emb[candidate_rows], positive)
        pooled["v2a"][query_rows] = ranks(video_emb[query_rows], audio_emb[candidate_rows], positive)
    size = min(pool_size, n)
    result = {
        "n_queries": n,
        "pool_size": size,
        "n_pools": len(pool_list),
        "chance_median_rank": (size + 1) / 2,
    }
    everyone = np.arange(n)
    result.update({"full_pool_size": n, "full_chance_median_rank": (n + 1) / 2})
    for direction, (query, candidates) in {
        "a2v": (audio_emb, video_emb),
        "v2a": (video_emb, audio_emb),
    }.items():
        result.update(_summary(pooled[direction], direction))
        result.update(_summary(ranks(query, candidates, everyone), direction, prefix="full_"))
    return result


def mean_by_video(emb: np.ndarray, video_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Video-level embeddings: (sorted unique video ids, L2-normalised mean of each video's rows [V, d])."""
    ids, codes = np.unique(video_ids, return_inverse=True)
    means = video_means(emb, codes, len(ids))[0].astype(np.float64)
    return ids, (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


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
