"""Decoders on generated videos with known content: a frame counter in the pixels, a tone whose pitch is time."""

from __future__ import annotations

import numpy as np
import pytest

from mvcl.data.decode import DecodeError, decode_audio, decode_frames, frame_times
from tests.patterns import read_frame_index, tone_frequency_at, write_test_pattern_video

FPS = 12


@pytest.fixture(scope="module")
def pattern_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("decode") / "pattern.mp4"
    write_test_pattern_video(path, duration_s=12, fps=FPS, size=(128, 96), sample_rate=22050)
    return path


@pytest.mark.parametrize(("start", "end", "count"), [(0.0, 5.0, 50), (3.3, 8.3, 50), (6.95, 9.95, 30), (2.0, 2.5, 1)])
def test_frames_are_the_ones_on_screen_at_equally_spaced_times(pattern_video, start, end, count):
    frames = decode_frames(pattern_video, start, end, count, (128, 96))
    assert frames.shape == (count, 96, 128, 3) and frames.dtype == np.uint8
    expected = np.floor(frame_times(start, end, count) * FPS + 1e-6).astype(int)
    assert [read_frame_index(frame) for frame in frames] == expected.tolist()


def test_frames_are_resized_by_the_decoder(pattern_video):
    frames = decode_frames(pattern_video, 1.0, 2.0, 4, (64, 48))
    assert frames.shape == (4, 48, 64, 3)


def test_a_window_past_the_end_is_an_error_naming_the_file(pattern_video):
    with pytest.raises(DecodeError, match="pattern.mp4"):
        decode_frames(pattern_video, 10.0, 15.0, 50, (128, 96))
    with pytest.raises(DecodeError, match="pattern.mp4"):
        decode_audio(pattern_video, 10.0, 15.0)


@pytest.mark.parametrize("start", [0.5, 4.25, 8.0])
def test_audio_window_is_resampled_to_16k_and_starts_on_time(pattern_video, start):
    waveform = decode_audio(pattern_video, start, start + 3.0, 16000)
    assert waveform.shape == (48000,) and waveform.dtype == np.float32
    # The tone's pitch encodes time: the dominant frequency of each 0.25 s piece tells where it lies.
    for offset in (0.0, 1.0, 2.75):
        piece = waveform[int(offset * 16000) : int((offset + 0.25) * 16000)]
        spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size), n=16000 * 4))
        measured = np.argmax(spectrum) / 4
        assert measured == pytest.approx(tone_frequency_at(start + offset + 0.125), abs=8.0)


def test_audio_of_a_video_without_audio_is_an_error(tmp_path):
    path = tmp_path / "silent.mp4"
    write_test_pattern_video(path, duration_s=3, fps=FPS, size=(64, 48), audio=False)
    with pytest.raises(DecodeError, match="no audio track"):
        decode_audio(path, 0.0, 1.0)
