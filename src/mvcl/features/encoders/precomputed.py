"""Your own per-segment vectors as an encoder (MARBLE's identity encoder): features computed elsewhere (a GPU
cluster with internet, another toolkit) enter the same training, tables and provenance.

The file holds one vector per (video_id, segment), segment being the 0-based index of segments.parquet:
- `.parquet`: columns video_id, segment, then either one list column `features` or one numeric column per
  dimension (in column order);
- `.npz`: arrays video_id [n], segment [n] and features [n, D].
`read_precomputed` checks it against the run's segments: every segment covered (extra rows are ignored),
each (video_id, segment) once, the expected width (`options.width`, when set) and finite values; each
problem is one line naming the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mvcl.features.encoders.contract import Encoder

KEYS = ("video_id", "segment")


def _load(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(keys [n, 2], vectors [n, D]) of a precomputed features file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such precomputed features file (encoders.<name>.options.path)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            missing = [key for key in (*KEYS, "features") if key not in arrays]
            if missing:
                raise ValueError(
                    f"{path}: no array {', '.join(missing)}; an .npz needs video_id, segment, features"
                )
            try:
                keys = pd.DataFrame(
                    {"video_id": arrays["video_id"].astype(str), "segment": arrays["segment"]}
                )
                vectors = np.asarray(arrays["features"])
            except ValueError as error:  # object arrays: mvcl never unpickles a file
                raise ValueError(
                    f"{path}: {error}; save video_id as a string array (ids.astype(str))"
                ) from None
    elif path.suffix == ".parquet":
        table = pd.read_parquet(path)
        missing = [key for key in KEYS if key not in table]
        if missing:
            raise ValueError(
                f"{path}: no column {', '.join(missing)}; it needs video_id, segment and the vectors"
            )
        keys = table[list(KEYS)].astype({"video_id": str})
        rest = table.drop(columns=list(KEYS))
        if list(rest.columns) == ["features"]:
            lengths = rest["features"].map(len)
            if lengths.nunique() > 1:
                raise ValueError(
                    f"{path}: rows of column features have different lengths ({sorted(set(lengths))[:5]})"
                )
            vectors = np.stack(rest["features"].to_numpy()) if len(rest) else np.zeros((0, 0))
        else:
            non_numeric = [column for column in rest if not pd.api.types.is_numeric_dtype(rest[column])]
            if non_numeric:
                raise ValueError(f"{path}: columns {', '.join(map(str, non_numeric[:5]))} are not numeric")
            vectors = rest.to_numpy()
    else:
        raise ValueError(f"{path}: precomputed features must be a .parquet or .npz file")
    if vectors.ndim != 2 or len(vectors) != len(keys):
        raise ValueError(f"{path}: features must be [rows, width] with one row per (video_id, segment)")
    return keys, vectors


def read_precomputed(path: str | Path, segments: pd.DataFrame, width: int | None = None) -> np.ndarray:
    """float32 [len(segments), D] from `path`, row-aligned with `segments` (video_id, segment)."""
    path = Path(path)
    keys, vectors = _load(path)
    if width is not None and vectors.shape[1] != width:
        raise ValueError(
            f"{path}: vectors are {vectors.shape[1]}-d, options.width says {width}; fix one of them"
        )
    duplicated = keys.duplicated()
    if duplicated.any():
        first = keys[duplicated].iloc[0]
        raise ValueError(f"{path}: segment {first.segment} of video {first.video_id} appears more than once")
    index = pd.MultiIndex.from_frame(keys.astype({"segment": np.int64}))
    wanted = pd.MultiIndex.from_frame(segments[list(KEYS)].astype({"video_id": str, "segment": np.int64}))
    rows = index.get_indexer(wanted)
    if (rows < 0).any():
        missing = wanted[rows < 0]
        video_id, segment = missing[0]
        raise ValueError(
            f"{path}: misses {len(missing)} of the run's {len(wanted)} segments (first: segment {segment} of video "
            f"{video_id}); add them, or drop those videos from dataset.metadata_csv"
        )
    features = np.asarray(vectors[rows], dtype=np.float32)
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        video_id, segment = wanted[int(np.argmax(bad))]
        raise ValueError(
            f"{path}: {int(bad.sum())} vectors have NaN or infinite values (first: segment {segment} of video "
            f"{video_id}); recompute them"
        )
    return features


class PrecomputedFeatures(Encoder):
    """The identity encoder: reads the vectors of `options.path` instead of computing them."""

    @property
    def modality(self) -> str:  # type: ignore[override]
        return self.spec.modality

    @property
    def width(self) -> int:
        return self.options["width"] or _load(Path(self.options["path"]))[1].shape[1]

    def extract(self, segments: pd.DataFrame) -> tuple[np.ndarray, dict]:
        from mvcl.provenance import sha256_file

        features = read_precomputed(self.options["path"], segments, self.options["width"])
        record = {
            **self.provenance(),
            "width": features.shape[1],
            "sha256": sha256_file(self.options["path"]),
        }
        return features, record
