from __future__ import annotations

import shutil

import pandas as pd
import pytest

from mvcl.data.ingest import MetadataError, assign_split, ingest, probe_video, read_metadata
from tests.patterns import write_test_pattern_video


@pytest.fixture(scope="module")
def good_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("ingest") / "good.mp4"
    write_test_pattern_video(path, duration_s=8, fps=8, size=(64, 48))
    return path


def test_a_good_video_is_probed(good_video):
    probe = probe_video(good_video, min_duration_s=6)
    assert probe.reason == ""
    assert probe.duration_s == pytest.approx(8, abs=0.1)
    assert (probe.width, probe.height) == (64, 48)
    assert probe.fps == pytest.approx(8)


def test_each_kind_of_bad_video_gets_its_own_reason(good_video, tmp_path):
    silent = tmp_path / "silent.mp4"
    write_test_pattern_video(silent, duration_s=8, fps=8, size=(64, 48), audio=False)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00garbage" * 500)
    truncated = tmp_path / "truncated.mp4"
    shutil.copy(good_video, truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size * 2 // 3])
    assert probe_video(silent, 6).reason == "no audio track"
    assert probe_video(good_video, 9).reason.startswith("too short: 8.0")
    assert probe_video(tmp_path / "nope.mp4", 6).reason.startswith("file not found")
    assert probe_video(garbage, 6).reason.startswith("cannot be decoded")
    assert probe_video(truncated, 6).reason != ""


def test_metadata_paths_are_relative_to_the_csv(tmp_path, good_video):
    (tmp_path / "clips").mkdir()
    shutil.copy(good_video, tmp_path / "clips" / "a.mp4")
    (tmp_path / "meta.csv").write_text("video_id,path,genre\na,clips/a.mp4,rock\nb,/abs/b.mp4,\n")
    table = read_metadata(tmp_path / "meta.csv")
    assert table.loc[0, "path"] == str((tmp_path / "clips" / "a.mp4").resolve())
    assert table.loc[1, "path"] == "/abs/b.mp4"
    assert list(table.columns) == ["video_id", "path", "genre", "msd_id", "artist", "title"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,path\na,x.mp4\n", "missing required column\\(s\\) video_id"),
        ("video_id,path\na,x.mp4\na,y.mp4\n", "repeated: a"),
        ("video_id,path\n,x.mp4\n", "empty video_id on line\\(s\\) 2"),
    ],
)
def test_a_malformed_csv_is_refused_naming_the_file_and_the_problem(tmp_path, text, message):
    (tmp_path / "meta.csv").write_text(text)
    with pytest.raises(MetadataError, match=f"meta.csv: .*{message}"):
        read_metadata(tmp_path / "meta.csv")


def test_ingest_keeps_good_and_rejects_bad_without_stopping(tmp_path, good_video):
    metadata = pd.DataFrame(
        {"video_id": ["good", "gone"], "path": [str(good_video), str(tmp_path / "gone.mp4")],
         "genre": ["rock", ""], "msd_id": ["", ""], "artist": ["", ""], "title": ["", ""]}
    )
    manifest, rejected = ingest(metadata, min_duration_s=6, split_fractions={"train": 0.8, "val": 0.1, "test": 0.1})
    assert manifest["video_id"].tolist() == ["good"]
    assert manifest.loc[0, "split"] in {"train", "val", "test"}
    assert rejected.to_dict("records") == [
        {"video_id": "gone", "file": str(tmp_path / "gone.mp4"), "reason": f"file not found: {tmp_path / 'gone.mp4'}"}
    ]


def test_split_is_stable_and_close_to_the_fractions():
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    splits = pd.Series([assign_split(f"video{i}", fractions) for i in range(5000)])
    shares = splits.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.8, abs=0.02)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)
    # The split of a video depends on its id alone.
    assert [assign_split(f"video{i}", fractions) for i in range(50)] == splits[:50].tolist()
