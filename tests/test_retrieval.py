"""Correct cross-modal ranks (ties, pools, blocks) and the study's computation reproduced beside them."""

from __future__ import annotations

import numpy as np
import pytest

import mvcl.retrieval as retrieval
from mvcl.retrieval import mean_by_video, median_rank, pools, ranks, study_median_rank


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


# --- candidates, video-level ranks, intervals, tests against chance and base, Table 1 -------------------------


def clustered(videos=12, per_video=3, dim=16, noise=0.3, seed=0):
    """Audio and video embeddings that share a latent per segment, and each row's video code."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(videos * per_video, dim))
    audio = unit(latent + noise * rng.normal(size=latent.shape))
    video = unit(latent + noise * rng.normal(size=latent.shape))
    return audio, video, np.repeat(np.arange(videos), per_video)


def test_near_identical_siblings_change_ranks_only_when_they_are_candidates():
    audio, video, codes = clustered(noise=0.0)  # every query ranks its own partner first
    planted_audio, planted_video = audio.copy(), video.copy()
    rng = np.random.default_rng(1)
    for rows in (planted_audio[:3], planted_video[:3]):  # video 0's three segments: near-identical
        rows[:] = unit(rows[0] + 1e-3 * rng.normal(size=rows.shape))
    for candidates, changes in (("all_segments", True), ("other_videos", False)):
        before = median_rank(audio, video, 1000, 0, codes, candidates)
        after = retrieval.rank_set(planted_audio, planted_video, 1000, 0, codes, candidates)
        assert before["mean_rank_a2v"] == 1.0
        assert (after.pooled["a2v"][:3] > 1).any() == changes, candidates
        assert (after.full["v2a"][:3] > 1).any() == changes, candidates
        np.testing.assert_array_equal(after.pooled["a2v"][3:], 1.0)


def test_other_videos_ranks_equal_a_brute_force_ranking_without_the_siblings():
    audio, video, codes = clustered(videos=10, per_video=4, noise=1.0, seed=2)
    got = retrieval.ranks(audio, video, np.arange(40), codes, codes)
    for i in range(40):
        keep = (codes != codes[i]) | (np.arange(40) == i)
        sim = video[keep].astype(np.float64) @ audio[i].astype(np.float64)
        own = np.flatnonzero(np.flatnonzero(keep) == i)[0]
        others = np.delete(sim, own)
        assert got[i] == 1 + np.sum(others > sim[own]) + np.sum(others == sim[own]) / 2
    result = median_rank(audio, video, 1000, 0, codes, "other_videos")
    assert result["chance_median_rank"] == result["full_chance_median_rank"] == (40 - 3 + 1) / 2
    assert median_rank(audio, video, 1000, 0)["chance_median_rank"] == 20.5
    with pytest.raises(ValueError, match="retrieval.candidates"):
        median_rank(audio, video, 1000, 0, codes, "siblings")


def test_video_level_ranks_rank_each_videos_mean_among_all_test_videos():
    audio, video, codes = clustered(videos=8, per_video=3, noise=2.0, seed=3)
    got = retrieval.video_ranks(audio, video, codes)
    ids, audio_means = mean_by_video(audio, codes)
    _, video_means = mean_by_video(video, codes)
    np.testing.assert_array_equal(got["a2v"], brute_force_ranks(audio_means, video_means))
    np.testing.assert_array_equal(got["v2a"], brute_force_ranks(video_means, audio_means))


def test_a_resample_selects_whole_videos_and_its_median_equals_numpys():
    from mvcl.stats import draws, rows_by_video, rows_of

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 15, size=70)
    values = rng.integers(1, 30, size=70).astype(float)
    by_video = retrieval.ByVideo(values, codes, 15)
    groups = rows_by_video(codes, 15)
    recall = by_video.share_at_most(5)
    for videos in draws(15, 50, seed=0):
        chosen = values[rows_of(videos, groups)]
        assert by_video.median(videos) == np.median(chosen)
        assert recall(videos) == pytest.approx(np.mean(chosen <= 5))


def test_retrieval_record_has_intervals_and_tells_aligned_from_random_pairings():
    audio, video, codes = clustered(videos=40, per_video=3, noise=0.5, seed=5)
    ids = np.array([f"v{c:02d}" for c in codes])
    record, ranked = retrieval.evaluate_retrieval(audio, video, ids, 50, 0, resamples=200, permutations=200)
    assert record["candidates"] == "other_videos" and record["n_videos"] == 40 and record["n_queries"] == 120
    for key in ("median_rank_a2v", "full_median_rank_v2a", "video_median_rank_a2v", "recall@5_v2a"):
        assert record[f"{key}_ci_low"] <= record[key] <= record[f"{key}_ci_high"], key
    assert record["median_rank_a2v"] < 0.3 * record["chance_median_rank"]
    assert record["median_rank_a2v_chance_p"] == pytest.approx(1 / 201)
    assert record["study_median_rank_a2v"] != record["median_rank_a2v"]
    assert list(ranked) == ["video_id", "rank_a2v", "rank_v2a"] and len(ranked["rank_a2v"]) == 120
    shuffled, _ = retrieval.evaluate_retrieval(
        audio, video[np.random.default_rng(6).permutation(120)], ids, 50, 0, resamples=50, permutations=200
    )
    assert shuffled["median_rank_a2v_chance_p"] > 0.05


def test_permutation_statistic_with_the_identity_pairing_is_the_observed_median():
    audio, video, codes = clustered(videos=30, per_video=3, noise=1.0, seed=7)
    observed = median_rank(audio, video, 40, 0, codes, "other_videos")
    p = retrieval.pooled_permutation_p(audio, video, 40, 0, observed, codes, "other_videos", permutations=20)
    assert set(p) == {"median_rank_a2v_chance_p", "median_rank_v2a_chance_p"}
    better = {key: value - 1e-6 for key, value in observed.items() if isinstance(value, float)}
    far = retrieval.pooled_permutation_p(audio, video, 40, 0, better, codes, "other_videos", permutations=20)
    assert far["median_rank_a2v_chance_p"] == pytest.approx(1 / 21)


def test_against_base_is_zero_for_base_and_negative_for_a_better_configuration():
    rng = np.random.default_rng(8)
    ids = np.repeat([f"v{i}" for i in range(30)], 2)
    base = {
        "video_id": ids,
        "rank_a2v": rng.integers(20, 40, 60).astype(float),
        "rank_v2a": np.full(60, 30.0),
    }
    better = {"video_id": ids, "rank_a2v": base["rank_a2v"] - 10, "rank_v2a": np.full(60, 30.0)}
    out = retrieval.against_reference({"base": base, "better": better}, "base", 200, 0)
    assert out["base"]["median_rank_a2v_vs_base"] == 0 and out["base"]["median_rank_a2v_vs_base_p"] == 1.0
    assert out["better"]["median_rank_a2v_vs_base"] == -10
    assert (
        out["better"]["median_rank_a2v_vs_base_ci_high"] < 0
        and out["better"]["median_rank_a2v_vs_base_p"] < 0.05
    )
    with pytest.raises(ValueError, match="different test segments"):
        retrieval.against_reference({"base": base, "other": {**better, "video_id": ids[::-1]}}, "base", 10, 0)


def test_table1_median_rank_is_the_correct_computation_not_the_studys():
    """A planted bug 'Table 1's correct median-rank column filled from the study's' must fail here."""
    from mvcl.report.table1 import table1, table1_markdown

    audio, video, codes = clustered(videos=20, per_video=2, noise=0.4, seed=9)
    ids = np.array([f"v{c}" for c in codes])
    noise = np.random.default_rng(10).normal(size=video.shape)
    videos = {"base": unit(video + noise), "clip_style": video}
    records, rank_tables, correct = {}, {}, {}
    for name, emb in videos.items():
        records[name], rank_tables[name] = retrieval.evaluate_retrieval(
            audio, emb, ids, 1000, 0, resamples=50, permutations=20
        )
        correct[name] = np.median(retrieval.ranks(audio, emb, np.arange(40), codes, codes))
        assert records[name]["study_median_rank_a2v"] != correct[name]  # the case tells the two apart
    for name, comparison in retrieval.against_reference(rank_tables, "base", 50, 0).items():
        records[name].update(comparison)
    table = table1(records, ["base"])
    for name in videos:
        row = table.set_index("configuration").loc[name]
        assert row["median_rank_a2v"] == correct[name] != row["study_median_rank_a2v"]
        assert row["median_rank_a2v_ci_low"] <= correct[name] <= row["median_rank_a2v_ci_high"]
    text = table1_markdown(table, {})
    low, high = (table.loc[0, f"median_rank_a2v_ci_{side}"] for side in ("low", "high"))
    assert f"| base (study) | {correct['base']:.1f} [{low:.1f}, {high:.1f}] |" in text
    assert "20 test videos (40 segments)" in text and "`other_videos`" in text
    assert "Only 20 test videos (fewer than 30)" in text
    assert "- clip_style: a→v p = " in text and "against base (p = " in text
    trained = table1(records, ["base"], encoders={"clip_style": ("mir", "style")})
    assert trained.set_index("configuration").loc["clip_style", "video_encoder"] == "style"
    assert "| clip_style [mir + style] |" in table1_markdown(trained, {})
    assert "| clip_style |" in text  # the study's pair is not named
