"""Guards for statistics a plausible bug would get wrong while every other test stayed green (issue 22).

Each test names the bug it catches; each was checked by planting that bug by hand once. They run on tiny
synthetic data with a known answer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mvcl.beyond.recommend import embedding_tables, recommend
from mvcl.beyond.rq2 import agreement_table, make_space
from mvcl.probe.data import ProbeWarning
from mvcl.probe.intervals import metric_intervals
from mvcl.probe.metrics import metric_on_videos
from mvcl.probe.train import run_probe
from mvcl.retrieval import evaluate_retrieval
from mvcl.stats import interval
from tests.test_probe import SMALL


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --- Table 1 ---------------------------------------------------------------------------------------------------


def test_table1_intervals_resample_videos_not_segments():
    """Bug: the bootstrap draws segments, so 30 segments of one video count as 30 independent queries."""
    rng = np.random.default_rng(0)
    videos, per_video = 10, 30
    # every segment of a video has the same embeddings, so all its segments share one rank
    audio = np.repeat(unit(rng.normal(size=(videos, 8))), per_video, axis=0)
    video = np.repeat(unit(rng.normal(size=(videos, 8))), per_video, axis=0)
    ids = np.repeat([f"v{i}" for i in range(videos)], per_video)
    record, table = evaluate_retrieval([(audio, video)], ids, 1000, 0, resamples=400, permutations=10)
    record = record.flat()
    ranked = {"rank_a2v": table.loc[table["level"] == "pooled", "rank_a2v"].to_numpy()}
    per_video_rank = ranked["rank_a2v"].reshape(videos, per_video)
    assert (per_video_rank == per_video_rank[:, :1]).all() and len(np.unique(per_video_rank)) > 5
    # the known answer: a bootstrap of the 10 video ranks (each video weighs its 30 equal segments)
    by_video = interval(lambda drawn: float(np.median(per_video_rank[drawn, 0])), videos, 400, 0)
    by_segment = interval(
        lambda drawn: float(np.median(ranked["rank_a2v"][drawn])), videos * per_video, 400, 0
    )
    assert by_segment.high - by_segment.low < 0.5 * (
        by_video.high - by_video.low
    )  # the test can tell them apart
    assert record["median_rank_a2v_ci_low"] == pytest.approx(by_video.low)
    assert record["median_rank_a2v_ci_high"] == pytest.approx(by_video.high)


def test_the_permutation_test_under_other_videos_leaves_out_a_querys_own_video():
    """Bug: permuted pairings rank among the query's own video's segments too, while the observed ranks do not;
    the null then has more candidates than the real test, and unrelated embeddings look aligned (p ~ 0.01)."""
    p_values = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        videos, per_video = 10, 30  # many siblings: 29 of 300 candidates
        audio = unit(rng.normal(size=(videos * per_video, 8)))
        video = unit(rng.normal(size=(videos * per_video, 8)))  # unrelated to the audio
        ids = np.repeat([f"v{i}" for i in range(videos)], per_video)
        record, _ = evaluate_retrieval(
            [(audio, video)], ids, 1000, seed, candidates="other_videos", resamples=10, permutations=200,
            study_protocol=False,
        )
        p_values.append(record.flat()["median_rank_a2v_chance_p"])
    # under the null the p-value is uniform: its median over 5 unrelated sets sits far above 0.05
    assert np.median(p_values) > 0.2, p_values


# --- Table 2 ---------------------------------------------------------------------------------------------------


def test_table2_interval_is_a_bootstrap_over_test_videos_not_the_spread_over_seeds():
    """Bug: mean ± 1.96 SD over seeds, which is 0 wide when the seeds agree however few the test videos."""
    rng = np.random.default_rng(1)
    n = 40
    targets = rng.integers(0, 2, n)
    scores = np.clip(targets[:, None] * 0.3 + rng.random((n, 1)) * 0.7, 0, 1)
    scores = np.hstack([1 - scores, scores])  # genre: two classes
    result = {
        "task": "genre",
        "labels": ["a", "b"],
        "untrained": [],
        "predictions": {
            "video_ids": [f"v{i}" for i in range(n)],
            "targets": targets.tolist(),
            "scores": [scores.tolist()] * 3,  # three seeds that agree exactly
            "thresholds": [None] * 3,
        },
    }
    found = metric_intervals(result, "genre/musicnn", resamples=300, seed=0)["roc_auc"]
    expected = interval(
        lambda drawn: metric_on_videos("genre", "roc_auc", targets[drawn], scores[drawn]), n, 300, 0
    )
    assert found.high - found.low > 0.1
    assert (found.low, found.high) == pytest.approx((expected.low, expected.high))


def test_a_segment_level_probe_scores_a_video_by_the_mean_over_its_segments():
    """Bug: each test video scored by its first segment's prediction only."""
    rng = np.random.default_rng(2)
    n_videos, per_video = 80, 5
    label = rng.integers(0, 2, n_videos)
    split = np.where(np.arange(n_videos) < 50, "train", np.where(np.arange(n_videos) < 60, "val", "test"))
    sign = np.repeat(np.where(label == 1, 1.0, -1.0), per_video)[:, None]
    X = sign * np.array([[2.0, 0.0]]) + rng.normal(scale=0.3, size=(n_videos * per_video, 2))
    test_first = np.flatnonzero(np.repeat(split == "test", per_video) & (np.arange(len(X)) % per_video == 0))
    X[test_first] *= -1  # a test video's first segment looks like the other class; the other four do not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeWarning)
        result = run_probe(
            X.astype(np.float32),
            np.repeat(np.array(["a", "b"])[label], per_video),
            np.repeat(split, per_video),
            "genre",
            {**SMALL, "max_epochs": 30},
            seed=0,
            device="cpu",
            video_ids=np.repeat([f"v{i}" for i in range(n_videos)], per_video),
        )
    assert result["n_test_videos"] == 20
    assert result["roc_auc"] > 0.9  # by its first segment alone every test video would be ranked wrong


# --- RQ2 -------------------------------------------------------------------------------------------------------


def _judgements(agree: np.ndarray, annotators: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """One judgement per row on its own seed video: candidate x is nearer the seed in the space; the person
    chooses x where `agree` is true."""
    n = len(agree)
    seeds = [f"s{i}" for i in range(n)]
    space = make_space([*seeds, "x", "y"], np.array([[1.0, 0.0]] * n + [[0.9, 0.1], [0.0, 1.0]]))
    judgements = pd.DataFrame(
        {
            "seed": seeds,
            "candidate_a": "x",
            "candidate_b": "y",
            "choice": np.where(agree, "a", "b"),
            "annotator": annotators,
            "time": "",
        }
    )
    return judgements, {"space": space}


def test_rq2_bootstrap_resamples_annotators_as_well_as_seeds():
    """Bug: only seeds are resampled, so annotators who disagree with each other never widen the interval."""
    n = 200
    annotators = np.where(np.arange(n) % 2 == 0, "always", "never")
    judgements, spaces = _judgements(annotators == "always", annotators)
    row = agreement_table(judgements, spaces, replicates=2000, seed=0).iloc[0]
    assert row["agreement"] == 0.5
    # drawing "always" twice (or "never" twice) happens in 1 draw of 4: the interval spans 0 to 1
    assert row["ci_low"] == 0.0 and row["ci_high"] == 1.0


def test_rq2_interval_is_at_the_2_5_and_97_5_percentiles():
    """Bug: the 5th and 95th percentiles, a 90% interval called 95%."""
    n = 400
    agree = np.arange(n) < 280  # 70% agreement, one annotator, one judgement per seed
    judgements, spaces = _judgements(agree, np.full(n, "one"))
    row = agreement_table(judgements, spaces, replicates=4000, seed=0).iloc[0]
    half_width = 1.96 * np.sqrt(0.7 * 0.3 / n)  # 0.045; a 90% interval is 0.038
    assert row["agreement"] == pytest.approx(0.7)
    assert (row["ci_high"] - row["ci_low"]) / 2 == pytest.approx(half_width, abs=0.004)


# --- cold-start recommendations ----------------------------------------------------------------------------------


def test_recommendations_rank_by_the_aggregated_vectors_not_the_audio_ones():
    """Bug: catalog videos ranked by the audio embedding alone."""
    catalog_audio = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    catalog_video = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    segments = pd.DataFrame({"video_id": ["c1", "c2"], "segment": 0, "split": "train"})
    catalog, _ = embedding_tables(segments, catalog_audio, catalog_video)
    new_segments = pd.DataFrame({"video_id": ["n1"], "segment": 0, "split": "test"})
    new, _ = embedding_tables(new_segments, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    manifest = pd.DataFrame(
        {
            "video_id": ["c1", "c2", "n1"],
            "title": "",
            "artist": "",
            "genre": "",
            "path": ["/c1", "/c2", "/n1"],
        }
    )
    table = recommend(new, catalog, manifest, manifest, k=2)
    # aggregated: n1 (0.5, 0.5), c1 (1, 0), c2 (0.5, 0.5), so c2 first; by audio alone c1 would be
    assert table["video_id"].tolist() == ["c2", "c1"]
    assert table["cosine"].tolist() == pytest.approx([1.0, np.sqrt(0.5)], abs=1e-5)
