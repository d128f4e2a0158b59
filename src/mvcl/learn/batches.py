"""Training rows of the (memory-mapped) feature files: views, splits, and batches read into tensors.

`audio_features` [n, Da] and `video_features` [n, V, Dv] (V crop views; [n, Dv] is one view) are row-aligned
with `segments` (columns video_id, segment, split). Only the rows of one batch are read (sorted indices), so
memory stays flat whatever n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

SEGMENT_COLUMNS = ("video_id", "segment", "split")


def as_views(video_features: np.ndarray) -> np.ndarray:
    """[n, V, Dv] as is; [n, Dv] as [n, 1, Dv] (a view of the same memory, nothing is read)."""
    return video_features if video_features.ndim == 3 else video_features[:, None, :]


def view_zero(rows: np.ndarray) -> np.ndarray:
    """View 0 for every row: validation and test rows hold the centre crop in every view slot."""
    return np.zeros(len(rows), dtype=np.int64)


def read_rows(features: np.ndarray, rows: np.ndarray, views: np.ndarray | None = None) -> np.ndarray:
    """float32 copy of `rows` (sorted) and, for video, one view per row; only these rows are read."""
    block = features[rows] if views is None else features[rows, views]
    return np.asarray(block, dtype=np.float32)


@dataclass
class Split:
    """The finite rows of one split, and for the temporal model its [videos, S] table of rows (-1 = missing)."""

    rows: np.ndarray
    video_codes: np.ndarray
    slots: np.ndarray


def split_rows(segments: pd.DataFrame, keep: np.ndarray, name: str, segments_per_video: int) -> Split:
    rows = np.flatnonzero(keep & (segments["split"].to_numpy() == name))
    if len(rows) < 2:
        raise ValueError(
            f"segments: {len(rows)} {name!r} rows with finite features; training needs at least 2"
        )
    video_codes, _ = pd.factorize(segments["video_id"].to_numpy()[rows])
    slots = np.full((video_codes.max() + 1, segments_per_video), -1, dtype=np.int64)
    slots[video_codes, segments["segment"].to_numpy()[rows]] = rows
    return Split(rows, video_codes, slots)


def first_segments(split: Split, segments: pd.DataFrame) -> Split:
    """`split` cut to each video's lowest-numbered usable segment (`training.segments: first`).

    Their EmbeddingDataset read segment `{video}_0` only, for training and validation. That is segment 0
    here unless its features were dropped as non-finite; then the video's next segment stands in.
    """
    numbers = segments["segment"].to_numpy()[split.rows]
    order = np.lexsort((numbers, split.video_codes))  # by video, then by segment number
    codes = split.video_codes[order]
    first = order[np.r_[True, codes[1:] != codes[:-1]]]  # [videos], positions in split.rows
    rows = np.sort(split.rows[first])
    keep = np.isin(split.rows, rows)
    slots = np.where(np.isin(split.slots, rows), split.slots, -1)
    return Split(split.rows[keep], split.video_codes[keep], slots)


@dataclass
class Features:
    audio: np.ndarray  # [n, Da]
    video: np.ndarray  # [n, V, Dv]
    device: torch.device

    def flat(self, rows: np.ndarray, views: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, Da], [B, Dv] for sorted `rows`, video view `views[i]` for row i."""
        audio = torch.from_numpy(read_rows(self.audio, rows)).to(self.device)
        video = torch.from_numpy(read_rows(self.video, rows, views)).to(self.device)
        return audio, video

    def sequences(
        self, slots: np.ndarray, view_of: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[N, S, Da], [N, S, Dv], present [N, S] for a [N, S] table of rows (-1 = missing segment)."""
        present = slots >= 0
        order = np.argsort(slots[present])  # read in file order, then put back in table order
        rows = slots[present][order]
        audio_rows, video_rows = self.flat(rows, view_of(rows))
        audio = audio_rows.new_zeros(*slots.shape, audio_rows.shape[1])
        video = video_rows.new_zeros(*slots.shape, video_rows.shape[1])
        mask = torch.from_numpy(present).to(self.device)
        flat_index = torch.from_numpy(np.argsort(order)).to(self.device)
        audio[mask], video[mask] = audio_rows[flat_index], video_rows[flat_index]
        return audio, video, mask


@dataclass(frozen=True)
class TrainingRun:
    """What one training run reads: the features row-aligned with `segments` (this module's docstring), the
    configuration `cfg` (resolve_configuration's output), the seed every random choice derives from, the
    device, and where progress messages go."""

    audio_features: np.ndarray  # [n, Da]
    video_features: np.ndarray  # [n, V, Dv] or [n, Dv]
    segments: pd.DataFrame
    cfg: dict
    seed: int
    device: torch.device | str
    log: Callable[[str], None] = print


def check_inputs(audio_features: np.ndarray, video_features: np.ndarray, segments: pd.DataFrame) -> None:
    missing = [c for c in SEGMENT_COLUMNS if c not in segments.columns]
    if missing:
        raise ValueError(f"segments: missing columns {missing}; expected {list(SEGMENT_COLUMNS)}")
    if not len(audio_features) == len(video_features) == len(segments):
        raise ValueError(
            f"features and segments must be row-aligned: audio {len(audio_features)}, "
            f"video {len(video_features)}, segments {len(segments)} rows"
        )
