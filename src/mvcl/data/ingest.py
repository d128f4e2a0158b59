"""Ingestion: read the metadata CSV, probe every video, split by a stable hash, reject what cannot be used.

A video's split is the hash of its group's key (`split_groups`): its value in the column
dataset.split.group_by (msd_id by default, so versions of one song never straddle train and test), or its
video_id where that value is missing (empty, or a placeholder of dataset.missing_values such as "NA", which
would otherwise put every such video into one group and one split). A group_by column the CSV lacks is an
error, not a silent split by video_id: `group_by: video_id` asks for that. A video never moves when others are
added, and row order plays no part.

One bad video never stops a run: it lands in the rejected table with a specific reason. Problems with the CSV
itself (missing columns, duplicate ids) do stop it, since nothing downstream could be trusted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import pandas as pd

from mvcl.data.decode import DecodeError, decoded_frames, file_origin
from mvcl.data.metadata import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SPLITS,
    MetadataError,
    fractions_of,
    group_column,
    is_missing,
    read_metadata,
)

__all__ = [
    "MetadataError",
    "VideoProbe",
    "assign_split",
    "ingest",
    "probe_video",
    "read_metadata",
    "split_groups",
]

log = logging.getLogger(__name__)

# The truncation check decodes each stream's last _TAIL_S seconds and wants it to reach the declared end
# within _END_SLACK_S (containers round durations, and a last video frame may be shorter than the others).
_TAIL_S = 3.0
_END_SLACK_S = 1.0
_SAME_END_S = 1e-3


@dataclass(frozen=True)
class VideoProbe:
    """What ingestion learns about one file. `reason` is empty when the video is usable."""

    duration_s: float = float("nan")
    fps: float = float("nan")
    width: int = 0
    height: int = 0
    audio_sample_rate: int = 0
    reason: str = ""


def split_groups(metadata: pd.DataFrame, group_by: str, missing_values: Sequence[str] = ("",)) -> pd.Series:
    """Each video's split key: its `group_by` value, or its video_id where that value is missing (`is_missing`:
    empty or one of `missing_values`, the workflow's dataset.missing_values) or group_by is video_id."""
    if group_by == "video_id":
        return metadata["video_id"].rename("split_group")
    columns = metadata.attrs.get("csv_columns", list(metadata.columns))  # read_metadata fills absent columns
    if group_by not in columns:
        raise MetadataError(
            f"dataset.split.group_by is '{group_by}', which is not a column of the metadata CSV "
            f"({', '.join(columns)}); add the column, name another one, or set group_by: video_id"
        )
    values = metadata[group_by].astype(str).str.strip()
    return values.where(~is_missing(values, missing_values), metadata["video_id"]).rename("split_group")


def assign_splits(metadata: pd.DataFrame, split: dict, missing_values: Sequence[str] = ("",)) -> pd.DataFrame:
    """split and split_group of every row of `metadata`, for the dataset.split section `split` (group values in
    `missing_values` count as missing, see `split_groups`)."""
    groups = split_groups(metadata, group_column(split), missing_values)
    fractions = fractions_of(split)
    return pd.DataFrame(
        {"split": [assign_split(group, fractions) for group in groups], "split_group": groups},
        index=metadata.index,
    )


def assign_split(video_id: str, fractions: dict[str, float]) -> str:
    """train/val/test from a stable hash of a key alone (a video_id or a group's key), so adding videos never
    moves old ones."""
    digest = hashlib.sha256(video_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(fractions[name] for name in SPLITS)
    edge = 0.0
    for name in SPLITS:
        edge += fractions[name] / total
        if u < edge:
            return name
    return SPLITS[-1]


def probe_video(path: str | Path, min_duration_s: float) -> VideoProbe:
    """Open a file with PyAV and check it can feed the pipeline: video + audio, long enough, decodable to the end."""
    if not path:
        return VideoProbe(reason="empty path in metadata CSV")
    path = Path(path)
    if not path.is_file():
        return VideoProbe(reason=f"file not found: {path}")
    if path.stat().st_size == 0:
        return VideoProbe(reason="empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        kind = _media_signature(path)
        if kind:
            return VideoProbe(
                reason=f"cannot be decoded: a damaged or truncated {kind} file ({_ffmpeg_words(error)})"
            )
        return VideoProbe(reason=f"cannot be decoded: not a media file ({_ffmpeg_words(error)})")
    try:
        with container:
            probe = _declared(container)
    except (av.FFmpegError, OSError, ValueError) as error:
        return VideoProbe(reason=f"cannot be decoded: {_ffmpeg_words(error)}")
    if probe.reason or not np.isfinite(probe.duration_s) or probe.duration_s <= 0:
        return probe if probe.reason else _with_reason(probe, "unknown or zero duration")
    if probe.duration_s < min_duration_s:
        return _with_reason(probe, _too_short(probe.duration_s, min_duration_s))
    ends = []
    for kind in ("video", "audio"):
        problem, end = _check_end(path, kind, probe.duration_s)
        if problem:
            return _with_reason(probe, problem)
        ends.append(end)
    # Containers round, pad or estimate what they declare (Matroska by a few ms, MPEG-PS by up to a second): a
    # segment ending at the reported end must still find its last frame and sample, and none of a good file
    # may be lost, so the duration is where the earlier of the two streams really ends.
    # (A measured end within a millisecond of the declared one keeps the container's exact number.)
    if abs(min(ends) - probe.duration_s) > _SAME_END_S:
        probe = replace(probe, duration_s=min(ends))
    if probe.duration_s < min_duration_s:
        return _with_reason(probe, _too_short(probe.duration_s, min_duration_s))
    return probe


def _too_short(duration_s: float, min_duration_s: float) -> str:
    return (
        f"too short: {duration_s:.2f} s, but the segments need {min_duration_s:.2f} s "
        "(segments.count x segments.seconds)"
    )


def _declared(container: av.container.InputContainer) -> VideoProbe:
    """What the container says about itself; duration counts from the file's start to the earlier stream end."""
    if not container.streams.video:
        return VideoProbe(reason="no video stream")
    if not container.streams.audio:
        return VideoProbe(reason="no audio track")
    video, audio = container.streams.video[0], container.streams.audio[0]
    origin = file_origin(container)
    duration = min(_stream_end(video, container), _stream_end(audio, container)) - origin
    return VideoProbe(
        duration_s=duration,
        fps=float(video.average_rate) if video.average_rate else float("nan"),
        width=video.codec_context.width,
        height=video.codec_context.height,
        audio_sample_rate=audio.codec_context.sample_rate or 0,
    )


def _check_end(path: Path, kind: str, duration_s: float) -> tuple[str, float]:
    """('', where it ends) when `kind`'s stream decodes up to the declared duration, else (the reason, nan).

    A truncated file can open fine and still end early, so the last seconds are decoded. Each stream gets a
    container of its own: after one stream was decoded to its end, a seek for the other can leave its
    decoder mid-packet (MPEG-PS), and such rejected packets are skipped by `decoded_frames` anyway.
    """
    tail = max(duration_s - _TAIL_S, 0.0)
    end, frames = float("-inf"), 0
    try:
        with av.open(str(path)) as container:
            stream = getattr(container.streams, kind)[0]
            origin = file_origin(container)
            try:
                for frame in decoded_frames(container, stream, tail + origin):
                    frames += 1
                    end = max(end, frame.time - origin + _frame_seconds(frame, stream))
            except av.FFmpegError as error:  # the demuxer gave up: the readable data ends here
                log.debug("%s: %s demuxing stops: %s", path, kind, error)
    except DecodeError as error:
        return f"corrupt: {str(error).removeprefix(f'{path}: ')}", float("nan")
    except (av.FFmpegError, OSError) as error:
        return f"cannot be decoded: {kind}: {_ffmpeg_words(error)}", float("nan")
    if end >= duration_s - _END_SLACK_S:
        return "", end
    if frames == 0:
        end = _last_packet_seconds(path, kind)
    if not np.isfinite(end):
        return f"corrupt: no {kind} frame decodes ({duration_s:.1f} s declared)", float("nan")
    reason = f"truncated: {kind} ends at {max(end, 0.0):.1f} s of the {duration_s:.1f} s it declares"
    return reason, float("nan")


def _last_packet_seconds(path: Path, kind: str) -> float:
    """Where the last demuxable packet of `kind` ends, reading the file from its start (no decoding)."""
    end = float("-inf")
    try:
        with av.open(str(path)) as container:
            stream = getattr(container.streams, kind)[0]
            origin = file_origin(container)
            for packet in container.demux(stream):
                if packet.pts is not None:
                    length = float((packet.duration or 0) * stream.time_base)
                    end = max(end, float(packet.pts * stream.time_base) - origin + length)
    except (av.FFmpegError, OSError) as error:
        log.debug("%s: reading %s packets stops: %s", path, kind, error)
    return end


def _frame_seconds(frame: av.frame.Frame, stream: av.stream.Stream) -> float:
    """How long a decoded frame lasts: its samples for audio, one frame interval for video."""
    if isinstance(frame, av.AudioFrame):
        return frame.samples / frame.sample_rate if frame.sample_rate else 0.0
    return 1.0 / float(stream.average_rate) if stream.average_rate else 0.0


def _stream_end(stream: av.stream.Stream, container: av.container.InputContainer) -> float:
    """Where a stream declares its end, on its own clock (seconds)."""
    origin = file_origin(container)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else origin
    if stream.duration is not None and stream.time_base is not None:
        return start + float(stream.duration * stream.time_base)
    if container.duration is not None:
        return origin + container.duration / av.time_base
    return float("nan")


def _media_signature(path: Path) -> str:
    """The container a file's first bytes announce ('' when none is recognised)."""
    with path.open("rb") as file:
        head = file.read(12)
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"\x00\x00\x01\xba":
        return "MPEG-PS"
    if head[:4] == b"OggS":
        return "Ogg"
    return ""


def _ffmpeg_words(error: Exception) -> str:
    """FFmpeg's message without its errno and the function name: 'Invalid data found when processing input'."""
    strerror = getattr(error, "strerror", None)
    return strerror or str(error)


def _with_reason(probe: VideoProbe, reason: str) -> VideoProbe:
    return replace(probe, reason=reason)


def ingest(
    metadata: pd.DataFrame,
    *,
    min_duration_s: float,
    split_fractions: dict,
    missing_values: Sequence[str] = ("",),
    progress: Callable[[Iterable], Iterable] = iter,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe every video of `metadata` (from `read_metadata`): (manifest of usable videos, rejected: file, reason).

    `split_fractions` is the dataset.split section: train/val/test fractions and optionally group_by;
    `missing_values` dataset.missing_values (group values that mean "none"). The manifest's split_group is the
    key a video's split was hashed from, split_group_size how many usable videos share it.
    """
    splits = assign_splits(metadata, split_fractions, missing_values)
    known = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]
    kept, rejected = [], []
    rows = zip(metadata[known].itertuples(index=False), splits.itertuples(index=False), strict=True)
    for row, (split, group) in progress(rows):
        probe = probe_video(row.path, min_duration_s)
        if probe.reason:
            log.warning("rejected %s (%s): %s", row.video_id, row.path, probe.reason)
            rejected.append({"video_id": row.video_id, "file": row.path, "reason": probe.reason})
            continue
        record = row._asdict()
        record.update(
            duration_s=probe.duration_s,
            fps=probe.fps,
            width=probe.width,
            height=probe.height,
            audio_sample_rate=probe.audio_sample_rate,
            split=split,
            split_group=group,
        )
        kept.append(record)
    columns = [*known, "duration_s", "fps", "width", "height", "audio_sample_rate", "split", "split_group"]
    manifest = pd.DataFrame(kept, columns=columns)
    manifest["split_group_size"] = manifest.groupby("split_group")["video_id"].transform("size").astype(int)
    manifest = manifest.sort_values("video_id", kind="stable").reset_index(drop=True)
    shared = manifest.loc[manifest["split_group_size"] > 1, "split_group"]
    group_by = group_column(split_fractions)
    alone = 0 if group_by == "video_id" else int(is_missing(metadata[group_by], missing_values).sum())
    log.info(
        "splits grouped by %s: %d groups hold more than one video (%d videos in them); %d of %d listed videos "
        "have no %s value (empty or one of dataset.missing_values) and stand alone",
        group_by,
        shared.nunique(),
        len(shared),
        alone,
        len(metadata),
        group_by,
    )
    return manifest, pd.DataFrame(rejected, columns=["video_id", "file", "reason"])
