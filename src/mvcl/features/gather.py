"""Feature shards: each shard holds the rows of its videos' segments, in segments.parquet order."""

from __future__ import annotations

import numpy as np
import pandas as pd


def gather_shards(segments: pd.DataFrame, shards: list[np.ndarray]) -> np.ndarray:
    """Stack shard arrays (shard 0, 1, ...) into one array row-aligned with `segments`."""
    expected = segments["shard"].value_counts().sort_index()
    if len(shards) != len(expected):
        raise ValueError(f"expected {len(expected)} feature shards, got {len(shards)}")
    for shard, (shard_id, rows) in enumerate(expected.items()):
        if shard != shard_id or len(shards[shard]) != rows:
            raise ValueError(
                f"feature shard {shard} has {len(shards[shard])} rows, segments.parquet has {rows}: "
                "rerun the shard (delete its .npy) or the segments rule"
            )
    if not segments["shard"].is_monotonic_increasing:
        raise ValueError("segments.parquet is not ordered by shard; rerun the segments rule")
    return np.concatenate([np.asarray(shard, dtype=np.float32) for shard in shards], axis=0)
