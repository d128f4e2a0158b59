"""The pooled permutation null (Table 1's p-value against chance): sorted-row searches give exactly the counts of
comparing every candidate, on ties, near-ties, siblings and partial pools."""

from __future__ import annotations

import numpy as np
import pytest

import mvcl.retrieval as retrieval
from mvcl.retrieval import _TIE, RankSettings, pooled_permutation_null, pools
from mvcl.stats import permutation_values


def cube_null(audio, video, pool_size, seed, codes, candidates, permutations):
    """The null as computed before the sorted rows: every candidate compared with the positive, per draw."""
    groups = None if candidates == "all_segments" else np.asarray(codes)
    cached = []
    for query_rows, candidate_rows in pools(len(audio), pool_size, seed):
        sibling = None if groups is None else groups[query_rows][:, None] == groups[candidate_rows][None, :]
        sims = {
            "a2v": audio[query_rows].astype(np.float64) @ video[candidate_rows].astype(np.float64).T,
            "v2a": video[query_rows].astype(np.float64) @ audio[candidate_rows].astype(np.float64).T,
        }
        cached.append((query_rows, sims, sibling))

    def statistic(direction):
        def medians(drawn):
            out = []
            for query_rows, sims, sibling in cached:
                sim = sims[direction]
                positive = np.argsort(drawn[:, query_rows], axis=1)
                positive_sim = np.take_along_axis(sim[None], positive[:, :, None], axis=2)
                above = sim[None] > positive_sim + _TIE
                tied = np.abs(sim[None] - positive_sim) <= _TIE
                if sibling is not None:
                    excluded = sibling[None] & (
                        np.arange(sim.shape[1])[None, None, :] != positive[:, :, None]
                    )
                    above, tied = above & ~excluded, tied & ~excluded
                out.append(1 + above.sum(axis=2) + (tied.sum(axis=2) - 1) / 2)
            return np.median(np.concatenate(out, axis=1), axis=1)

        return medians

    return {
        d: permutation_values(statistic(d), len(audio), permutations, seed, batched=True)
        for d in ("a2v", "v2a")
    }


def awkward_embeddings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors with exact duplicates, a collapsed cluster, near-ties just inside and outside _TIE, and
    videos of 1-4 segments."""
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal((n, 8))
    video = audio + rng.standard_normal((n, 8))
    video[: n // 6] = video[0]  # a collapsed cluster: many identical similarities
    audio[n // 6 : n // 3] = audio[n // 6]
    video[n // 3 : n // 3 + 6] = (
        video[n // 3] + np.array([[0.4, 0.9, 1.1, 2.0, 3.0, 0.0]]).T * _TIE * np.eye(8)[0]
    )
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    video /= np.linalg.norm(video, axis=1, keepdims=True)
    codes = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]
    return audio, video, codes  # float64: near-ties of a few _TIE survive


@pytest.mark.parametrize("candidates", ["other_videos", "all_segments"])
@pytest.mark.parametrize(("n", "pool_size"), [(130, 40), (60, 100), (97, 97)])
def test_the_sorted_null_equals_comparing_every_candidate(candidates, n, pool_size):
    audio, video, codes = awkward_embeddings(n, seed=n)
    settings = RankSettings(pool_size, 3, codes, candidates)
    fast = pooled_permutation_null(audio, video, settings, permutations=60)
    slow = cube_null(audio, video, pool_size, 3, codes, candidates, permutations=60)
    for direction in ("a2v", "v2a"):
        np.testing.assert_array_equal(fast[direction], slow[direction])


def test_permuted_ranks_count_near_ties_by_the_float64_test_itself():
    # Query 0's candidates: the positive at 0.5, one within _TIE of it, one just beyond, one far above, one a
    # sibling exactly tied (left out).
    sim = np.array([[0.5, 0.5 + 0.9 * _TIE, 0.5 + 1.1 * _TIE, 0.9, 0.5]])
    sibling = np.array([[False, False, False, False, True]])
    ranks = retrieval._permuted_ranks(sim, sibling, np.array([[0]]))
    # Above: 0.5 + 1.1 tie and 0.9; tied: the positive and the 0.9-tie one.
    assert ranks.tolist() == [[1 + 2 + (2 - 1) / 2]]
    every = retrieval._permuted_ranks(sim, None, np.array([[0], [4], [3]]))
    assert every[:, 0].tolist() == [1 + 2 + (3 - 1) / 2, 1 + 2 + (3 - 1) / 2, 1.0]
