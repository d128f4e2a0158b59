"""Small media files in every container/codec pair PyAV's bundled encoders can write, and broken variants.

Each file has a picture whose colour changes every frame and a 440 Hz tone, so decoded windows can be
checked to hold real, finite data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Pair:
    """One container with one video and one audio codec, as FFmpeg names them."""

    name: str
    container: str
    suffix: str
    video_codec: str
    audio_codec: str
    pix_fmt: str = "yuv420p"
    fps: int = 8
    sample_rate: int = 44100
    options: tuple[tuple[str, str], ...] = ()


# MPEG-1 video only allows the standard frame rates (24, 25, 30, ...); Opus only 48 kHz; FFmpeg's own
# Vorbis encoder is marked experimental.
PAIRS = (
    Pair("mp4-h264-aac", "mp4", ".mp4", "libx264", "aac"),
    Pair("mov-h264-aac", "mov", ".mov", "libx264", "aac"),
    Pair("mpegps-mpeg1-mp2", "mpeg", ".mpg", "mpeg1video", "mp2", fps=25),
    Pair("mpegps-mpeg1-mp3", "mpeg", ".mpg", "mpeg1video", "libmp3lame", fps=25),
    Pair("mkv-mpeg4-vorbis", "matroska", ".mkv", "mpeg4", "vorbis", options=(("strict", "experimental"),)),
    Pair("mkv-mpeg4-opus", "matroska", ".mkv", "mpeg4", "libopus", sample_rate=48000),
    Pair("avi-mjpeg-pcm", "avi", ".avi", "mjpeg", "pcm_s16le", pix_fmt="yuvj420p"),
    Pair("webm-vp8-opus", "webm", ".webm", "libvpx", "libopus", sample_rate=48000),
    Pair("webm-vp9-opus", "webm", ".webm", "libvpx-vp9", "libopus", sample_rate=48000),
)


def write_media(path: Path, pair: Pair, *, duration_s: float, size: tuple[int, int] = (64, 48)) -> Path:
    """Write `duration_s` seconds of picture and tone in `pair`'s container and codecs; returns `path`."""
    width, height = size
    with av.open(str(path), "w", format=pair.container) as out:
        video = out.add_stream(pair.video_codec, rate=pair.fps)
        video.width, video.height, video.pix_fmt = width, height, pair.pix_fmt
        video.codec_context.gop_size = pair.fps  # a keyframe a second, as real files have
        audio = out.add_stream(pair.audio_codec, rate=pair.sample_rate)
        audio.layout = "stereo"
        if pair.options:
            audio.codec_context.options = dict(pair.options)
        audio.codec_context.open()
        frame_size = audio.codec_context.frame_size or 1024
        resampler = av.AudioResampler(
            format=audio.codec_context.format.name, layout="stereo", rate=pair.sample_rate
        )
        n_frames, n_samples = round(duration_s * pair.fps), round(duration_s * pair.sample_rate)
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n_samples) / pair.sample_rate)
        shown, heard = 0, 0
        # Interleave by time, as a muxer expects: audio up to the next picture, then the picture.
        while shown < n_frames or heard < n_samples:
            if shown < n_frames and (heard >= n_samples or shown / pair.fps <= heard / pair.sample_rate):
                picture = np.zeros((height, width, 3), np.uint8)
                picture[..., 0] = (shown * 7) % 256
                picture[: shown % height + 1, :, 1] = 200
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts = shown
                out.mux(video.encode(frame))
                shown += 1
            else:
                chunk = tone[heard : heard + frame_size].astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = pair.sample_rate, heard
                for converted in resampler.resample(frame):
                    out.mux(audio.encode(converted))
                heard += chunk.size
        out.mux(video.encode(None))
        for converted in resampler.resample(None):
            out.mux(audio.encode(converted))
        out.mux(audio.encode(None))
    return path


def truncated_copy(source: Path, target: Path, fraction: float) -> Path:
    """The first `fraction` of `source`'s bytes, as a download cut short leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def corrupted_copy(source: Path, target: Path, seed: int = 0) -> Path:
    """`source` with its second half overwritten by random bytes (header intact, payload garbage)."""
    data = bytearray(source.read_bytes())
    half = len(data) // 2
    data[half:] = np.random.default_rng(seed).integers(0, 256, len(data) - half, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target
