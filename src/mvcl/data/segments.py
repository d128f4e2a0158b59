"""Segment sampling (study section 3.1): one random window inside each equal part of a track, never overlapping.

Inside each segment a synchronous clip window (their code: 3 s of the 5 s) is drawn too: the audio and the
video encoders both see exactly that window, so a segment's two features describe the same moment.
Every draw is seeded by (seed, video_id), so a video's segments do not depend on which other videos exist.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# A segment's window [start_s, end_s) and the synchronous clip inside it that the encoders see.
WINDOW_COLUMNS = ("start_s", "end_s", "clip_start_s", "clip_end_s")
SEGMENT_COLUMNS = ["video_id", "segment", *WINDOW_COLUMNS, "split", "path", "shard"]


def video_rng(seed: int, video_id: str, purpose: str = "segments") -> np.random.Generator:
    """A generator that depends only on the master seed, the video id and what it is for."""
    digest = hashlib.sha256(f"{seed}\0{purpose}\0{video_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def sample_windows(
    duration_s: float, count: int, seconds: float, clip_seconds: float, rng: np.random.Generator
) -> np.ndarray:
    """[count, 4] rows of (start, end, clip_start, clip_end) in seconds.

    Segment k starts uniformly in [k L, (k + 1) L - seconds] with L = duration / count, so it lies inside
    the k-th part and segments cannot overlap; the clip starts uniformly inside its segment.
    """
    part = duration_s / count
    if part < seconds:
        raise ValueError(
            f"a {duration_s:.2f} s track cannot hold {count} non-overlapping {seconds} s segments "
            f"(needs at least {count * seconds:.2f} s)"
        )
    if clip_seconds > seconds:
        raise ValueError(f"segments.clip_seconds ({clip_seconds}) exceeds segments.seconds ({seconds})")
    starts = np.arange(count) * part + rng.uniform(0.0, part - seconds, size=count)
    clip_starts = starts + rng.uniform(0.0, seconds - clip_seconds, size=count)
    return np.stack([starts, starts + seconds, clip_starts, clip_starts + clip_seconds], axis=1)


def build_segments(
    manifest: pd.DataFrame,
    *,
    count: int,
    seconds: float,
    clip_seconds: float,
    shard_videos: int,
    seed: int,
) -> pd.DataFrame:
    """Segments of every manifest video, ordered by (video_id, segment); `shard` groups `shard_videos` videos."""
    manifest = manifest.sort_values("video_id", kind="stable").reset_index(drop=True)
    rows = []
    for index, video in enumerate(manifest.itertuples(index=False)):
        windows = sample_windows(
            video.duration_s, count, seconds, clip_seconds, video_rng(seed, video.video_id)
        )
        for segment, (start, end, clip_start, clip_end) in enumerate(windows):
            rows.append(
                (
                    video.video_id,
                    segment,
                    start,
                    end,
                    clip_start,
                    clip_end,
                    video.split,
                    video.path,
                    index // shard_videos,
                )
            )
    table = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    return table.astype({"segment": "int32", "shard": "int32"})


def shard_count(segments: pd.DataFrame) -> int:
    return int(segments["shard"].max()) + 1 if len(segments) else 0


def read_shard(path: str, shard: int) -> pd.DataFrame:
    """The rows of one feature shard from segments.parquet, in file order (the order of its feature rows)."""
    segments = pd.read_parquet(path)
    rows = segments[segments["shard"] == shard].reset_index(drop=True)
    log.info("shard %s: %d segments of %d videos", shard, len(rows), rows["video_id"].nunique())
    return rows


def segments_per_video(segments: pd.DataFrame) -> int:
    """Segment slots per video (segments.count): the highest segment index + 1."""
    return int(segments["segment"].max()) + 1
