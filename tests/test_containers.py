"""Ingest and decode on files in every container/codec pair PyAV's bundled encoders write, and on broken copies.

A good file is never lost: each pair must be accepted and every segment window, up to the file's very end,
must decode to finite frames and audio. A broken copy is either rejected with a reason in words or taken
for what it really holds (a stream without an index cut short is a shorter file), never at its old length.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from mvcl.data.decode import decode_audio, decode_frames
from mvcl.data.ingest import probe_video
from mvcl.data.segments import sample_windows
from tests.containers import PAIRS, corrupted_copy, truncated_copy, write_media

DURATION_S = 12.0
SEGMENTS = 3


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("containers")
    return {
        pair.name: write_media(folder / f"{pair.name}{pair.suffix}", pair, duration_s=DURATION_S)
        for pair in PAIRS
    }


@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: pair.name)
def test_every_container_and_codec_is_accepted_with_its_real_duration(media, pair):
    probe = probe_video(media[pair.name], min_duration_s=DURATION_S - 1)
    assert probe.reason == ""
    assert probe.duration_s == pytest.approx(DURATION_S, abs=0.3)
    assert (probe.width, probe.height) == (64, 48)
    assert probe.fps == pytest.approx(pair.fps)
    assert probe.audio_sample_rate == pair.sample_rate


@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: pair.name)
def test_every_segment_window_up_to_the_end_decodes_to_finite_frames_and_audio(media, pair):
    path = media[pair.name]
    duration = probe_video(path, min_duration_s=1).duration_s
    # Segments that tile the whole file: the last one ends exactly at the duration ingest reports.
    windows = sample_windows(duration, SEGMENTS, duration / SEGMENTS, 1.0, np.random.default_rng(0))
    for start, end, clip_start, clip_end in windows:
        frames = decode_frames(path, clip_start, clip_end, 4, (32, 24))
        assert frames.shape == (4, 24, 32, 3)
        # The red channel counts frames (7 per frame): pictures from a window differ, as the source's do.
        assert len({int(frame[..., 0].mean()) for frame in frames}) > 1
        audio = decode_audio(path, start, end, 16000)
        assert audio.shape == (round((end - start) * 16000),)
        assert np.isfinite(audio).all()
        assert 0.15 < np.sqrt(np.mean(audio**2)) < 0.45  # the tone throughout (0.3 per channel), no gap


@pytest.mark.parametrize("variant", ["truncated", "corrupted"])
@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: pair.name)
def test_a_broken_copy_is_rejected_or_taken_for_what_it_holds(media, pair, variant, tmp_path):
    source = media[pair.name]
    broken = tmp_path / source.name
    if variant == "truncated":
        truncated_copy(source, broken, 0.5)
    else:
        corrupted_copy(source, broken)
    probe = probe_video(broken, min_duration_s=SEGMENTS)
    if probe.reason:
        assert probe.reason.startswith(
            (
                "truncated: video ends at",
                "truncated: audio ends at",
                "cannot be decoded: a damaged or truncated",
                "corrupt: ",
            )
        ), probe.reason
        return
    # Accepted: only formats without an index (MPEG-PS, AVI whose index was lost), for what remains.
    assert pair.container in {"mpeg", "avi"}
    assert probe.duration_s < 0.6 * DURATION_S
    assert probe_video(broken, min_duration_s=0.7 * DURATION_S).reason.startswith("too short: ")
    start = probe.duration_s - 2.0
    assert np.isfinite(decode_audio(broken, start, probe.duration_s)).all()
    assert decode_frames(broken, start, probe.duration_s, 4, (32, 24)).shape == (4, 24, 32, 3)


def test_a_truncated_matroska_file_says_where_its_video_ends(media, tmp_path):
    broken = truncated_copy(media["mkv-mpeg4-opus"], tmp_path / "cut.mkv", 0.5)
    reason = probe_video(broken, min_duration_s=SEGMENTS).reason
    assert reason.startswith("truncated: video ends at ")
    ends = float(reason.removeprefix("truncated: video ends at ").split(" s ")[0])
    assert ends == pytest.approx(DURATION_S / 2, abs=1.5)
    assert reason.endswith(f"of the {DURATION_S:.1f} s it declares")


def test_reasons_in_words_for_files_that_are_not_videos(tmp_path, media):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 40)
    assert probe_video(tmp_path / "empty.mp4", 6).reason == "empty file (0 bytes)"
    assert "not a media file" in probe_video(tmp_path / "notes.mp4", 6).reason
    assert probe_video(tmp_path / "gone.mkv", 6).reason == f"file not found: {tmp_path / 'gone.mkv'}"
    assert probe_video("", 6).reason == "empty path in metadata CSV"
    assert re.fullmatch(
        r"too short: 12\.0\d s, but the segments need 20\.00 s \(segments\.count x segments\.seconds\)",
        probe_video(media["webm-vp9-opus"], 20).reason,
    )
