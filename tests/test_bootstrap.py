"""Bootstrap intervals over test videos, paired comparisons and permutation tests (mvcl.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mvcl.stats import (
    holm,
    interval,
    p_text,
    paired,
    permutation_p,
    rows_by_video,
    rows_of,
    two_level_interval,
    two_level_paired,
    two_sided_p,
    video_codes,
)


def test_about_95_percent_of_intervals_contain_the_true_mean():
    """Coverage on a case with a known answer: the mean of 60 draws from N(0.7, 0.1), 200 repetitions."""
    rng = np.random.default_rng(0)
    covered = 0
    repetitions = 200
    for repetition in range(repetitions):
        sample = rng.normal(0.7, 0.1, size=60)
        ci = interval(lambda videos, s=sample: float(s[videos].mean()), len(sample), 400, seed=repetition)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.90 <= covered / repetitions <= 0.99


def test_interval_narrows_with_more_videos_and_is_seeded():
    rng = np.random.default_rng(1)
    small, large = rng.normal(size=20), rng.normal(size=500)
    a = interval(lambda v: float(small[v].mean()), 20, 300, seed=3)
    b = interval(lambda v: float(large[v].mean()), 500, 300, seed=3)
    assert (b.high - b.low) < (a.high - a.low) / 3
    assert a == interval(lambda v: float(small[v].mean()), 20, 300, seed=3)
    assert a.n_videos == 20 and a.resamples == 300
    assert a.text() == f"{a.value:.2f} [{a.low:.2f}, {a.high:.2f}]"


def test_undefined_draws_are_left_out_and_counted():
    labels = np.array([0] * 19 + [1])  # many draws hold no positive
    ci = interval(lambda v: float(labels[v].mean()) if labels[v].any() else float("nan"), 20, 200, seed=0)
    assert ci.undefined > 0 and ci.resamples + ci.undefined == 200


def test_paired_difference_of_identical_inputs_is_exactly_zero():
    scores = np.random.default_rng(2).normal(size=40)
    comparison = paired(lambda v: float(scores[v].mean()), lambda v: float(scores[v].mean()), 40, 300)
    assert comparison.difference.value == comparison.difference.low == comparison.difference.high == 0
    assert comparison.p_value == 1.0


def test_paired_test_detects_a_planted_difference_that_unpaired_noise_hides():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 1.0, size=80)  # per-video difficulty, common to both representations
    a, b = shared + 0.15 + rng.normal(0, 0.05, 80), shared + rng.normal(0, 0.05, 80)
    comparison = paired(lambda v: float(a[v].mean()), lambda v: float(b[v].mean()), 80, 500, seed=1)
    assert comparison.difference.low > 0 and comparison.p_value < 0.01
    one, other = (interval(lambda v, x=x: float(x[v].mean()), 80, 500, seed=1) for x in (a, b))
    assert one.low < other.high  # unpaired, the two intervals overlap


def test_two_sided_p_is_never_zero_and_symmetric():
    assert two_sided_p(np.full(99, 1.0)) == pytest.approx(2 / 100)
    assert two_sided_p(np.full(99, -1.0)) == two_sided_p(np.full(99, 1.0))


def test_permutation_p_separates_an_aligned_pairing_from_a_random_one():
    x = np.arange(50, dtype=float)

    def mismatch(permutation):
        return float(np.abs(x - x[permutation]).mean())

    assert permutation_p(mismatch, mismatch(np.arange(50)), 50, 200) == pytest.approx(1 / 201)
    random = mismatch(np.random.default_rng(4).permutation(50))
    assert permutation_p(mismatch, random, 50, 200) > 0.05


def test_videos_are_drawn_with_all_their_rows():
    ids, codes = video_codes(["b", "b", "a", "c", "a", "b"])
    assert ids.tolist() == ["b", "a", "c"] and codes.tolist() == [0, 0, 1, 2, 1, 0]
    groups = rows_by_video(codes, 3)
    assert [g.tolist() for g in groups] == [[0, 1, 5], [2, 4], [3]]
    assert rows_of(np.array([1, 1, 2]), groups).tolist() == [2, 4, 2, 4, 3]


def _replicated_world(rng, replicates, videos=30, per_video=4, training_sd=1.0, shared_videos=None):
    """metric(replicate, videos): mean over the drawn videos of per-segment values with a training effect per
    replicate (SD `training_sd`), a video effect (SD 1) and segment noise (SD 1); the true value is 0."""
    video_effect = rng.normal(size=videos) if shared_videos is None else shared_videos
    training = rng.normal(0, training_sd, replicates)
    values = (
        training[:, None, None]
        + video_effect[None, :, None]
        + rng.normal(size=(replicates, videos, per_video))
    )
    means = values.mean(axis=2)  # [replicates, videos]
    return lambda replicate, drawn: float(means[replicate, drawn].mean())


def test_two_level_interval_covers_the_configurations_value_about_95_percent_of_the_time():
    rng, sims = np.random.default_rng(0), 150
    covered = single_covered = 0
    for sim in range(sims):
        metric = _replicated_world(rng, replicates=5)
        two_level = two_level_interval(metric, 5, 30, resamples=300, seed=sim)
        covered += two_level.low <= 0 <= two_level.high
        one_model = interval(lambda videos, metric=metric: metric(0, videos), 30, 300, seed=sim)
        single_covered += one_model.low <= 0 <= one_model.high
    assert 0.88 <= covered / sims <= 1.0
    assert single_covered / sims < 0.8  # one trained model's interval misses the training variance


def test_same_configuration_at_two_seeds_is_rejected_about_5_percent_of_the_time():
    """Calibration: base against base at different seeds, same test videos; today's single-model paired test
    called most such pairs 'significant'."""
    rng, sims = np.random.default_rng(1), 150
    rejected = single_rejected = 0
    for sim in range(sims):
        videos = rng.normal(size=30)
        a, b = (_replicated_world(rng, 5, shared_videos=videos) for _ in range(2))
        rejected += two_level_paired(a, 5, b, 5, 30, resamples=300, seed=sim).p_value < 0.05
        single = paired(lambda v, a=a: a(0, v), lambda v, b=b: b(0, v), 30, 300, seed=sim)
        single_rejected += single.p_value < 0.05
    assert rejected / sims <= 0.08
    assert single_rejected / sims > 0.5


def test_two_level_paired_pairs_replicates_by_seed_and_finds_a_real_difference():
    rng = np.random.default_rng(2)
    videos = rng.normal(size=30)
    a = _replicated_world(rng, 5, training_sd=0.2, shared_videos=videos)
    better = two_level_paired(lambda r, v: a(r, v) - 1.0, 5, a, 5, 30, resamples=300, seed=0)
    assert better.difference.value == pytest.approx(-1.0) and better.difference.high < 0
    assert better.p_value <= 2 / 301 and better.difference.n_replicates == 5


def test_zero_differences_count_half_in_each_tail():
    assert two_sided_p(np.r_[np.zeros(5), np.ones(95)]) == pytest.approx(2 * 3.5 / 101)
    assert two_sided_p(np.r_[np.zeros(60), np.ones(40)]) == pytest.approx(2 * 31 / 101)
    assert two_sided_p(np.zeros(100)) == 1.0


def test_p_values_print_at_their_resolution():
    assert p_text(1 / 1001) == "≤ 0.001" and p_text(0.001) == "≤ 0.001"
    assert p_text(0.01234) == "0.012" and p_text(math.nan) == "n/a"


def test_holm_adjusts_step_down_and_keeps_nan_out_of_the_family():
    adjusted = holm([0.01, 0.04, 0.03, math.nan])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]
