"""Streaming decoders for one window of a music video (PyAV).

Both decoders seek to the keyframe before the window and decode forward only as far as the window's end, so
memory holds one window, never a whole video. Frames are resized by FFmpeg's scaler while being converted
(`VideoFrame.to_ndarray(width=, height=)`), not afterwards in numpy.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# A frame counts as shown at time t when its timestamp is <= t (+ this slack for float rounding).
_TIME_EPS = 1e-6


class DecodeError(RuntimeError):
    """A window could not be decoded; the message names the file and the window."""


def frame_times(start_s: float, end_s: float, n_frames: int) -> np.ndarray:
    """`n_frames` equally spaced sampling times over [start_s, end_s): start, start + d, ..., end - d."""
    return start_s + (end_s - start_s) * np.arange(n_frames) / n_frames


def decode_frames(
    path: str | Path,
    start_s: float,
    end_s: float,
    n_frames: int,
    size: tuple[int, int],
) -> np.ndarray:
    """`n_frames` RGB frames at equal spacing over [start_s, end_s), resized to `size` = (width, height).

    Frame i is the picture on screen at `frame_times(...)[i]`: the last decoded frame whose presentation
    time is not after it. Returns uint8 [n_frames, height, width, 3].
    """
    targets = frame_times(start_s, end_s, n_frames)
    width, height = size
    out = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    filled = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            container.seek(_to_pts(start_s, stream), stream=stream, backward=True, any_frame=False)
            shown = None  # the frame on screen at the current target time
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                # Every target before this frame's time shows the previous frame.
                while filled < n_frames and frame.time > targets[filled] + _TIME_EPS:
                    if shown is None:
                        raise DecodeError(f"{path}: no frame at or before {targets[filled]:.3f} s")
                    out[filled] = shown
                    filled += 1
                if filled == n_frames:
                    break
                shown = frame.to_ndarray(width=width, height=height, format="rgb24")
            # Targets after the last decoded frame still show it, if it is within one frame interval.
            while filled < n_frames and shown is not None and _within_stream(targets[filled], stream):
                out[filled] = shown
                filled += 1
    except av.FFmpegError as error:
        raise DecodeError(f"{path}: cannot decode frames {start_s:.2f}-{end_s:.2f} s: {error}") from error
    if filled < n_frames:
        raise DecodeError(
            f"{path}: window {start_s:.2f}-{end_s:.2f} s yielded {filled} of {n_frames} frames "
            "(truncated file or window past the end)"
        )
    return out


def decode_audio(path: str | Path, start_s: float, end_s: float, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 waveform of [start_s, end_s) resampled to `sample_rate`: exactly round(len * rate) samples."""
    n_samples = round((end_s - start_s) * sample_rate)
    chunks: list[np.ndarray] = []
    first_time = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DecodeError(f"{path}: no audio track")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            # Seek a little early: AAC frames overlap, and the resampler needs some history.
            container.seek(_to_pts(max(start_s - 0.1, 0.0), stream), stream=stream, backward=True)
            decoded = 0
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if first_time is None:
                    first_time = frame.time
                for resampled in resampler.resample(frame):
                    chunk = resampled.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    decoded += chunk.size
                if first_time + decoded / sample_rate >= end_s + 0.05:
                    break
            for resampled in resampler.resample(None):
                chunks.append(resampled.to_ndarray().reshape(-1))
    except av.FFmpegError as error:
        raise DecodeError(f"{path}: cannot decode audio {start_s:.2f}-{end_s:.2f} s: {error}") from error
    if first_time is None:
        raise DecodeError(f"{path}: no audio in window {start_s:.2f}-{end_s:.2f} s")
    waveform = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    offset = round((start_s - first_time) * sample_rate)
    if offset < 0:
        # The stream starts after the window does (e.g. audio begins late): pad the gap with silence.
        waveform = np.concatenate([np.zeros(-offset, dtype=np.float32), waveform])
        offset = 0
    window = waveform[offset : offset + n_samples]
    if window.size < n_samples:
        raise DecodeError(
            f"{path}: audio window {start_s:.2f}-{end_s:.2f} s has {window.size / sample_rate:.2f} s "
            "of audio (truncated file or window past the end)"
        )
    return np.ascontiguousarray(window, dtype=np.float32)


def _to_pts(seconds: float, stream: av.stream.Stream) -> int:
    return int(seconds / stream.time_base)


def _within_stream(t: float, stream: av.video.stream.VideoStream) -> bool:
    """True when `t` lies before the end of the video stream (last frame time + one frame duration)."""
    if stream.duration is None or stream.time_base is None:
        return False
    end = float((stream.start_time or 0) * stream.time_base + stream.duration * stream.time_base)
    return t < end + _TIME_EPS
