"""Nearest neighbours in the learned embedding spaces: the study's qualitative analysis.

The study asked whether embedding similarity matches a person's judgement of similarity by showing, for 25
random test videos and 20 random test segments, their 3 nearest test neighbours. We do the same in three
spaces (`MODES`): the aggregated audio+video embedding, audio only and video only.

- A video's vector is the mean of its segments' embeddings; the aggregated vector is the mean of the audio
  and video vectors, re-normalised (as the study's code). Similarity is cosine similarity.
- Only test rows whose audio and video embeddings are both finite take part (rows of segments whose
  features were missing are NaN in embeddings.npz).
- A segment's neighbours come from OTHER videos: segments of one video share the song, so neighbours inside
  the seed's own video would say little about whether the space groups similar music videos.
- Seeds depend only on the seed and the test set, not on the mode, so the three modes show the same seeds.

A neighbour table is long: one row per shown item, `rank` 0 for the seed itself and 1..k for its neighbours.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mvcl.plan import NEIGHBOUR_LEVELS, NEIGHBOUR_MODES
from mvcl.vectors import l2_normalise, usable_rows, video_means

MODES = NEIGHBOUR_MODES
MODE_NAMES = {"agg": "aggregated audio+video", "audio": "audio", "video": "video"}
LEVELS = NEIGHBOUR_LEVELS

# Columns of a neighbour table (CSV) in order.
TABLE_COLUMNS = [
    "seed",
    "rank",
    "video_id",
    "segment",
    "genre",
    "similarity",
    "same_genre",
    "artist",
    "title",
    "start_s",
    "end_s",
    "path",
]

log = logging.getLogger(__name__)


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The `audio` and `video` arrays of an embeddings.npz, float32 [n_segments, d]."""
    with np.load(path) as data:
        missing = [name for name in ("audio", "video") if name not in data.files]
        if missing:
            raise KeyError(f"{path}: no array(s) {', '.join(missing)}; found {', '.join(data.files)}")
        audio, video = data["audio"].astype(np.float32), data["video"].astype(np.float32)
    if audio.shape != video.shape:
        raise ValueError(f"{path}: audio {audio.shape} and video {video.shape} embeddings differ in shape")
    return audio, video


def mode_vectors(audio: np.ndarray, video: np.ndarray, mode: str) -> np.ndarray:
    """Unit vectors of one space: `agg` = normalise((audio + video) / 2), or one modality alone."""
    if mode == "agg":
        return l2_normalise((audio + video) / 2)
    if mode == "audio":
        return l2_normalise(audio)
    if mode == "video":
        return l2_normalise(video)
    raise ValueError(f"unknown neighbour mode '{mode}': use one of {', '.join(MODES)}")


def valid_test_rows(segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray) -> np.ndarray:
    """Boolean mask over segment rows: test split, both embeddings finite."""
    return usable_rows(segments, "test", audio, video)


def segment_items(
    manifest: pd.DataFrame, segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The test segments that can be shown (one row each, with video metadata) and their embeddings."""
    mask = valid_test_rows(segments, audio, video)
    items = _with_metadata(segments.loc[mask].reset_index(drop=True), manifest)
    return items, audio[mask], video[mask]


def video_items(
    manifest: pd.DataFrame, segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The test videos (one row each) and their video-level vectors: the mean of their segments' embeddings."""
    mask = valid_test_rows(segments, audio, video)
    video_ids, inverse = np.unique(segments.loc[mask, "video_id"].to_numpy(), return_inverse=True)
    audio_means = video_means(audio[mask], inverse, len(video_ids))[0]
    video_vectors = video_means(video[mask], inverse, len(video_ids))[0]
    first = segments.loc[mask].drop_duplicates("video_id").set_index("video_id")
    items = pd.DataFrame({"video_id": video_ids, "path": first.loc[video_ids, "path"].to_numpy()})
    items = _with_metadata(items, manifest)
    items["segment"] = pd.NA
    items["start_s"] = 0.0
    items["end_s"] = items["duration_s"]
    return items, audio_means, video_vectors


def _with_metadata(items: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """`items` with the genre, artist, title and duration of their videos ("" where the manifest has none)."""
    columns = [column for column in ("genre", "artist", "title", "duration_s") if column in manifest.columns]
    items = items.merge(manifest[["video_id", *columns]], on="video_id", how="left")
    for column in ("genre", "artist", "title"):
        items[column] = items[column].fillna("").astype(str) if column in items.columns else ""
    return items


def pick_seeds(n_items: int, count: int, seed: int) -> np.ndarray:
    """`count` distinct item indices drawn at random (seeded), in ascending order; all items if fewer."""
    if n_items < 1:
        raise ValueError("no test items to draw seeds from: the test split is empty")
    if count >= n_items:
        return np.arange(n_items)
    return np.sort(np.random.default_rng(seed).choice(n_items, size=count, replace=False))


def nearest_neighbours(
    vectors: np.ndarray, seeds: np.ndarray, k: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar items to each seed, excluding the seed and items of the seed's group.

    `vectors` [n, d] unit rows; `groups` [n] (e.g. video ids) or None. Returns indices and similarities,
    [n_seeds, k'] with k' = min(k, candidates); ties go to the lower index.
    """
    similarity = vectors[seeds] @ vectors.T  # [n_seeds, n]
    excluded = np.zeros_like(similarity, dtype=bool)
    excluded[np.arange(len(seeds)), seeds] = True
    if groups is not None:
        excluded |= groups[seeds][:, None] == groups[None, :]
    candidates = int((~excluded).sum(axis=1).min()) if len(seeds) else 0
    if candidates < k:
        log.warning(
            "only %d candidate neighbour(s) per seed; showing %d instead of %d", candidates, candidates, k
        )
        k = candidates
    similarity = np.where(excluded, -np.inf, similarity)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def neighbour_table(
    items: pd.DataFrame, vectors: np.ndarray, seeds: np.ndarray, k: int, exclude_same_video: bool
) -> pd.DataFrame:
    """Long table of each seed (rank 0) and its k nearest items (ranks 1..k), with cosine similarity."""
    groups = items["video_id"].to_numpy() if exclude_same_video else None
    indices, similarities = nearest_neighbours(vectors, seeds, k, groups)
    rows = []
    for number, (seed_index, neighbours, scores) in enumerate(zip(seeds, indices, similarities, strict=True)):
        seed_genre = items["genre"].iloc[seed_index]
        shown = [
            (seed_index, float(vectors[seed_index] @ vectors[seed_index])),
            *zip(neighbours, scores, strict=True),
        ]
        for rank, (index, score) in enumerate(shown):
            item = items.iloc[index]
            rows.append(
                {
                    "seed": number + 1,
                    "rank": rank,
                    "video_id": item["video_id"],
                    "segment": item["segment"],
                    "genre": item["genre"],
                    "similarity": round(float(score), 6),
                    "same_genre": bool(seed_genre) and item["genre"] == seed_genre,
                    "artist": item["artist"],
                    "title": item["title"],
                    "start_s": float(item["start_s"]),
                    "end_s": float(item["end_s"]),
                    "path": item["path"],
                }
            )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["segment"] = table["segment"].astype("Int64")
    return table


def genre_agreement(table: pd.DataFrame, items: pd.DataFrame) -> tuple[float, float]:
    """Share of neighbours with their seed's genre, and the share expected from random candidates.

    Chance is, per seed, the share of items of other videos with the seed's genre (the candidates: other
    videos, or segments of other videos), averaged over seeds. NaN when the corpus has no genres.
    """
    neighbours = table[table["rank"] > 0]
    if neighbours.empty or not (items["genre"] != "").any():
        return float("nan"), float("nan")
    chances = [
        float((items.loc[items["video_id"] != seed.video_id, "genre"] == seed.genre).mean())
        for seed in table[table["rank"] == 0].itertuples()
    ]
    return float(neighbours["same_genre"].mean()), float(np.nanmean(chances))


def neighbours_for(
    level: str,
    mode: str,
    manifest: pd.DataFrame,
    segments: pd.DataFrame,
    audio: np.ndarray,
    video: np.ndarray,
    seeds: int,
    k: int,
    seed: int,
) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The neighbour table of one level (videos or segments) and mode, with its genre agreement and chance."""
    if level == "videos":
        items, item_audio, item_video = video_items(manifest, segments, audio, video)
    elif level == "segments":
        items, item_audio, item_video = segment_items(manifest, segments, audio, video)
    else:
        raise ValueError(f"unknown level '{level}': use one of {', '.join(LEVELS)}")
    if len(items) < seeds:
        log.warning(
            "the test split has %d %s, fewer than the %d seeds asked for: every test %s is a seed",
            len(items), level, seeds, level[:-1],
        )  # fmt: skip
    exclude_same_video = level == "segments"
    chosen = pick_seeds(len(items), seeds, seed)
    table = neighbour_table(items, mode_vectors(item_audio, item_video, mode), chosen, k, exclude_same_video)
    return table, genre_agreement(table, items)
