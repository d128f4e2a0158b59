"""A test-pattern video: frame k shows k as a block code, the audio is a chirp of known frequency, so
decoders can be checked frame- and sample-exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mvcl.demo.synthetic import write_mp4

_CODE_ROWS, _CODE_COLUMNS = 2, 8
_TONE_START_HZ, _TONE_SLOPE_HZ_PER_S = 200.0, 100.0


def tone_frequency_at(t: float | np.ndarray) -> float | np.ndarray:
    """Frequency (Hz) of the test pattern's tone at time `t` (s): 200 Hz rising by 100 Hz per second."""
    return _TONE_START_HZ + _TONE_SLOPE_HZ_PER_S * t


def write_test_pattern_video(
    path: Path,
    *,
    duration_s: float,
    fps: int,
    size: tuple[int, int],
    sample_rate: int = 22050,
    audio: bool = True,
    tone: bool = True,
) -> None:
    """An MP4 whose frame k shows k as a block code (`read_frame_index`) over a mid-grey lower half.

    Its audio is a chirp whose frequency at time t is `tone_frequency_at(t)` (silence when `tone` is False);
    with `audio=False` the file has no audio stream at all.
    """
    width, height = size
    n_frames = round(duration_s * fps)
    if n_frames > 2 ** (_CODE_ROWS * _CODE_COLUMNS):
        raise ValueError(f"{path}: {n_frames} frames exceed the {_CODE_ROWS * _CODE_COLUMNS}-bit frame code")
    if tone_frequency_at(duration_s) >= sample_rate / 2:
        raise ValueError(f"{path}: the tone would pass Nyquist ({sample_rate / 2} Hz) before {duration_s} s")
    rows = np.arange(height) * 2 * _CODE_ROWS // height  # code rows fill the top half, grey below
    cols = np.arange(width) * _CODE_COLUMNS // width
    bit_of_pixel = np.where(rows[:, None] < _CODE_ROWS, rows[:, None] * _CODE_COLUMNS + cols[None, :], -1)

    def frames() -> Iterator[np.ndarray]:
        for k in range(n_frames):
            bits = (k >> np.arange(_CODE_ROWS * _CODE_COLUMNS)) & 1
            grey = np.where(bit_of_pixel >= 0, 255 * bits[np.maximum(bit_of_pixel, 0)], 128).astype(np.uint8)
            yield np.repeat(grey[..., None], 3, axis=2)

    samples = None
    if audio:
        t = np.arange(round(duration_s * sample_rate)) / sample_rate
        chirp = 0.5 * np.sin(2 * np.pi * (_TONE_START_HZ * t + 0.5 * _TONE_SLOPE_HZ_PER_S * t**2))
        samples = (chirp if tone else np.zeros_like(t)).astype(np.float32)
    write_mp4(Path(path), frames(), samples, fps=fps, size=size, sample_rate=sample_rate, crf=10)


def read_frame_index(frame_rgb: np.ndarray) -> int:
    """Decode the frame index that `write_test_pattern_video` burned into a frame (any size, RGB or grey)."""
    grey = frame_rgb.mean(axis=2) if frame_rgb.ndim == 3 else frame_rgb
    height, width = grey.shape
    index = 0
    for row in range(_CODE_ROWS):
        top, bottom = (4 * row + 1) * height // (8 * _CODE_ROWS), (4 * row + 3) * height // (8 * _CODE_ROWS)
        for col in range(_CODE_COLUMNS):
            left, right = (
                (4 * col + 1) * width // (4 * _CODE_COLUMNS),
                (4 * col + 3) * width // (4 * _CODE_COLUMNS),
            )
            if grey[top:bottom, left:right].mean() > 127:
                index |= 1 << (row * _CODE_COLUMNS + col)
    return index
