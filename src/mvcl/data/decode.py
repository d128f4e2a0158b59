"""Streaming decoders for one window of a music video (PyAV).

Both decoders seek to the keyframe before the window and decode forward only as far as the window's end, so
memory holds one window, never a whole video. Frames are resized by FFmpeg's scaler while being converted
(`VideoFrame.to_ndarray(width=, height=)`), not afterwards in numpy.

Window times are seconds from the start of the file (the container's first timestamp, 0 in MP4 but about
0.5 s in MPEG-PS). Right after a seek some decoders reject packets until the next point they can start
from (MPEG audio and video in MPEG-PS, for one): `decoded_frames` skips those instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import av
import numpy as np

# A frame counts as shown at time t when its timestamp is <= t (+ this slack for float rounding).
_TIME_EPS = 1e-6
# Consecutive packets a decoder may reject (after a seek, or at a damaged spot) before decoding counts as failed.
MAX_REJECTED_PACKETS = 100
# How far before a window `_frames_from` seeks again when the demuxer's seek landed after the window's start.
_SEEK_BACK_S = (1.0, 5.0, 30.0)


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
            origin = file_origin(container)
            clock = targets + origin  # the stream's own clock
            shown = None  # the frame on screen at the current target time
            for frame in _frames_from(container, stream, clock[0], origin):
                # Every target before this frame's time shows the previous frame; targets before the very
                # first frame (a stream starting a little after the file does) show that first frame.
                while filled < n_frames and frame.time > clock[filled] + _TIME_EPS:
                    if shown is None:
                        if frame.time > _stream_start(stream, origin) + _TIME_EPS:
                            raise DecodeError(f"{path}: no frame at or before {targets[filled]:.3f} s")
                        shown = frame.to_ndarray(width=width, height=height, format="rgb24")
                    out[filled] = shown
                    filled += 1
                if filled == n_frames:
                    break
                shown = frame.to_ndarray(width=width, height=height, format="rgb24")
            # Targets after the last decoded frame still show it, if it is within one frame interval.
            while (
                filled < n_frames and shown is not None and _within_stream(clock[filled], container, stream)
            ):
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
            origin = file_origin(container)
            decoded = 0
            # Start a little early: AAC frames overlap, and the resampler needs some history.
            for frame in _frames_from(container, stream, max(start_s - 0.1, 0.0) + origin, origin):
                if first_time is None:
                    first_time = frame.time - origin
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


def file_origin(container: av.container.InputContainer) -> float:
    """The container's first timestamp in seconds: where a file's time 0 lies on its streams' clocks."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def decoded_frames(
    container: av.container.InputContainer, stream: av.stream.Stream, at: float | None = None
) -> Iterator[av.frame.Frame]:
    """Frames of `stream` from the keyframe at or before `at` (seconds on the stream's clock; None: from
    where the container stands), skipping packets the decoder rejects while it resynchronises.

    Raises DecodeError after MAX_REJECTED_PACKETS rejected packets in a row: then the data is really damaged.
    """
    if at is not None:
        container.seek(max(int(at / stream.time_base), 0), stream=stream, backward=True, any_frame=False)
    rejected, last_error = 0, None
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except (av.InvalidDataError, av.error.UndefinedError) as error:
            rejected, last_error = rejected + 1, error
            if rejected > MAX_REJECTED_PACKETS:
                raise DecodeError(
                    f"{container.name}: {rejected} {stream.type} packets in a row fail to decode near "
                    f"{float(packet.pts * stream.time_base) if packet.pts is not None else float('nan'):.2f} s "
                    f"({last_error})"
                ) from error
            continue
        rejected = 0
        for frame in frames:
            if frame.time is not None:
                yield frame


def _frames_from(
    container: av.container.InputContainer, stream: av.stream.Stream, t: float, origin: float
) -> Iterator[av.frame.Frame]:
    """Decoded frames starting at or before `t` (stream clock). Some demuxers (MPEG-PS) land after the
    requested time when seeking; then this seeks again from further back, and last from the file's start."""
    for back in (0.0, *_SEEK_BACK_S, None):
        at = origin if back is None else max(t - back, origin)
        frames = decoded_frames(container, stream, at)
        first = next(frames, None)
        if first is None:
            return iter(())
        if first.time <= t + _TIME_EPS or at <= origin:
            return chain([first], frames)
    raise AssertionError("unreachable: the last try seeks to the file's start")


def _stream_start(stream: av.stream.Stream, origin: float) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else origin


def _within_stream(t: float, container: av.container.InputContainer, stream: av.stream.Stream) -> bool:
    """True when `t` (stream clock) lies before the end of the video stream (last frame + one frame)."""
    origin = file_origin(container)
    if stream.duration is not None and stream.time_base is not None:
        end = _stream_start(stream, origin) + float(stream.duration * stream.time_base)
    elif container.duration is not None:
        end = origin + container.duration / av.time_base
    else:
        return False
    return t < end + _TIME_EPS
