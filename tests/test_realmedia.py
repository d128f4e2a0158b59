"""The workflow on real media: footage and music from Debian packages (tests/realmedia/fetch.sh), muxed into a
small collection of music videos in several containers and codecs, run with demo.enabled: false through
Table 1 and Table 2. Every valid video with sound that is long enough must be accepted; the others rejected
with their reason. CI fetches the media first (.ci/run) and never skips this test."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import av
import pandas as pd
import pytest
import yaml

from mvcl.data.ingest import assign_splits
from tests.helpers import run_snakemake, write_config

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("MVCL_REALMEDIA_CACHE", Path.home() / ".cache/mvcl/realmedia")) / "media"
SECONDS = 24.0  # each muxed video: the footage looped, the music cut

# video_id: (footage, music, container, suffix, genre). Genre follows the music's source package.
MUXED = {
    "traffic_game": ("test_video.mp4", "its_a_game.mkv", "matroska", ".mkv", "ringtone"),  # H.264 + Opus
    "traffic_strike": ("test_video.mp4", "time_to_strike.mp3", "mov", ".mov", "score"),  # H.264 + MP3
    "street_frontiers": ("test.avi", "frontiers.mp3", "avi", ".avi", "score"),  # MS-MPEG4v2 + MP3
    "street_strike": ("test.avi", "time_to_strike.mp3", "avi", ".avi", "score"),  # MS-MPEG4v2 + MP3
    "city_strike": ("cityCC0.mpg", "time_to_strike.mp3", "mpeg", ".mpg", "score"),  # MPEG-2 + MP3 in MPEG-PS
    "city_house": ("cityCC0.mpg", "house_keeping.mkv", "matroska", ".mkv", "ringtone"),  # MPEG-2 + Opus
    "run_snow": ("run.mp4", "soft_as_snow.mkv", "mp4", ".mp4", "ringtone"),  # H.264 + Opus in MP4
    "run_frontiers": ("run.mp4", "frontiers.mp3", "mp4", ".mp4", "score"),  # H.264 + MP3 in MP4
    "sintel_song": ("sintel_trailer-720p.mp4", "dont_wait_too_long.mkv", "matroska", ".mkv", "ringtone"),
}
# Files used as they are: (source, genre, the reason it must be rejected, or "" when it must be accepted).
AS_IS = {
    "sintel": ("sintel_trailer-720p.mp4", "score", ""),  # H.264 + AAC, 52 s: a real video with sound
    "traffic_silent": ("test_video.mp4", "", "no audio track"),
    "run_silent": ("run.mp4", "", "no audio track"),
    "song_only": ("dont_wait_too_long.mkv", "", "no video stream"),
}


def _looped_packets(path: Path, kind: str, seconds: float):
    """Packets of `path`'s first `kind` stream, the file repeated until `seconds`, timestamps shifted per loop."""
    offset = 0  # in the stream's time base
    while True:
        with av.open(str(path)) as source:
            stream = getattr(source.streams, kind)[0]
            end = offset
            for packet in source.demux(stream):
                if packet.dts is None:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                if float((pts + offset) * stream.time_base) >= seconds:
                    return
                end = max(end, pts + offset + (packet.duration or 0))
                packet.pts, packet.dts = pts + offset, packet.dts + offset
                yield packet
            if end == offset:
                return
            offset = end


def mux_copy(footage: Path, music: Path, target: Path, container: str, seconds: float) -> Path:
    """`target`: `footage`'s picture looped and `music`'s sound, both stream-copied (real codecs), `seconds` long."""
    with av.open(str(target), "w", format=container) as out:
        outputs = {}
        for kind, source in (("video", footage), ("audio", music)):
            with av.open(str(source)) as opened:
                outputs[kind] = out.add_stream_from_template(getattr(opened.streams, kind)[0])
        for kind, source in (("video", footage), ("audio", music)):
            for packet in _looped_packets(source, kind, seconds):
                packet.stream = outputs[kind]
                out.mux(packet)
    return target


@pytest.fixture(scope="module")
def real_media():
    if not (CACHE / ".complete").is_file():
        message = f"real media not in {CACHE}: run tests/realmedia/fetch.sh (needs apt-get and the network)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; .ci/run fetches it before the tests")
        pytest.skip(message)
    return CACHE


def build_collection(media: Path, folder: Path) -> pd.DataFrame:
    videos = folder / "videos"
    videos.mkdir(parents=True)
    rows = []
    for video_id, (footage, music, container, suffix, genre) in MUXED.items():
        mux_copy(media / footage, media / music, videos / f"{video_id}{suffix}", container, SECONDS)
        rows.append({"video_id": video_id, "path": f"videos/{video_id}{suffix}", "genre": genre})
    for video_id, (source, genre, _) in AS_IS.items():
        shutil.copy(media / source, videos / f"{video_id}{Path(source).suffix}")
        rows.append({"video_id": video_id, "path": f"videos/{video_id}{Path(source).suffix}", "genre": genre})
    cut = videos / "sintel_cut.mp4"
    cut.write_bytes((media / AS_IS["sintel"][0]).read_bytes()[:2_000_000])  # a download cut short
    rows.append({"video_id": "sintel_cut", "path": "videos/sintel_cut.mp4", "genre": "score"})
    metadata = pd.DataFrame(rows)
    metadata.to_csv(folder / "videos.csv", index=False)
    return metadata


CONFIGURATIONS = ("base", "clip_style")
SPLIT = {"train": 0.5, "val": 0.2, "test": 0.3, "group_by": "video_id"}  # the collection has no msd_id column


def test_the_workflow_runs_on_real_music_videos_through_both_tables(real_media, tmp_path):
    started = time.monotonic()
    metadata = build_collection(real_media, tmp_path)
    usable = sorted([*MUXED, *(video for video, (_, _, reason) in AS_IS.items() if not reason)])
    splits = assign_splits(metadata.set_index("video_id").loc[usable].reset_index(), SPLIT)["split"]
    assert set(splits) == {"train", "val", "test"}  # the hash split of these ids fills every split
    write_config(
        tmp_path,
        {
            "demo": {"enabled": False},
            "dataset": {
                "videos_dir": "videos",
                "metadata_csv": "videos.csv",
                "msd_tags": None,
                "split": SPLIT,
            },
            "segments": {"count": 3, "seconds": 3, "clip_seconds": 3, "size": [64, 48]},
            "features": {"shard_videos": 5, "threads": 1},
            "video_encoder": {
                "weights": "none",
                "clip_frames": 4,
                "crop": 32,
                "train_views": 1,
                "batch_size": 8,
            },
            "audio_encoder": {"batch_size": 16},
            "device": "cpu",
        },
    )
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())  # two rows of Table 1 keep it quick
    config["configurations"] = {name: config["configurations"][name] for name in CONFIGURATIONS}
    config.pop("ablation", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(tmp_path, "results/table1.csv", "results/table2.csv", timeout=900)
    manifest = pd.read_parquet(tmp_path / "results/data/manifest.parquet")
    rejected = pd.read_csv(tmp_path / "results/data/rejected.csv").set_index("video_id")["reason"]
    assert sorted(manifest["video_id"]) == usable
    # Each ends where its earlier stream does: the music is cut at SECONDS, a last frame may reach past it.
    assert (
        manifest.set_index("video_id")
        .loc[list(MUXED), "duration_s"]
        .between(SECONDS - 1, SECONDS + 0.1)
        .all()
    )
    assert manifest.set_index("video_id").loc["sintel", "duration_s"] == pytest.approx(51.9, abs=0.5)
    expected = {video: reason for video, (_, _, reason) in AS_IS.items() if reason}
    assert rejected.drop("sintel_cut").to_dict() == expected
    assert rejected["sintel_cut"].startswith("cannot be decoded: a damaged or truncated MP4/MOV file")
    table1 = pd.read_csv(tmp_path / "results/table1.csv")
    table2 = pd.read_csv(tmp_path / "results/table2.csv")
    assert len(table1) > 1 and len(table2) > 1
    assert set(CONFIGURATIONS) <= set(table1.astype(str).stack())
    print(
        f"real-media run: {len(manifest)} videos accepted, {len(rejected)} rejected, "
        f"{time.monotonic() - started:.0f} s"
    )
