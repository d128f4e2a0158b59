"""Correct cross-modal ranks (ties, pools, blocks) and the study's computation reproduced beside them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import mvcl.retrieval as retrieval
from mvcl.retrieval import mean_by_video, median_rank, pools, ranks_and_ties, study_median_rank


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
    np.testing.assert_array_equal(ranks_and_ties(queries, candidates, np.arange(4))[0], [4, 1, 3, 4])


def test_ties_count_half():
    same = np.ones((5, 3), dtype=np.float32) / np.sqrt(3)
    chance = (5 + 1) / 2
    np.testing.assert_array_equal(ranks_and_ties(same, same, np.arange(5))[0], [chance] * 5)
    candidates = unit(np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32))
    queries = unit(np.array([[1, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float32))
    # query 0: candidate 1 ties its positive (rank 1.5); query 1: its positive (1, 0) is orthogonal, beaten by
    # candidates 2 and 3 and tied with candidate 0 (rank 3.5)
    np.testing.assert_array_equal(ranks_and_ties(queries, candidates, np.arange(4))[0], [1.5, 3.5, 1, 1])


def test_a_collapsed_model_scores_the_chance_recall_not_below_it():
    same = np.ones((60, 4), dtype=np.float32) / 2  # every embedding equal: every candidate ties
    ids = np.array([f"v{i:02d}" for i in range(60)])  # one segment per video: 50 candidates per pool
    record = retrieval.evaluate_retrieval([(same, same)], ids, 50, 0, resamples=20, permutations=20)[0].flat()
    chance_candidates = 2 * record["chance_median_rank"] - 1
    for k in (1, 5, 10):
        for prefix, candidates in (("", chance_candidates), ("full_", 60), ("video_", 60)):
            assert record[f"{prefix}recall@{k}_a2v"] == pytest.approx(k / candidates), (prefix, k)
            assert record[f"{prefix}recall@{k}_a2v_ci_low"] == pytest.approx(k / candidates), (prefix, k)


def test_recall_credit_is_the_expected_hit_under_a_random_tie_break():
    rng = np.random.default_rng(11)
    # similarities on a coarse grid, so many candidates tie with the positive
    query, candidates = rng.integers(0, 3, size=(30, 2)), rng.integers(0, 3, size=(30, 2))
    query, candidates = query.astype(np.float32), candidates.astype(np.float32)
    rank, tied = retrieval.ranks_and_ties(query, candidates, np.arange(30))
    sim = query.astype(np.float64) @ candidates.T.astype(np.float64)
    positive = np.diag(sim)
    above = (sim > positive[:, None]).sum(axis=1)
    ties = (sim == positive[:, None]).sum(axis=1)
    assert (ties > 1).sum() > 10
    for k in (1, 3, 5):
        # the positive's rank is uniform on above + 1 ... above + ties
        expected = [np.mean(np.arange(a + 1, a + t + 1) <= k) for a, t in zip(above, ties, strict=True)]
        np.testing.assert_allclose(retrieval.recall_credit(rank, tied, k), expected)
        by_video = retrieval.ByVideo(rank, np.arange(30), 30, tied)
        assert by_video.share_at_most(k)(np.arange(30)) == pytest.approx(np.mean(expected))


def test_blockwise_ranks_equal_a_brute_force_loop(monkeypatch):
    monkeypatch.setattr(retrieval, "_BLOCK", 7)  # many blocks, ragged last one
    rng = np.random.default_rng(0)
    query, candidates = unit(rng.normal(size=(40, 6))), unit(rng.normal(size=(40, 6)))
    candidates[5] = candidates[9]  # an exact duplicate across blocks
    query[9] = query[5]
    np.testing.assert_array_equal(
        ranks_and_ties(query, candidates, np.arange(40))[0], brute_force_ranks(query, candidates)
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
        settings = retrieval.RankSettings(1000, 0, codes, candidates)
        after = retrieval.rank_set(planted_audio, planted_video, settings)
        assert before["mean_rank_a2v"] == 1.0
        assert (after.pooled["a2v"][:3] > 1).any() == changes, candidates
        assert (after.full["v2a"][:3] > 1).any() == changes, candidates
        np.testing.assert_array_equal(after.pooled["a2v"][3:], 1.0)


def test_other_videos_ranks_equal_a_brute_force_ranking_without_the_siblings():
    audio, video, codes = clustered(videos=10, per_video=4, noise=1.0, seed=2)
    got = retrieval.ranks_and_ties(audio, video, np.arange(40), codes, codes)[0]
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


def test_retrieval_record_has_intervals_and_tells_aligned_from_random_pairings(tmp_path):
    audio, video, codes = clustered(videos=40, per_video=3, noise=0.5, seed=5)
    ids = np.array([f"v{c:02d}" for c in codes])
    record, ranked = retrieval.evaluate_retrieval(
        [(audio, video)], ids, 50, 0, resamples=200, permutations=200
    )
    assert record.candidates == "other_videos" and record.n_videos == 40 and record.n_queries == 120
    for key in ("median_rank_a2v", "full_median_rank_v2a", "video_median_rank_a2v", "recall@5_v2a"):
        figure = record.intervals[key]
        assert figure.low <= figure.value <= figure.high and figure.n_replicates == 1, key
    assert record.intervals["median_rank_a2v"].value < 0.3 * record.chance_median_rank
    assert record.chance_p["a2v"] == pytest.approx(1 / 201) and record.learned == 1
    assert record.replicates[0].figures["study_median_rank_a2v"] != record.intervals["median_rank_a2v"].value
    assert list(ranked) == ["replicate", "level", "video_id", "rank_a2v", "rank_v2a"]
    assert ranked.groupby("level").size().to_dict() == {"full": 120, "pooled": 120, "video": 40}
    record.save(tmp_path / "retrieval.json")
    assert retrieval.RetrievalRecord.load(tmp_path / "retrieval.json") == record  # one shape, both ways
    shuffled, _ = retrieval.evaluate_retrieval(
        [(audio, video[np.random.default_rng(6).permutation(120)])],
        ids,
        50,
        0,
        resamples=50,
        permutations=200,
    )
    assert shuffled.chance_p["a2v"] > 0.05 and shuffled.learned == 0


def test_one_replicate_interval_is_the_single_level_bootstrap_draw_for_draw():
    from mvcl.stats import interval

    audio, video, codes = clustered(videos=25, per_video=3, noise=0.8, seed=3)
    ids = np.array([f"v{c:02d}" for c in codes])
    record, _ = retrieval.evaluate_retrieval([(audio, video)], ids, 1000, 0, resamples=100, permutations=10)
    pooled = retrieval.ByVideo(
        retrieval.ranks_and_ties(audio, video, np.arange(75), codes, codes)[0], codes, 25
    )
    assert record.intervals["median_rank_a2v"] == replace(
        interval(pooled.median, 25, 100, seed=0), n_replicates=1
    )


def test_replicates_widen_the_interval_and_the_untrained_ones_are_counted():
    audio, video, codes = clustered(videos=30, per_video=3, noise=0.5, seed=11)
    ids = np.array([f"v{c:02d}" for c in codes])
    rng = np.random.default_rng(12)
    untrained = [(unit(rng.normal(size=audio.shape)), unit(rng.normal(size=video.shape))) for _ in range(2)]
    one, _ = retrieval.evaluate_retrieval([(audio, video)], ids, 1000, 0, resamples=200, permutations=100)
    mixed, _ = retrieval.evaluate_retrieval(
        [(audio, video), *untrained, (audio, unit(video + 0.3 * rng.normal(size=video.shape)))],
        ids,
        1000,
        0,
        seeds=[0, 5, 6, 7],
        resamples=200,
        permutations=100,
    )
    assert mixed.learned == 2 and [r.seed for r in mixed.replicates] == [0, 5, 6, 7]
    width = {
        name: r.intervals["median_rank_a2v"].high - r.intervals["median_rank_a2v"].low
        for name, r in (("one", one), ("mixed", mixed))
    }
    assert width["mixed"] > 2 * width["one"]  # training variance is in the interval


def test_permutation_statistic_with_the_identity_pairing_is_the_observed_median():
    audio, video, codes = clustered(videos=30, per_video=3, noise=1.0, seed=7)
    observed = median_rank(audio, video, 40, 0, codes, "other_videos")
    settings = retrieval.RankSettings(40, 0, codes, "other_videos")
    p = retrieval.pooled_permutation_p(audio, video, settings, observed, permutations=20)
    assert set(p) == {"median_rank_a2v_chance_p", "median_rank_v2a_chance_p"}
    better = {key: value - 1e-6 for key, value in observed.items() if isinstance(value, float)}
    far = retrieval.pooled_permutation_p(audio, video, settings, better, permutations=20)
    assert far["median_rank_a2v_chance_p"] == pytest.approx(1 / 21)


def test_against_base_is_empty_for_base_and_negative_for_a_better_configuration():
    rng = np.random.default_rng(8)
    ids = np.repeat([f"v{i}" for i in range(30)], 2)

    def ranks_table(a2v: list[np.ndarray]) -> pd.DataFrame:
        return pd.concat(
            [
                pd.DataFrame(
                    {"replicate": r, "level": "pooled", "video_id": ids, "rank_a2v": ranks, "rank_v2a": 30.0}
                )
                for r, ranks in enumerate(a2v)
            ],
            ignore_index=True,
        )

    base_ranks = [rng.integers(20, 40, 60).astype(float) for _ in range(3)]
    base, better = ranks_table(base_ranks), ranks_table([ranks - 10 for ranks in base_ranks])
    out = retrieval.against_reference({"base": base, "better": better}, "base", 200, 0)
    assert set(out) == {"better"}
    comparison = out["better"]["a2v"]
    assert comparison.difference.value == -10 and comparison.difference.n_replicates == 3
    assert comparison.difference.high < 0 and comparison.p_value < 0.05
    assert out["better"]["v2a"].difference.value == 0 and out["better"]["v2a"].p_value == 1.0
    other = better.assign(video_id=np.tile(ids[::-1], 3))
    with pytest.raises(ValueError, match="different test segments"):
        retrieval.against_reference({"base": base, "other": other}, "base", 10, 0)


def test_table1_median_rank_is_the_correct_computation_not_the_studys():
    """A planted bug 'Table 1's correct median-rank column filled from the study's' must fail here."""
    from mvcl.report.table1 import best_epoch, table1, table1_markdown

    audio, video, codes = clustered(videos=20, per_video=2, noise=0.4, seed=9)
    ids = np.array([f"v{c}" for c in codes])
    noise = np.random.default_rng(10).normal(size=video.shape)
    videos = {"base": unit(video + noise), "clip_style": video}
    records, rank_tables, correct = {}, {}, {}
    for name, emb in videos.items():
        records[name], rank_tables[name] = retrieval.evaluate_retrieval(
            [(audio, emb)], ids, 1000, 0, configuration=name, resamples=50, permutations=20
        )
        correct[name] = np.median(retrieval.ranks_and_ties(audio, emb, np.arange(40), codes, codes)[0])
        assert records[name].replicates[0].figures["study_median_rank_a2v"] != correct[name]
    comparisons = retrieval.against_reference(rank_tables, "base", 50, 0)
    table = table1(records, ["base"], comparisons, {"base": [2], "clip_style": [7]})
    for name in videos:
        row = table.set_index("configuration").loc[name]
        assert row["median_rank_a2v"] == correct[name] != row["study_median_rank_a2v"]
        assert row["median_rank_a2v_ci_low"] <= correct[name] <= row["median_rank_a2v_ci_high"]
    assert table["all_stopped_early"].tolist()[:2] == [True, False]
    history = pd.DataFrame({"epoch": range(6), "val_loss": [5.0, 4.0, 4.0, float("nan"), 4.5, 4.2]})
    assert best_epoch(history) == 1
    text = table1_markdown(table, {})
    low, high = (table.loc[0, f"median_rank_a2v_ci_{side}"] for side in ("low", "high"))
    assert f"| base (study) | {correct['base']:.1f} [{low:.1f}, {high:.1f}] |" in text
    assert "the 20 test videos (40 segments)" in text and "`other_videos`" in text
    assert "Only 20 test videos (fewer than 30)" in text
    assert "Holm's correction over the table's family of 6 tests" in text
    assert "† Every replicate of base" in text
    compact = text.split("## Recall@k")[0]
    assert "R@1/5/10" not in compact and "R@1/5/10 a→v" in text  # recall@k in the second table

    trained = table1(
        records,
        ["base"],
        comparisons,
        {"base": [2], "clip_style": [7]},
        encoders={"clip_style": ("mir", "style")},
    )
    assert trained.set_index("configuration").loc["clip_style", "video_encoder"] == "style"
    assert "| clip_style [mir + style] |" in table1_markdown(trained, {})
    assert "| clip_style |" in text  # the study's pair is not named


def float64_ranks(query, candidates, positive, query_groups=None, candidate_groups=None):
    """The float64 ranking, plainly: mid-ranks with ties within 1e-9, siblings of the query's video left out."""
    query, candidates = np.asarray(query, np.float64), np.asarray(candidates, np.float64)
    sim = query @ candidates.T
    positive_sim = np.einsum("cd,cd->c", query, candidates[positive])[:, None]
    above, tied = sim > positive_sim + 1e-9, np.abs(sim - positive_sim) <= 1e-9
    if query_groups is not None:
        excluded = (query_groups[:, None] == candidate_groups[None, :]) & (
            np.arange(len(candidates))[None, :] != positive[:, None]
        )
        above, tied = above & ~excluded, tied & ~excluded
    return 1 + above.sum(axis=1) + (tied.sum(axis=1) - 1) / 2


@pytest.mark.parametrize("other_videos", [False, True])
def test_float32_blocks_give_the_float64_ranks_on_real_width_embeddings(monkeypatch, other_videos):
    """256-d embeddings (the study's width) with every hard case: exact duplicates, a collapsed cluster,
    near-ties a few float32 ulps apart and 1e-9 apart, and segments of one video that are near-identical."""
    monkeypatch.setattr(retrieval, "_BLOCK", 512)  # several blocks, a ragged last one
    rng = np.random.default_rng(3)
    n, dim = 1500, 256
    codes = np.repeat(np.arange(n // 6), 6)
    base = rng.normal(size=(n // 6, dim))
    audio = unit(np.repeat(base, 6, axis=0) + 0.8 * rng.normal(size=(n, dim)))
    video = unit(audio + 0.9 * rng.normal(size=(n, dim)))
    video[100:140] = video[100]  # collapsed: forty identical candidates
    audio[200:230] = audio[200]
    video[300] = video[301]  # duplicate across a video boundary
    video[700] = unit((video[701] + np.float32(3e-7) * rng.normal(size=dim))[None])[0]  # float32-ulp near-tie
    near = video[900].astype(np.float64)
    video[901] = (near + 1e-10 * rng.normal(size=dim)).astype(np.float32)  # rounds to a duplicate
    groups = codes if other_videos else None
    both = retrieval.ranks_both_ways(audio, video, groups)
    for direction, query, candidates in (("a2v", audio, video), ("v2a", video, audio)):
        expected = float64_ranks(query, candidates, np.arange(n), groups, groups)
        np.testing.assert_array_equal(
            ranks_and_ties(query, candidates, np.arange(n), groups, groups)[0], expected
        )
        np.testing.assert_array_equal(both[direction], expected)
    # and on float64 inputs with ties closer than float32 can tell apart, but wider than 1e-9
    query = rng.normal(size=(300, dim))
    candidates = query + rng.normal(size=(300, dim))
    candidates[11] = candidates[10] + 1e-8 * rng.normal(size=dim)
    candidates[21] = candidates[20] + 1e-12 * rng.normal(size=dim)
    np.testing.assert_array_equal(
        ranks_and_ties(query, candidates, np.arange(300))[0], float64_ranks(query, candidates, np.arange(300))
    )
