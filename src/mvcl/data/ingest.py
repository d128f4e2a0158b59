"""Ingestion: read the metadata CSV, probe every video, split by a stable hash, reject what cannot be used.

One bad video never stops a run: it lands in the rejected table with a specific reason. Problems with the CSV
itself (missing columns, duplicate ids) do stop it, since nothing downstream could be trusted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("video_id", "path")
OPTIONAL_COLUMNS = ("genre", "msd_id", "artist", "title")
SPLITS = ("train", "val", "test")


class MetadataError(ValueError):
    """The metadata CSV cannot be used as a whole; the message names the file and what to fix."""


@dataclass(frozen=True)
class VideoProbe:
    """What ingestion learns about one file. `reason` is empty when the video is usable."""

    duration_s: float = float("nan")
    fps: float = float("nan")
    width: int = 0
    height: int = 0
    audio_sample_rate: int = 0
    reason: str = ""


def read_metadata(csv_path: str | Path) -> pd.DataFrame:
    """Read and check the metadata CSV; `path` comes back absolute (relative paths are relative to the CSV)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MetadataError(f"{csv_path}: metadata CSV not found (config key dataset.metadata_csv)")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise MetadataError(f"{csv_path}: not a readable CSV: {error}") from error
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise MetadataError(
            f"{csv_path}: missing required column(s) {', '.join(missing)}; found {', '.join(table.columns)}. "
            "The CSV needs at least video_id,path (optional: genre,msd_id,artist,title)."
        )
    table["video_id"] = table["video_id"].str.strip()
    empty_ids = np.flatnonzero(table["video_id"] == "")
    if empty_ids.size:
        rows = ", ".join(str(i + 2) for i in empty_ids[:10])
        raise MetadataError(f"{csv_path}: empty video_id on line(s) {rows}")
    duplicated = table["video_id"][table["video_id"].duplicated()].unique()
    if duplicated.size:
        raise MetadataError(
            f"{csv_path}: video_id must be unique; repeated: {', '.join(map(str, duplicated[:10]))}"
        )
    for column in OPTIONAL_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    base = csv_path.resolve().parent
    table["path"] = [_resolve(base, path) for path in table["path"].str.strip()]
    return table[list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)].reset_index(drop=True)


def _resolve(base: Path, path: str) -> str:
    if not path:
        return ""
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (base / candidate).resolve())


def assign_split(video_id: str, fractions: dict[str, float]) -> str:
    """train/val/test from a stable hash of the id alone, so adding videos never moves old ones."""
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
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return VideoProbe(reason="no video stream")
            if not container.streams.audio:
                return VideoProbe(reason="no audio track")
            video, audio = container.streams.video[0], container.streams.audio[0]
            duration = min(_stream_seconds(video, container), _stream_seconds(audio, container))
            fps = float(video.average_rate) if video.average_rate else float("nan")
            probe = VideoProbe(
                duration_s=duration,
                fps=fps,
                width=video.codec_context.width,
                height=video.codec_context.height,
                audio_sample_rate=audio.codec_context.sample_rate or 0,
            )
            if not np.isfinite(duration) or duration <= 0:
                return _with_reason(probe, "unknown or zero duration")
            if duration < min_duration_s:
                return _with_reason(
                    probe, f"too short: {duration:.2f} s < {min_duration_s:.2f} s (segments.count x seconds)"
                )
            # A truncated file can open fine and still end early: decode the last second of both streams.
            tail = max(duration - 1.0, 0.0)
            for stream in (video, audio):
                container.seek(int(tail / stream.time_base), stream=stream, backward=True)
                last = None
                for frame in container.decode(stream):
                    last = frame.time if frame.time is not None else last
                if last is None or last < duration - 1.5:
                    kind = "video" if stream.type == "video" else "audio"
                    return _with_reason(
                        probe, f"truncated or corrupt: {kind} ends before the {duration:.2f} s it declares"
                    )
            return probe
    except (av.FFmpegError, OSError, ValueError) as error:
        return VideoProbe(reason=f"cannot be decoded: {error}")


def _stream_seconds(stream: av.stream.Stream, container: av.container.InputContainer) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return float("nan")


def _with_reason(probe: VideoProbe, reason: str) -> VideoProbe:
    return VideoProbe(probe.duration_s, probe.fps, probe.width, probe.height, probe.audio_sample_rate, reason)


def ingest(
    metadata: pd.DataFrame,
    *,
    min_duration_s: float,
    split_fractions: dict[str, float],
    progress: Callable[[Iterable], Iterable] = iter,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe every video of `metadata` (from `read_metadata`): (manifest of usable videos, rejected: file, reason)."""
    kept, rejected = [], []
    for row in progress(metadata.itertuples(index=False)):
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
            split=assign_split(row.video_id, split_fractions),
        )
        kept.append(record)
    columns = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "duration_s", "fps", "width", "height"]
    manifest = pd.DataFrame(kept, columns=[*columns, "audio_sample_rate", "split"])
    manifest = manifest.sort_values("video_id", kind="stable").reset_index(drop=True)
    return manifest, pd.DataFrame(rejected, columns=["video_id", "file", "reason"])
