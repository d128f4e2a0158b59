"""Embeddings of every video, and cold-start recommendations: catalog videos most similar to new ones.

A video's vector is the mean of its segments' embeddings and the aggregated vector is the mean of its audio
and video vectors (Table 2's CL_a, CL_v and CL_agg; DESIGN: "a video vector is the mean over its segments").
Segments whose audio or video embedding is not finite (missing features) are left out of the mean; a video
without a finite segment keeps its row with NaN vectors and `n_segments` 0, and is never recommended.

New videos are embedded with heads trained on the catalog alone (nothing is retrained): their top-k
catalog videos by cosine similarity of the aggregated vectors are their recommendations.

Per-video files of new videos are named by `video_key`: the id itself when it is a safe file name, else a
hash of it, so any id from a user's CSV maps to one file and adding videos never renames another's.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from mvcl.vectors import l2_normalise

VECTORS = ("audio", "video", "aggregated")
SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
KEY_PATTERN = "[A-Za-z0-9][A-Za-z0-9._-]*"
# Columns of a recommendations CSV, in order.
RECOMMENDATION_COLUMNS = [
    "new_video_id",
    "new_title",
    "new_artist",
    "new_path",
    "rank",
    "video_id",
    "cosine",
    "title",
    "artist",
    "genre",
    "split",
    "path",
]


def video_key(video_id: str) -> str:
    """A file name for one video: its id when safe (letters, digits, . _ -), else 'id-' + a hash of it."""
    if SAFE_KEY.fullmatch(video_id) and not video_id.startswith("id-"):
        return video_id
    return "id-" + hashlib.sha256(video_id.encode("utf-8")).hexdigest()[:20]


def video_vectors(
    segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One row per video of `segments` (first-appearance order): video_id, split, n_segments; and the mean
    audio and video embeddings of its finite segments ([videos, d] float32, NaN where none is finite)."""
    if not len(segments) == len(audio) == len(video):
        raise ValueError(
            f"embeddings have {len(audio)} audio and {len(video)} video rows but the segments table has "
            f"{len(segments)}: they must be row-aligned (rerun the model's embedding step)"
        )
    codes, video_ids = pd.factorize(segments["video_id"], sort=False)
    finite = np.isfinite(audio).all(axis=1) & np.isfinite(video).all(axis=1)
    counts = np.bincount(codes[finite], minlength=len(video_ids))
    sums = []
    for array in (audio, video):
        total = np.zeros((len(video_ids), array.shape[1]), dtype=np.float64)
        np.add.at(total, codes[finite], array[finite])
        with np.errstate(invalid="ignore", divide="ignore"):
            sums.append((total / counts[:, None]).astype(np.float32))
    split = segments.groupby(codes, sort=True)["split"].first().to_numpy()
    table = pd.DataFrame({"video_id": np.asarray(video_ids), "split": split, "n_segments": counts})
    return table, sums[0], sums[1]


def embedding_tables(
    segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(videos, segments) tables of `results/embeddings/{configuration}.parquet` and its `_segments` file.

    videos: video_id, split, n_segments, audio, video, aggregated (list<float32> columns); segments:
    video_id, segment, split, audio, video (one row per segment, in segments.parquet order).
    """
    table, audio_means, video_means = video_vectors(segments, audio, video)
    aggregated = (audio_means + video_means) / 2
    for name, vectors in zip(VECTORS, (audio_means, video_means, aggregated), strict=True):
        table[name] = list(vectors)
    per_segment = segments[["video_id", "segment", "split"]].reset_index(drop=True)
    per_segment["audio"] = list(np.asarray(audio, dtype=np.float32))
    per_segment["video"] = list(np.asarray(video, dtype=np.float32))
    return table, per_segment


def vectors_of(table: pd.DataFrame, column: str = "aggregated") -> np.ndarray:
    """A list<float> column of an embeddings table as a [rows, d] float32 matrix."""
    if column not in table.columns:
        raise KeyError(f"embeddings table has no column '{column}'; it has {', '.join(table.columns)}")
    if not len(table):
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(table[column].to_numpy()).astype(np.float32)


def recommend(
    new: pd.DataFrame,
    catalog: pd.DataFrame,
    new_manifest: pd.DataFrame,
    catalog_manifest: pd.DataFrame,
    k: int,
) -> pd.DataFrame:
    """For each new video, its k catalog videos of highest cosine similarity (aggregated vectors).

    `new`, `catalog`: embeddings tables (`embedding_tables`); manifests give titles, artists, genres and
    paths. Long table (`RECOMMENDATION_COLUMNS`), rank 1..k per new video; ties go to the catalog's order.
    """
    clashes = sorted(set(new["video_id"]) & set(catalog["video_id"]))
    if clashes:
        raise ValueError(
            f"dataset.new_videos: video_id(s) {', '.join(map(str, clashes[:10]))} are in the catalog "
            "(dataset.metadata_csv) too; give new videos ids of their own"
        )
    catalog = catalog[catalog["n_segments"] > 0].reset_index(drop=True)
    if catalog.empty:
        raise ValueError("no catalog video has a finite embedding: nothing to recommend")
    new = new[new["n_segments"] > 0].reset_index(drop=True)
    rows = []
    if len(new):
        similarity = l2_normalise(vectors_of(new)) @ l2_normalise(vectors_of(catalog)).T  # [new, catalog]
        k = min(k, len(catalog))
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        about_new = _metadata(new_manifest)
        about = _metadata(catalog_manifest)
        for i, video_id in enumerate(new["video_id"]):
            query = about_new.loc[video_id]
            for rank, j in enumerate(order[i], start=1):
                match = about.loc[catalog["video_id"].iloc[j]]
                rows.append(
                    {
                        "new_video_id": video_id,
                        "new_title": query["title"],
                        "new_artist": query["artist"],
                        "new_path": query["path"],
                        "rank": rank,
                        "video_id": catalog["video_id"].iloc[j],
                        "cosine": round(float(similarity[i, j]), 6),
                        "title": match["title"],
                        "artist": match["artist"],
                        "genre": match["genre"],
                        "split": catalog["split"].iloc[j],
                        "path": match["path"],
                    }
                )
    return pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)


def _metadata(manifest: pd.DataFrame) -> pd.DataFrame:
    columns = ["title", "artist", "genre", "path"]
    table = manifest.set_index("video_id").reindex(columns=columns)
    return table.fillna("").astype(str)
