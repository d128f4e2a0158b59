"""Embeddings of every video and cold-start recommendations for new videos (no retraining)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from mvcl.beyond.recommend import (
    RECOMMENDATION_COLUMNS,
    embedding_tables,
    recommend,
    vectors_of,
    video_key,
    video_vectors,
)
from mvcl.io import save_parquet
from mvcl.plan import Plan
from tests.helpers import REPO, deep_update, load_test_config, run_snakemake, write_config


def segments_of(video_ids: list[str], per_video: int = 3, split: str = "test") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": np.repeat(video_ids, per_video),
            "segment": np.tile(np.arange(per_video), len(video_ids)),
            "split": split,
        }
    )


def test_a_video_vector_is_the_mean_of_its_finite_segments_and_aggregated_the_mean_of_both():
    segments = segments_of(["b", "a"], per_video=2)
    audio = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [np.nan, 0.0]], dtype=np.float32)
    video = np.array([[0.0, 1.0], [0.0, 3.0], [4.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    table, per_segment = embedding_tables(segments, audio, video)
    assert table["video_id"].tolist() == ["b", "a"]  # segments.parquet order
    assert table["n_segments"].tolist() == [2, 1]  # a's second segment has a NaN audio embedding
    np.testing.assert_allclose(vectors_of(table, "audio"), [[2.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(vectors_of(table, "video"), [[0.0, 2.0], [4.0, 0.0]])
    np.testing.assert_allclose(vectors_of(table, "aggregated"), [[1.0, 1.0], [2.0, 1.0]])
    assert len(per_segment) == 4 and np.isnan(per_segment["audio"][3][0])


def test_a_video_without_finite_segments_keeps_its_row_with_nan_vectors():
    table, audio, _ = video_vectors(segments_of(["x"], 2), np.full((2, 3), np.nan), np.ones((2, 3)))
    assert table["n_segments"].tolist() == [0] and np.isnan(audio).all()


def test_embedding_tables_round_trip_through_parquet(tmp_path):
    rng = np.random.default_rng(0)
    segments = segments_of(["v1", "v2", "v3"])
    videos, per_segment = embedding_tables(
        segments,
        rng.standard_normal((9, 5)).astype(np.float32),
        rng.standard_normal((9, 5)).astype(np.float32),
    )
    save_parquet(tmp_path / "base.parquet", videos)
    back = pd.read_parquet(tmp_path / "base.parquet")
    np.testing.assert_array_equal(vectors_of(back), vectors_of(videos))
    assert vectors_of(back).dtype == np.float32 and vectors_of(back).shape == (3, 5)


def test_video_keys_are_the_id_when_safe_else_a_stable_hash():
    assert video_key("v0001") == "v0001"
    assert video_key("reupload-v0001.x") == "reupload-v0001.x"
    for unsafe in ("a/b", "with space", "../up", "ünï", "id-abc"):
        key = video_key(unsafe)
        assert re.fullmatch(r"id-[0-9a-f]{20}", key), key
        assert key == video_key(unsafe)
    assert video_key("a/b") != video_key("a b")


def _catalog() -> tuple[pd.DataFrame, pd.DataFrame]:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]], dtype=np.float32)
    segments = segments_of(["c1", "c2", "c3", "c4"], per_video=1, split="train")
    table, _ = embedding_tables(segments, vectors, vectors)
    manifest = pd.DataFrame(
        {
            "video_id": ["c1", "c2", "c3", "c4"],
            "title": ["One", "Two", "Three", "Four"],
            "artist": ["A1", "A2", "A3", "A4"],
            "genre": ["pop", "rock", "pop", ""],
            "path": [f"/videos/c{i}.mp4" for i in range(1, 5)],
        }
    )
    return table, manifest


def test_recommendations_rank_catalog_videos_by_cosine_with_their_metadata():
    catalog, manifest = _catalog()
    query = np.array([[0.9, 0.2]], dtype=np.float32)
    new, _ = embedding_tables(segments_of(["n1"], per_video=1), query, query)
    new_manifest = pd.DataFrame(
        {"video_id": ["n1"], "title": ["New"], "artist": ["N"], "genre": [""], "path": ["/n1"]}
    )
    table = recommend(new, catalog, new_manifest, manifest, k=3)
    assert list(table.columns) == RECOMMENDATION_COLUMNS
    assert table["video_id"].tolist() == ["c1", "c3", "c2"]
    assert table["rank"].tolist() == [1, 2, 3]
    expected = [0.9 / np.hypot(0.9, 0.2), (0.9 + 0.2) * 0.7 / np.hypot(0.9, 0.2) / np.hypot(0.7, 0.7)]
    np.testing.assert_allclose(table["cosine"][:2], expected, atol=1e-5)
    assert table.iloc[0][["title", "artist", "genre", "path"]].tolist() == [
        "One",
        "A1",
        "pop",
        "/videos/c1.mp4",
    ]
    assert (table["new_title"] == "New").all()


def test_a_new_video_with_a_catalog_id_is_refused_naming_it():
    catalog, manifest = _catalog()
    with pytest.raises(ValueError, match="c2.*give new videos ids of their own"):
        recommend(catalog.iloc[[1]], catalog, manifest, manifest, k=2)


def test_the_plan_adds_embeddings_always_and_recommendations_only_with_new_videos():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    targets = Plan(config).final_targets()
    assert (
        "results/embeddings/base.parquet" in targets
        and "results/embeddings/temporal_segments.parquet" in targets
    )
    assert "results/recommendations.html" in targets and "results/recommendations/clip_style.csv" in targets
    assert "results/rq2.csv" in targets and "results/judge.html" in targets
    config["dataset"]["new_videos"] = None
    config["demo"]["enabled"] = False
    targets = Plan(config).final_targets()
    assert not any("recommendations" in target for target in targets)
    assert "results/judge.html" in targets and "results/rq2.csv" not in targets  # no judgements yet
    config["outputs"] = {"rq2": False}
    assert "results/judge.html" not in Plan(config).final_targets()


# --- the workflow: new videos embedded by the trained heads, and only the added ones recomputed ------------------

NEW_TARGETS = ["results/recommendations/base.csv", "results/recommendations.html"]


def _small_catalog_config() -> dict:
    """The tiny settings with 12 videos (a val split to stop training on) in one shard, and one configuration."""
    return deep_update(
        load_test_config("tiny"),
        {
            "demo": {"videos": 12},
            "features": {"shard_videos": 12},  # one catalog feature job per encoder (new videos: one each)
            "dataset": {"split": {"train": 0.5, "val": 0.25, "test": 0.25}, "new_videos": "new/metadata.csv"},
            "recommend": {"k": 3},
            "outputs": {"qualitative": False, "diagnostics": False, "ablation": False, "rq2": False},
        },
    )


def _write_only_base(workdir, changes):
    path = write_config(workdir, changes)
    config = yaml.safe_load(path.read_text())
    config["configurations"] = {"base": {}}
    config["ablation"]["entries"] = {}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _jobs(output: str) -> dict[str, int]:
    """Job counts of a dry run's 'Job stats' table."""
    stats = output.split("Job stats:")[1].split("total")[0]
    return {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()[3:] if line.strip()}


@pytest.mark.slow
def test_new_videos_are_recommended_their_originals_without_retraining_and_only_added_ones_recomputed(
    tmp_path,
):
    from mvcl.demo.reencode import reencode

    _write_only_base(tmp_path, _small_catalog_config())
    run_snakemake(tmp_path, "results/data/manifest.parquet")
    manifest = pd.read_parquet(tmp_path / "results/data/manifest.parquet")
    originals = manifest.loc[manifest["split"] == "test", "video_id"].tolist()[:2]
    assert len(originals) == 2
    new_dir = tmp_path / "new"
    for original in originals:
        reencode(manifest.set_index("video_id").loc[original, "path"], new_dir / f"{original}-again.mp4")
    (new_dir / "garbage.mp4").write_bytes(b"not a video" * 100)
    rows = [[f"again-{originals[0]}", f"{originals[0]}-again.mp4"], ["broken", "garbage.mp4"]]
    pd.DataFrame(rows, columns=["video_id", "path"]).to_csv(new_dir / "metadata.csv", index=False)
    run_snakemake(tmp_path, *NEW_TARGETS)

    recommendations = pd.read_csv(tmp_path / "results/recommendations/base.csv")
    top = recommendations[recommendations["rank"] == 1].set_index("new_video_id")
    assert top.loc[f"again-{originals[0]}", "video_id"] == originals[0]
    assert len(recommendations) == 3  # k per accepted new video; the broken one is rejected
    rejected = pd.read_csv(tmp_path / "results/new/data/rejected.csv").set_index("video_id")["reason"]
    assert "decoded" in rejected["broken"] or "corrupt" in rejected["broken"]
    page = (tmp_path / "results/recommendations.html").read_text()
    assert f'data-new-video-id="again-{originals[0]}"' in page and page.count("<video") == 4
    catalog = pd.read_parquet(tmp_path / "results/embeddings/base.parquet")
    assert sorted(catalog["video_id"]) == sorted(manifest["video_id"])  # every split
    first_shard = tmp_path / f"results/new/features/musicnn/again-{originals[0]}.npy"
    first_mtime = first_shard.stat().st_mtime_ns

    # A second new video: the dry run schedules no training, and the run extracts only its features.
    rows.append([f"again-{originals[1]}", f"{originals[1]}-again.mp4"])
    pd.DataFrame(rows, columns=["video_id", "path"]).to_csv(new_dir / "metadata.csv", index=False)
    dry = run_snakemake(tmp_path, "-n", *NEW_TARGETS)
    jobs = _jobs(dry.stdout)
    assert "train" not in jobs and "audio_features" not in jobs and "gather_features" not in jobs
    assert jobs["ingest_new"] == 1
    run = run_snakemake(tmp_path, *NEW_TARGETS)
    log = run.stdout + run.stderr
    assert log.count("rule audio_features_new:") == 1 and f"key=again-{originals[1]}" in log
    assert "rule train:" not in log
    assert first_shard.stat().st_mtime_ns == first_mtime
    recommendations = pd.read_csv(tmp_path / "results/recommendations/base.csv")
    top = recommendations[recommendations["rank"] == 1].set_index("new_video_id")["video_id"]
    assert top.to_dict() == {f"again-{original}": original for original in originals}
