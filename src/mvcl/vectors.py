"""Feature rows aligned with segments.parquet: which are usable, their means per video, unit length (numpy only).

Every feature and embedding array of the workflow is row-aligned with the segments table and may be a
memory-mapped `.npy` file of the study's size (550k segments): these functions read it in chunks of about
16 MiB, so memory stays flat whatever the number of rows. A row is usable when every value in it is finite
(a segment that failed to decode is a NaN row); a video's vector is the mean of its usable segments' rows
(study: "a video vector is the mean over its segments"), accumulated in float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse

_CHUNK_BYTES = 1 << 24


def _chunk_rows(array: np.ndarray) -> int:
    return max(1, _CHUNK_BYTES // max(1, array[:1].nbytes))


def finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """[n] bool: rows whose every value is finite in every array (all row-aligned)."""
    finite = np.ones(len(arrays[0]), dtype=bool)
    for array in arrays:
        if len(array) != len(finite):
            raise ValueError(f"arrays are not row-aligned: {len(array)} rows against {len(finite)}")
        chunk = _chunk_rows(array)
        for start in range(0, len(array), chunk):
            block = np.asarray(array[start : start + chunk])
            finite[start : start + chunk] &= np.isfinite(block).reshape(len(block), -1).all(axis=1)
    return finite


def usable_rows(segments: pd.DataFrame, split: str, *arrays: np.ndarray) -> np.ndarray:
    """[n] bool: the rows of `split` whose values are finite in every array (row-aligned with `segments`)."""
    for array in arrays:
        if len(array) != len(segments):
            raise ValueError(
                f"an array has {len(array)} rows but segments.parquet has {len(segments)}: they must be "
                "row-aligned (rerun the step that wrote it)"
            )
    return (segments["split"].to_numpy() == split) & finite_rows(*arrays)


def video_means(
    array: np.ndarray,
    codes: np.ndarray,
    n_videos: int,
    keep: np.ndarray | None = None,
    chunk_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-video means [n_videos, D] (float32) and segment counts [n_videos] of `array`'s kept rows.

    `codes[i]` is row i's video (0..n_videos-1); an [n, V, D] array has its V crop views averaged first.
    A video without kept rows gets a NaN row and a count of 0.
    """
    keep = np.ones(len(array), dtype=bool) if keep is None else keep
    sums = np.zeros((n_videos, array.shape[-1]))
    counts = np.zeros(n_videos, dtype=np.int64)
    chunk = chunk_rows or _chunk_rows(array)
    for start in range(0, len(array), chunk):
        block = np.asarray(array[start : start + chunk], dtype=np.float64)
        block = block.mean(axis=1) if block.ndim == 3 else block
        kept = keep[start : start + chunk]
        rows = codes[start : start + chunk][kept]
        onehot = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n_videos, len(rows))
        )
        sums += onehot @ block[kept]
        counts += np.bincount(rows, minlength=n_videos)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None]).astype(np.float32), counts


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
