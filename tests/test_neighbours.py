"""Nearest-neighbour lists, contact sheets and the neighbour rules, on constructed embeddings."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mvcl.qualitative.neighbours import (
    genre_agreement,
    mode_vectors,
    nearest_neighbours,
    neighbours_for,
    pick_seeds,
    video_items,
)
from mvcl.report.figures.neighbours import plot_neighbour_sheet
from mvcl.report.judge import render_judge_page
from mvcl.report.pages import POSTER_WIDTH, media_source, render_page
from mvcl.report.recommendations import render_recommendations
from tests.helpers import REPO, snakemake_command
from tests.patterns import read_frame_index, write_test_pattern_video

# Video v_i sits at ANGLES[i] degrees in one plane: its nearest videos are known by angle difference.
ANGLES = [0.0, 10.0, 25.0, 45.0, 90.0, 180.0]
GENRES = ["rock", "rock", "pop", "rock", "pop", "pop"]
SEGMENTS_PER_VIDEO = 2


def plane(angles_deg: list[float], dim: int = 8) -> np.ndarray:
    """Unit vectors at the given angles in the plane of the first two axes of a `dim`-d space."""
    radians = np.deg2rad(angles_deg)
    vectors = np.zeros((len(angles_deg), dim), dtype=np.float32)
    vectors[:, 0], vectors[:, 1] = np.cos(radians), np.sin(radians)
    return vectors


def write_tiny_corpus(folder: Path, videos: int = len(ANGLES)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tiny test-pattern MP4s with a manifest and segments table (2 segments each, all in the test split)."""
    manifest_rows, segment_rows = [], []
    for index in range(videos):
        video_id = f"v{index + 1}"
        path = folder / "videos" / f"{video_id}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_test_pattern_video(path, duration_s=4, fps=8, size=(64, 36))
        manifest_rows.append(
            {
                "video_id": video_id,
                "path": str(path.resolve()),
                "genre": GENRES[index % len(GENRES)],
                "msd_id": "",
                "artist": f"Artist {index}",
                "title": f"Song {index}",
                "duration_s": 4.0,
                "fps": 8.0,
                "width": 64,
                "height": 36,
                "audio_sample_rate": 22050,
                "split": "test",
            }
        )
        for segment, (start, end) in enumerate([(0.5, 2.0), (2.2, 3.7)]):
            segment_rows.append(
                {
                    "video_id": video_id,
                    "segment": segment,
                    "start_s": start,
                    "end_s": end,
                    "clip_start_s": start,
                    "clip_end_s": end,
                    "split": "test",
                    "path": str(path.resolve()),
                    "shard": 0,
                }
            )
    return pd.DataFrame(manifest_rows), pd.DataFrame(segment_rows)


def segment_embeddings(audio_angles: list[float], video_angles: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Both segments of video i get the vectors at audio_angles[i] and video_angles[i]."""
    audio = np.repeat(plane(audio_angles), SEGMENTS_PER_VIDEO, axis=0)
    video = np.repeat(plane(video_angles), SEGMENTS_PER_VIDEO, axis=0)
    return audio, video


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_nearest_neighbours_follow_the_angle_in_a_constructed_plane():
    vectors = plane(ANGLES)
    indices, similarities = nearest_neighbours(vectors, np.array([0, 4]), k=3)
    assert indices.tolist() == [[1, 2, 3], [3, 2, 1]]  # 0 deg: 10, 25, 45; 90 deg: 45, 25, 10
    np.testing.assert_allclose(similarities[0], np.cos(np.deg2rad([10, 25, 45])), atol=1e-6)


def test_a_seed_is_never_its_own_neighbour_and_its_group_is_excluded():
    vectors = plane([0.0, 0.0, 5.0, 30.0, 60.0])  # items 0 and 1 are identical
    groups = np.array(["a", "a", "b", "c", "d"])
    indices, _ = nearest_neighbours(vectors, np.array([0]), k=2, groups=groups)
    assert indices.tolist() == [[2, 3]]
    indices, _ = nearest_neighbours(vectors, np.array([0]), k=2)
    assert indices.tolist() == [[1, 2]]


def test_fewer_candidates_than_k_shows_all_candidates_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        indices, _ = nearest_neighbours(plane([0.0, 10.0, 20.0]), np.array([0]), k=5)
    assert indices.tolist() == [[1, 2]]
    assert "only 2 candidate" in caplog.text


def test_seeds_are_seeded_distinct_and_all_items_when_fewer():
    first, again = pick_seeds(100, 25, seed=3), pick_seeds(100, 25, seed=3)
    assert first.tolist() == again.tolist()
    assert len(set(first.tolist())) == 25
    assert pick_seeds(100, 25, seed=4).tolist() != first.tolist()
    assert pick_seeds(7, 25, seed=3).tolist() == list(range(7))
    with pytest.raises(ValueError, match="test split is empty"):
        pick_seeds(0, 25, seed=3)


def test_aggregated_vector_is_the_renormalised_mean_of_audio_and_video():
    audio, video = plane([0.0]), plane([90.0])
    np.testing.assert_allclose(mode_vectors(audio, video, "agg"), plane([45.0]), atol=1e-6)
    np.testing.assert_allclose(mode_vectors(audio * 3, video, "audio"), audio, atol=1e-6)
    with pytest.raises(ValueError, match="unknown neighbour mode"):
        mode_vectors(audio, video, "both")


def test_video_vectors_are_means_of_test_segments_skipping_missing_rows(corpus):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    audio[1] = np.nan  # v1's second segment has no features: v1's vector is its first segment's
    audio[2] = plane([90.0])[0]  # v2's segments at 10 and 90 deg: the mean points to 50 deg
    segments = segments.assign(split=np.where(segments["video_id"] == "v6", "train", "test"))
    items, item_audio, _ = video_items(manifest, segments, audio, video)
    assert items["video_id"].tolist() == ["v1", "v2", "v3", "v4", "v5"]
    np.testing.assert_allclose(item_audio[0], plane([0.0])[0], atol=1e-6)
    np.testing.assert_allclose(mode_vectors(item_audio, item_audio, "audio")[1], plane([50.0])[0], atol=1e-6)
    assert items["genre"].tolist() == GENRES[:5]


def test_video_neighbours_by_audio_and_by_video_follow_each_modality(corpus):
    manifest, segments = corpus
    reversed_angles = [180.0 - angle for angle in ANGLES]  # video space: the order is reversed
    audio, video = segment_embeddings(ANGLES, reversed_angles)
    by_audio, _ = neighbours_for("videos", "audio", manifest, segments, audio, video, seeds=25, k=3, seed=0)
    by_video, _ = neighbours_for("videos", "video", manifest, segments, audio, video, seeds=25, k=3, seed=0)
    first_audio = by_audio[by_audio["seed"] == 1]
    assert first_audio["video_id"].tolist() == ["v1", "v2", "v3", "v4"]
    assert first_audio["rank"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(first_audio["similarity"], np.cos(np.deg2rad([0, 10, 25, 45])), atol=1e-5)
    first_video = by_video[by_video["seed"] == 1]
    assert first_video["video_id"].tolist() == ["v1", "v2", "v3", "v4"]  # angles are mirrored, order kept
    sixth = by_video[by_video["seed"] == 6]
    assert sixth["video_id"].tolist() == ["v6", "v5", "v4", "v3"]  # v6 at 0 deg: 90, 135, 155
    assert by_audio["seed"].nunique() == len(ANGLES)  # fewer test videos than seeds: all are seeds


def test_too_few_test_videos_for_the_seeds_is_said_in_the_log(corpus, caplog):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    with caplog.at_level(logging.WARNING):
        neighbours_for("videos", "agg", manifest, segments, audio, video, seeds=25, k=3, seed=0)
    assert "fewer than the 25 seeds" in caplog.text


def test_segment_neighbours_come_from_other_videos(corpus):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)  # a video's two segments are identical
    table, _ = neighbours_for("segments", "agg", manifest, segments, audio, video, seeds=25, k=3, seed=1)
    assert table["seed"].nunique() == len(segments)
    for _, rows in table.groupby("seed"):
        assert (rows["video_id"].iloc[1:] != rows["video_id"].iloc[0]).all()
        assert rows["similarity"].iloc[1:].is_monotonic_decreasing
    # v1's first segment (0 deg): v2's two segments (10 deg, the lower index first), then v3's first (25 deg).
    rows = table[table["seed"] == 1]
    assert list(zip(rows["video_id"], rows["segment"], strict=True)) == [
        ("v1", 0),
        ("v2", 0),
        ("v2", 1),
        ("v3", 0),
    ]


def test_genre_agreement_and_its_chance_level(corpus):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    table, (agreement, chance) = neighbours_for(
        "videos", "audio", manifest, segments, audio, video, seeds=25, k=1, seed=0
    )
    # Nearest by angle: v1->v2 rock=rock, v2->v1 yes, v3->v2 pop/rock no, v4->v3 rock/pop no,
    # v5->v4 pop/rock no, v6->v5 (90 deg away, the nearest) pop=pop yes.
    assert table[table["rank"] == 1]["same_genre"].tolist() == [True, True, False, False, False, True]
    assert agreement == pytest.approx(0.5)
    # Chance per seed: share of the 5 other videos with its genre (rock: 2/5, pop: 2/5).
    assert chance == pytest.approx(0.4)
    no_genres = genre_agreement(table.assign(genre=""), manifest.assign(genre=""))
    assert all(math.isnan(value) for value in no_genres)


@pytest.mark.parametrize("level", ["videos", "segments"])
def test_contact_sheet_is_a_png_with_one_row_per_seed(corpus, tmp_path, level):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    table, _ = neighbours_for(level, "agg", manifest, segments, audio, video, seeds=3, k=2, seed=0)
    out = tmp_path / "sheet.png"
    plot_neighbour_sheet(table, segments, out, level=level, title="test sheet")
    with Image.open(out) as image:
        width, height = image.size
    assert out.stat().st_size > 20_000
    assert width > 600 and height > 3 * 100  # 3 columns, 3 rows of cells
    three_rows = height
    plot_neighbour_sheet(table[table["seed"] == 1], segments, out, level=level, title="test sheet")
    with Image.open(out) as image:
        assert image.size[1] < three_rows * 0.6


def test_page_sources_are_relative_and_segments_carry_their_window(corpus, tmp_path):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    tables = {
        (level, mode): neighbours_for(level, mode, manifest, segments, audio, video, seeds=3, k=2, seed=0)[0]
        for level in ("videos", "segments")
        for mode in ("agg", "audio")
    }
    page_dir = tmp_path / "results"
    page_dir.mkdir()
    page = render_page(tables, page_dir, "base")
    assert page.count('class="seed"') == 4 * 3
    first_segment = tables[("segments", "agg")].iloc[0]
    source = media_source(first_segment["path"], page_dir, first_segment["start_s"], first_segment["end_s"])
    assert source.startswith("../") and "#t=" in source
    assert f'src="{source}"' in page
    assert (page_dir / source.split("#")[0]).resolve() == Path(first_segment["path"]).resolve()
    assert f'src="{media_source(tables[("videos", "agg")].iloc[0]["path"], page_dir)}"' in page
    assert media_source("/media/My Videos/a b.mp4", "/media/results") == "../My%20Videos/a%20b.mp4"


def _poster_frames(page: str) -> dict[str, int]:
    """Poster id -> the test-pattern frame index its JPEG shows (checking it is POSTER_WIDTH wide)."""
    posters = json.loads(re.search(r'<script id="posters" type="application/json">(.*?)</script>', page)[1])
    frames = {}
    for key, uri in posters.items():
        image = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix("data:image/jpeg;base64,"))))
        assert image.format == "JPEG" and image.size == (POSTER_WIDTH, round(POSTER_WIDTH * 36 / 64))
        frames[key] = read_frame_index(np.asarray(image.convert("RGB")))
    return frames


def test_every_player_shows_the_middle_frame_of_its_window_as_its_poster(corpus, tmp_path):
    manifest, segments = corpus
    audio, video = segment_embeddings(ANGLES, ANGLES)
    tables = {
        (level, "agg"): neighbours_for(level, "agg", manifest, segments, audio, video, seeds=3, k=2, seed=0)
        for level in ("videos", "segments")
    }
    page = render_page({key: table for key, (table, _) in tables.items()}, tmp_path, "base")
    frames = _poster_frames(page)
    players = re.findall(r'<video [^>]*data-poster="(p\d+)" src="([^"]+)"', page)
    assert len(players) == page.count("<video ") == 2 * 3 * 3
    fps = 8  # write_tiny_corpus's videos: 4 s at 8 fps, frame k shows k
    for poster, source in players:
        window = re.search(r"#t=([\d.]+),([\d.]+)", source)
        start_s, end_s = map(float, window.groups()) if window else (0.0, 4.0)
        assert frames[poster] == int((start_s + end_s) / 2 * fps)
    assert len(frames) == len(set(players))  # each (video, window) embedded once


def test_the_judge_and_recommendation_pages_show_each_video_s_middle_frame(corpus, tmp_path):
    manifest, _ = corpus
    paths = manifest.set_index("video_id")["path"].to_dict()
    middle = int(2.0 * 8)  # 4 s videos at 8 fps
    triplets = pd.DataFrame({"seed": ["v1", "v2"], "candidate_a": ["v3", "v1"], "candidate_b": ["v4", "v5"]})
    page = render_judge_page(triplets, paths, tmp_path, "test")
    data = json.loads(re.search(r'<script id="triplets" type="application/json">(.*?)</script>', page)[1])
    frames = _poster_frames(page)
    assert len(frames) == 5 and set(frames.values()) == {middle}  # five videos, each embedded once
    slots = ("seed", "a", "b")
    assert all(triplet[f"{slot}_poster"] in frames for triplet in data["triplets"] for slot in slots)
    recommended = manifest.iloc[1:3].assign(
        new_video_id="v1", new_path=paths["v1"], new_artist="", new_title="", rank=[1, 2], cosine=[0.9, 0.8]
    )
    page = render_recommendations(recommended, tmp_path, "base")
    players = re.findall(r'<video [^>]*data-poster="(p\d+)"', page)
    assert len(players) == page.count("<video ") == 3
    assert set(_poster_frames(page).values()) == {middle} and set(players) == set(_poster_frames(page))


@pytest.mark.slow
def test_figure_rules_run_and_the_report_gathers_them(corpus, tmp_path):
    """The figure rules end to end on a tiny corpus with fake embeddings, then `snakemake --report`."""
    manifest, segments = corpus
    (tmp_path / "results/data").mkdir(parents=True)
    manifest.to_parquet(tmp_path / "results/data/manifest.parquet")
    segments.to_parquet(tmp_path / "results/data/segments.parquet")
    for name, video_angles in {"base": ANGLES[::-1], "tau03": ANGLES}.items():
        (tmp_path / "results/models" / name / "replicate_0").mkdir(parents=True)
        audio, video = segment_embeddings(ANGLES, video_angles)
        np.savez(tmp_path / "results/models" / name / "replicate_0/embeddings.npz", audio=audio, video=video)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["configurations"] = {"base": {}, "tau03": {"loss": {"temperature": 0.3}}}
    config["qualitative"] = {"configuration": "base", "seed_videos": 4, "seed_segments": 3, "k": 2}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'include: "{REPO}/rules/common.smk"\n'
        f'include: "{REPO}/rules/qualitative.smk"\n\n\n'
        "rule all:\n    input:\n        PLAN.figure_targets(),\n"
    )
    command = snakemake_command(tmp_path, tmp_path / "Snakefile")
    command += ["--cores", "2"]
    for extra in ([], ["--report", "results/report.html"]):
        result = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    results = tmp_path / "results"
    for mode in ("agg", "audio", "video"):
        assert (results / f"figures/neighbours_videos_{mode}.png").stat().st_size > 20_000
        assert (results / f"figures/neighbours_segments_{mode}.png").stat().st_size > 20_000
    by_video = pd.read_csv(results / "qualitative/neighbours_videos_video.csv")
    assert by_video["seed"].nunique() == 4
    diagnostics = pd.read_csv(results / "diagnostics.csv").set_index("configuration")
    assert diagnostics.loc["tau03", "alignment"] == pytest.approx(0.0, abs=1e-6)
    assert (
        diagnostics.loc["base", "positive_negative_auc"] < diagnostics.loc["tau03", "positive_negative_auc"]
    )
    assert "neighbours.html" in {path.name for path in results.iterdir()}
    report = (results / "report.html").read_text()
    assert "nearest test videos" in report and "modality gap" in report
