"""Correct cross-modal ranks (ties, pools, blocks) and the study's computation reproduced beside them."""

from __future__ import annotations

import numpy as np
import pytest

import mvcl.evaluate.retrieval as retrieval
from mvcl.evaluate.retrieval import mean_by_video, median_rank, pools, ranks, study_median_rank


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force_ranks(query, candidates):
    """1 + candidates strictly more similar + half of the other candidates exactly as similar."""
    out = []
    for i, q in enumerate(query.astype(np.float64)):
        sim = candidates.astype(np.float64) @ q
        others = np.delete(sim, i)
        out.append(1 + np.sum(others > sim[i]) + np.sum(others == sim[i]) / 2)
    return np.array(out)


def test_constructed_embeddings_have_the_ranks_we_placed():
    angles = np.array([0.0, 0.3, 1.0, 2.0])  # candidates on a circle
    candidates = unit(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    queries = unit(np.stack([np.cos([2.0, 0.3, 0.0, 0.05]), np.sin([2.0, 0.3, 0.0, 0.05])], axis=1))
    # query 0 sits on candidate 3, so its own candidate 0 is the farthest: rank 4;
    # query 1 on its own candidate: rank 1; query 2 on candidate 0, candidate 2 is third nearest;
    # query 3 near candidate 0, candidate 3 is the farthest
    np.testing.assert_array_equal(ranks(queries, candidates, np.arange(4)), [4, 1, 3, 4])


def test_ties_count_half():
    same = np.ones((5, 3), dtype=np.float32) / np.sqrt(3)
    np.testing.assert_array_equal(ranks(same, same, np.arange(5)), [3.0] * 5)  # (5 + 1) / 2: chance
    candidates = unit(np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32))
    queries = unit(np.array([[1, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float32))
    # query 0: candidate 1 ties its positive (rank 1.5); query 1: its positive (1, 0) is orthogonal, beaten by
    # candidates 2 and 3 and tied with candidate 0 (rank 3.5)
    np.testing.assert_array_equal(ranks(queries, candidates, np.arange(4)), [1.5, 3.5, 1, 1])


def test_blockwise_ranks_equal_a_brute_force_loop(monkeypatch):
    monkeypatch.setattr(retrieval, "_BLOCK", 7)  # many blocks, ragged last one
    rng = np.random.default_rng(0)
    query, candidates = unit(rng.normal(size=(40, 6))), unit(rng.normal(size=(40, 6)))
    candidates[5] = candidates[9]  # an exact duplicate across blocks
    query[9] = query[5]
    np.testing.assert_array_equal(
        ranks(query, candidates, np.arange(40)), brute_force_ranks(query, candidates)
    )


def test_pools_are_disjoint_cover_every_query_and_always_hold_pool_size_candidates():
    split = pools(2350, 1000, seed=3)
    queries = np.concatenate([q for q, _ in split])
    assert sorted(queries) == list(range(2350))
    assert [len(c) for _, c in split] == [1000, 1000, 1000]
    for query_rows, candidate_rows in split:
        assert len(set(candidate_rows)) == len(candidate_rows)
        np.testing.assert_array_equal(candidate_rows[: len(query_rows)], query_rows)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(split, pools(2350, 1000, seed=3), strict=True))
    assert len(pools(300, 1000, seed=0)) == 1


def test_perfect_model_ranks_first_but_the_studys_computation_says_half_the_pool():
    rng = np.random.default_rng(1)
    emb = unit(rng.normal(size=(2000, 32)))
    ours = median_rank(emb, emb, pool_size=1000, seed=0)
    assert ours["median_rank_a2v"] == ours["median_rank_v2a"] == ours["full_median_rank_v2a"] == 1
    assert ours["recall@1_a2v"] == 1.0 and ours["n_pools"] == 2 and ours["n_queries"] == 2000
    theirs = study_median_rank(emb, emb, pool_size=1000)
    assert 400 < theirs["study_median_rank_a2v"] < 600  # an index into the sorted row, not a rank
    assert theirs["study_median_rank_a2v"] == theirs["study_median_rank_v2a"]


def test_random_embeddings_rank_at_chance():
    rng = np.random.default_rng(2)
    audio, video = unit(rng.normal(size=(3000, 16))), unit(rng.normal(size=(3000, 16)))
    result = median_rank(audio, video, pool_size=1000, seed=0)
    assert result["chance_median_rank"] == 500.5 and result["full_chance_median_rank"] == 1500.5
    for direction in ("a2v", "v2a"):
        assert result[f"median_rank_{direction}"] == pytest.approx(500.5, rel=0.08)
        assert result[f"full_median_rank_{direction}"] == pytest.approx(1500.5, rel=0.08)
        assert result[f"recall@10_{direction}"] == pytest.approx(0.01, abs=0.01)


def test_each_direction_is_ranked_on_its_own():
    rng = np.random.default_rng(3)
    audio = unit(rng.normal(size=(50, 4)))
    video = unit(audio + 0.8 * rng.normal(size=(50, 4)))
    result = median_rank(audio, video, pool_size=50, seed=0)
    assert result["mean_rank_a2v"] != result["mean_rank_v2a"]  # the study's code reports one number for both
    np.testing.assert_array_equal(np.mean(brute_force_ranks(video, audio)), result["full_mean_rank_v2a"])


def their_get_validation_metrics(videos, audios, batch_size):
    """mmnet/evaluation.py's loop, as committed (median and mean only; AverageMeter's 1e-4 left out)."""
    medians, means = [], []
    for i in range(videos.shape[0] // batch_size):
        cos_sim = np.dot(
            videos[batch_size * i : batch_size * (i + 1)], audios[batch_size * i : batch_size * (i + 1)].T
        )
        ranks_per_row = np.argsort(cos_sim, axis=1)
        v2a_ranks = np.diag(ranks_per_row)
        medians.append(np.median(v2a_ranks))
        means.append(np.mean(v2a_ranks))
    return np.mean(medians), np.mean(means)


def test_study_computation_matches_their_code_and_drops_the_partial_pool():
    rng = np.random.default_rng(4)
    audio = rng.normal(size=(2500, 8))
    video = audio + rng.normal(size=(2500, 8))
    audio, video = unit(audio).astype(np.float64), unit(video).astype(np.float64)
    median, mean = their_get_validation_metrics(video, audio, 1000)
    result = study_median_rank(audio, video, pool_size=1000)
    assert result["study_n_pools"] == 2
    assert result["study_median_rank_v2a"] == median and result["study_mean_rank_a2v"] == mean


def test_non_finite_embeddings_are_refused():
    emb = unit(np.random.default_rng(5).normal(size=(10, 4)))
    broken = emb.copy()
    broken[2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        median_rank(emb, broken, 5, seed=0)


def test_video_embeddings_are_the_normalised_mean_of_their_segments():
    emb = unit(np.array([[1, 0], [0, 1], [1, 1], [3, 0]], dtype=np.float32))
    ids, videos = mean_by_video(emb, np.array(["b", "a", "b", "a"]))
    assert list(ids) == ["a", "b"]
    np.testing.assert_allclose(videos, unit(np.array([[1, 1], [1 + 2**-0.5, 2**-0.5]])), rtol=1e-6)
