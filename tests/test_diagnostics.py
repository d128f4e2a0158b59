"""Embedding diagnostics and their figures, on constructed embeddings whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mvcl.qualitative.diagnostics import (
    alignment,
    diagnose,
    embedding_map,
    merge_records,
    modality_gap,
    pair_similarities,
    read_coupling_sweep,
    separation_auc,
    uniformity,
)
from mvcl.report.figures.diagnostics import (
    plot_coupling_sweep,
    plot_diagnostics,
    plot_embedding_map,
    plot_similarity_histograms,
)


def basis(n: int, dim: int | None = None) -> np.ndarray:
    """The first n standard unit vectors of a `dim`-d space (pairwise orthogonal, squared distance 2)."""
    return np.eye(dim or n, dtype=np.float32)[:n]


def segments_table(video_ids: list[str], splits: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": video_ids,
            "segment": list(range(len(video_ids))),
            "split": splits or ["test"] * len(video_ids),
        }
    )


def test_alignment_is_zero_for_identical_pairs_and_two_for_orthogonal_ones():
    vectors = basis(4)
    assert alignment(vectors, vectors) == pytest.approx(0.0)
    assert alignment(vectors, np.roll(vectors, 1, axis=0)) == pytest.approx(2.0)


def test_uniformity_is_zero_when_collapsed_and_minus_four_for_an_orthonormal_set():
    collapsed = np.tile(basis(1, 8), (5, 1))
    assert uniformity(collapsed, seed=0) == pytest.approx(0.0)
    assert uniformity(basis(8), seed=0) == pytest.approx(-4.0)  # every pair: exp(-2 * 2)


def test_uniformity_subsamples_large_sets_seeded():
    vectors = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert uniformity(vectors, seed=1, max_points=100) == uniformity(vectors, seed=1, max_points=100)
    assert uniformity(vectors, seed=1, max_points=100) == pytest.approx(uniformity(vectors, seed=1), abs=0.1)


def test_modality_gap_is_the_distance_between_centroids():
    audio = np.tile(basis(1, 4), (3, 1))
    video = np.tile(basis(2, 4)[1:], (3, 1))
    assert modality_gap(audio, video) == pytest.approx(math.sqrt(2))
    assert modality_gap(audio, audio) == pytest.approx(0.0)


def test_negative_pairs_never_pair_segments_of_one_video():
    audio = video = basis(4)
    video_ids = np.array(["a", "a", "b", "c"])
    positives, negatives = pair_similarities(audio, video, video_ids, seed=0)
    np.testing.assert_allclose(positives, 1.0)
    # 16 pairs less the 4 positives and the 2 cross pairs inside video a.
    assert negatives.size == 10
    np.testing.assert_allclose(negatives, 0.0)


def test_negative_pairs_are_sampled_when_there_are_too_many():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(50, 8)).astype(np.float32)
    video_ids = np.arange(50).astype(str)
    _, negatives = pair_similarities(audio, audio, video_ids, seed=0, max_negatives=200)
    assert 150 < negatives.size <= 200  # draws of i == j are dropped


def test_separation_auc_is_one_when_separable_and_a_half_when_not():
    assert separation_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3])) == pytest.approx(1.0)
    assert separation_auc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert math.isnan(separation_auc(np.array([0.5]), np.array([])))


def test_diagnose_uses_only_finite_test_rows_and_sees_perfect_alignment():
    audio = basis(6, 8)
    audio[4] = np.nan
    segments = segments_table(["a", "b", "c", "d", "e", "f"], ["test"] * 5 + ["train"])
    record = diagnose(segments, audio, audio.copy(), seed=0)
    assert record["test_segments"] == 4 and record["test_videos"] == 4
    assert record["alignment"] == pytest.approx(0.0)
    assert record["modality_gap"] == pytest.approx(0.0)
    assert record["positive_negative_auc"] == pytest.approx(1.0)
    assert record["uniformity_audio"] == pytest.approx(-4.0)


def test_diagnose_refuses_embeddings_not_aligned_with_segments():
    with pytest.raises(ValueError, match="row-aligned"):
        diagnose(segments_table(["a", "b"]), basis(3), basis(3), seed=0)


def test_records_merge_into_one_row_per_configuration_and_clashes_are_errors():
    table = merge_records(
        {
            "base": [{"alignment": 1.0}, {"loss_floor": 11.8}],
            "tau03": [{"alignment": 0.5}, {"loss_floor": 3.0}],
        }
    )
    assert table.columns.tolist() == ["configuration", "alignment", "loss_floor"]
    assert table["loss_floor"].tolist() == [11.8, 3.0]
    with pytest.raises(ValueError, match="alignment given twice"):
        merge_records({"base": [{"alignment": 1.0}, {"alignment": 2.0}]})


def test_embedding_map_places_both_modalities_of_every_test_segment():
    rng = np.random.default_rng(0)
    audio = rng.random((14, 6)).astype(np.float32)
    video = rng.random((14, 6)).astype(np.float32)
    segments = segments_table([f"v{index // 2}" for index in range(14)], ["test"] * 12 + ["val"] * 2)
    manifest = pd.DataFrame(
        {"video_id": [f"v{index}" for index in range(7)], "genre": ["rock", "pop"] * 3 + [""]}
    )
    table = embedding_map(manifest, segments, audio, video, seed=0, max_segments=10)
    assert len(table) == 20
    assert table["modality"].value_counts().to_dict() == {"audio": 10, "video": 10}
    assert set(table["genre"]) <= {"rock", "pop"}
    assert np.isfinite(table[["x", "y"]].to_numpy()).all()


def test_coupling_sweep_is_sorted_by_coupling_and_names_missing_keys():
    record = {"median_rank_a2v": 3.0, "median_rank_v2a": 4.0, "chance_median_rank": 50.5}
    table = read_coupling_sweep({1.0: record, 0.0: {**record, "median_rank_a2v": 50.0}})
    assert table["av_coupling"].tolist() == [0.0, 1.0]
    assert table["median_rank_a2v"].tolist() == [50.0, 3.0]
    with pytest.raises(KeyError, match="chance_median_rank"):
        read_coupling_sweep({0.5: {"median_rank_a2v": 1.0, "median_rank_v2a": 1.0}})


def assert_png(path, min_bytes: int = 15_000) -> None:
    assert path.stat().st_size > min_bytes
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 200


def test_diagnostic_figures_are_drawn(tmp_path):
    rng = np.random.default_rng(0)
    similarities = {
        name: (rng.normal(mean, 0.05, 40), rng.normal(0.5, 0.1, 400))
        for name, mean in (("base", 0.5), ("tau03", 0.8))
    }
    plot_similarity_histograms(similarities, tmp_path / "similarities.png")
    assert_png(tmp_path / "similarities.png")
    table = pd.DataFrame(
        {
            "configuration": ["base", "tau03"],
            "alignment": [0.9, 0.2],
            "uniformity_audio": [-0.5, -1.5],
            "uniformity_video": [-0.6, -1.4],
            "modality_gap": [0.4, 0.1],
            "positive_negative_auc": [0.5, 0.9],
        }
    )
    plot_diagnostics(table, tmp_path / "diagnostics.png")
    assert_png(tmp_path / "diagnostics.png")
    points = pd.DataFrame(
        {
            "x": rng.normal(size=20),
            "y": rng.normal(size=20),
            "modality": ["audio"] * 10 + ["video"] * 10,
            "video_id": [f"v{index % 10}" for index in range(20)],
            "segment": 0,
            "genre": ["rock", "pop"] * 10,
        }
    )
    plot_embedding_map(points, tmp_path / "map.png", title="map")
    assert_png(tmp_path / "map.png")
    sweep = pd.DataFrame(
        {
            "av_coupling": [0.0, 0.5, 1.0],
            "median_rank_a2v": [36.0, 20.0, 2.0],
            "median_rank_v2a": [37.0, 22.0, 3.0],
            "chance_median_rank": [36.5] * 3,
        }
    )
    plot_coupling_sweep(sweep, tmp_path / "coupling.png", demo_coupling=0.8)
    assert_png(tmp_path / "coupling.png")
