"""Training batches in which segments of one video never meet (study section 4), and video batches for the
temporal model; see `mvcl.learn.train` for the layering."""

from __future__ import annotations

import math

import numpy as np


def segment_batches(
    rows: np.ndarray, video_codes: np.ndarray, batch_size: int, all_segments: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of feature rows (each sorted) in which no video appears twice; see the module docstring."""
    n = len(rows)
    by_video = np.lexsort((rng.random(n), video_codes))  # grouped by video, random order inside each
    codes = video_codes[by_video]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # first position of each video
    rank = np.empty(n, dtype=np.int64)  # position of each row in its video's random order
    rank[by_video] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    batches = []
    for layer in range(rank.max() + 1 if all_segments else 1):
        members = rows[rank == layer]
        members = members[rng.permutation(len(members))]
        parts = np.array_split(members, math.ceil(len(members) / batch_size))
        batches += [np.sort(part) for part in parts if len(part) >= 2]
    return [batches[i] for i in rng.permutation(len(batches))]


def video_batches(
    n_videos: int, batch_size: int, segments_per_video: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of video indices for the temporal model: `batch_size` counts segments, at least 2 videos."""
    per_batch = max(2, batch_size // segments_per_video)
    order = rng.permutation(n_videos)
    parts = np.array_split(order, math.ceil(n_videos / per_batch))
    return [np.sort(part) for part in parts if len(part) >= 2]
