"""The inputs of a probe: the rows of a Table 2 representation, and the task's labels.

A representation (musicnn, R(2+1)D, both, or the contrastive embeddings CL_a, CL_v, CL_agg) is averaged over
a video's segments (`video_level`, `probe.level: video`, the paper) or kept one row per segment
(`segment_level`, `probe.level: segment`, the study's code); genre labels come from the metadata, tagging
labels from the MSD tags.

Crop views. R(2+1)D features of training segments hold `video_encoder.train_views` random crops ([n, V, D];
validation and test rows repeat the centre crop). Every representation reads view 0: the centre crop for
validation and test, one random crop for training, which is exactly what the CL embeddings were computed from
(learn/embed.py embeds view 0). So the frozen and the contrastive rows of Table 2 see the same pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from mvcl.data.tags import tag_matrix
from mvcl.plan import PROBE_TASKS
from mvcl.vectors import finite_rows, video_means

TASKS = PROBE_TASKS


SPLITS = ("train", "val", "test")
LEVELS = ("video", "segment")


# Which segment arrays each representation of Table 2 reads, and how two of them combine per segment. The
# frozen rows of any encoder read as `audio` or `video` (musicnn and r2plus1d are the study's names for them).
REPRESENTATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "audio": (("audio_features",), "single"),
    "video": (("video_features",), "single"),
    "musicnn": (("audio_features",), "single"),
    "r2plus1d": (("video_features",), "single"),
    "both": (("audio_features", "video_features"), "concat"),
    "cl_a": (("audio_embeddings",), "single"),
    "cl_v": (("video_embeddings",), "single"),
    "cl_agg": (("audio_embeddings", "video_embeddings"), "mean"),
}


class ProbeWarning(UserWarning):
    """A degenerate case the probe handled in a defined way (also listed in the result's `warnings`)."""


class VideoLevel(NamedTuple):
    """The rows of a probe: `X[i]` belongs to video `video_ids[i]`, in split `split[i]`.

    From `video_level` a row is a video (the mean of its segment vectors); from `segment_level` a row is a
    segment, and a video's rows share its id.
    """

    video_ids: np.ndarray
    X: np.ndarray
    split: np.ndarray


class TaskLabels(NamedTuple):
    """Labels for the rows of a `VideoLevel` where `mask` is true (genre: class names; tagging: 0/1 matrix)."""

    mask: np.ndarray
    y: np.ndarray
    label_names: list[str]


def note(notes: list[str], message: str) -> None:
    warnings.warn(message, ProbeWarning, stacklevel=3)
    notes.append(message)


def video_level(
    features: np.ndarray | Sequence[np.ndarray], segments: pd.DataFrame, chunk_rows: int | None = None
) -> VideoLevel:
    """Average segment vectors per video (DESIGN: a video vector is the mean over its segments).

    `features` is one array row-aligned with `segments` ([n_segments, D], or [n_segments, V, D] of which view 0
    is read, see the module's note on crop views), or several such arrays whose per-segment vectors are
    concatenated. Segments with a non-finite value are dropped with a warning (a video left without segments is
    dropped too). Works in chunks, so memory-mapped features of the full study fit in memory. Videos keep their
    order of appearance.
    """
    arrays = _view_zero(features, segments)
    codes, video_ids = pd.factorize(segments["video_id"], sort=False)
    split = _split_per_video(codes, video_ids, segments["split"].to_numpy())
    finite = finite_rows(*arrays)
    per_array = [video_means(array, codes, len(video_ids), finite, chunk_rows) for array in arrays]
    means, counts = zip(*per_array, strict=True)
    kept = counts[0] > 0
    n_dropped = int((~finite).sum())
    if n_dropped:
        lost = video_ids[~kept]
        warnings.warn(
            f"dropped {n_dropped} of {len(segments)} segments with non-finite feature values; "
            f"{len(lost)} video(s) lost all segments and are left out{examples(lost)}",
            ProbeWarning,
            stacklevel=2,
        )
    X = np.concatenate(means, axis=1)[kept]
    return VideoLevel(video_ids=np.asarray(video_ids)[kept], X=X, split=split[kept])


def segment_level(features: np.ndarray | Sequence[np.ndarray], segments: pd.DataFrame) -> VideoLevel:
    """One row per segment (the study's code: its genre probe trained on segments), labels from its video.

    Same inputs as `video_level`; segments with a non-finite value are dropped with a warning. Reads every
    usable row into memory (about 8 kB per segment for `both` at the study's sizes).
    """
    arrays = _view_zero(features, segments)
    codes, video_ids = pd.factorize(segments["video_id"], sort=False)
    _split_per_video(codes, video_ids, segments["split"].to_numpy())  # refuses a video in several splits
    finite = finite_rows(*arrays)
    if not finite.all():
        warnings.warn(
            f"dropped {int((~finite).sum())} of {len(segments)} segments with non-finite feature values",
            ProbeWarning,
            stacklevel=2,
        )
    X = np.concatenate([np.asarray(array[finite], dtype=np.float32) for array in arrays], axis=1)
    return VideoLevel(
        video_ids=np.asarray(video_ids)[codes[finite]],
        X=X,
        split=segments["split"].to_numpy().astype(str)[finite],
    )


def _view_zero(features: np.ndarray | Sequence[np.ndarray], segments: pd.DataFrame) -> list[np.ndarray]:
    """The feature arrays, checked against `segments`, with view 0 of any [n, V, D] array (a view, no copy)."""
    arrays = [features] if isinstance(features, np.ndarray) else list(features)
    missing = [column for column in ("video_id", "split") if column not in segments.columns]
    if missing:
        raise ValueError(f"segments table lacks column(s) {missing}; has {list(segments.columns)}")
    for i, array in enumerate(arrays):
        if array.ndim not in (2, 3) or len(array) != len(segments):
            raise ValueError(
                f"feature array {i} has shape {array.shape}; expected [{len(segments)}, D] or "
                f"[{len(segments)}, views, D], row-aligned with the segments table"
            )
    return [array[:, 0] if array.ndim == 3 else array for array in arrays]


def _split_per_video(codes: np.ndarray, video_ids: pd.Index, split: np.ndarray) -> np.ndarray:
    unknown = sorted(set(np.unique(split.astype(str))) - set(SPLITS))
    if unknown:
        raise ValueError(f"segments table: split must be one of {SPLITS}, found {unknown}")
    per_video = pd.DataFrame({"code": codes, "split": split}).groupby("code")["split"]
    mixed = per_video.nunique() > 1
    if mixed.any():
        raise ValueError(
            f"segments table: video {video_ids[mixed.idxmax()]!r} has segments in several splits; "
            "the split is by video, regenerate segments.parquet"
        )
    return per_video.first().to_numpy().astype(str)


def video_representation(
    name: str,
    segments: pd.DataFrame,
    *,
    level: str = "video",
    audio_features: np.ndarray | None = None,
    video_features: np.ndarray | None = None,
    audio_embeddings: np.ndarray | None = None,
    video_embeddings: np.ndarray | None = None,
) -> VideoLevel:
    """The probe rows of one Table 2 representation (see `REPRESENTATIONS`), per video or per segment (`level`).

    `both` concatenates musicnn and R(2+1)D vectors; `cl_agg` is the mean of the audio and video embeddings
    (DESIGN: the aggregated vector). Arrays are row-aligned with `segments`; video features contribute view 0.
    """
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; choose one of {list(REPRESENTATIONS)}")
    if level not in LEVELS:
        raise ValueError(f"unknown probe level {level!r} (probe.level); choose one of {LEVELS}")
    given = {
        "audio_features": audio_features,
        "video_features": video_features,
        "audio_embeddings": audio_embeddings,
        "video_embeddings": video_embeddings,
    }
    needed, combine = REPRESENTATIONS[name]
    absent = [key for key in needed if given[key] is None]
    if absent:
        raise ValueError(f"representation {name!r} needs {list(needed)}; missing {absent}")
    arrays = [given[key] for key in needed]
    if combine == "mean" and arrays[0].shape[-1] != arrays[1].shape[-1]:
        raise ValueError(
            f"representation {name!r} averages {needed[0]} ({arrays[0].shape[-1]}-d) and {needed[1]} "
            f"({arrays[1].shape[-1]}-d), which must have the same size"
        )
    videos = (video_level if level == "video" else segment_level)(arrays, segments)
    if combine == "mean":
        half = arrays[0].shape[-1]
        videos = videos._replace(X=(videos.X[:, :half] + videos.X[:, half:]) / 2)
    return videos


def task_labels(
    task: str,
    video_ids: np.ndarray,
    videos: pd.DataFrame,
    tags: pd.DataFrame | None = None,
    top_k: int = 10,
    min_count: float = 0.0,
    train_ids: np.ndarray | None = None,
) -> TaskLabels:
    """Labels of `task` for the videos `video_ids`: genre from the metadata's `genre` column (videos without
    one are left out), tagging from `tags.tag_matrix` (videos outside the MSD-overlap set are left out), its
    top-k tags counted over the training videos `train_ids` (over every video when None)."""
    check_task(task)
    if "video_id" not in videos.columns:
        raise ValueError(f"metadata table lacks column 'video_id'; has {list(videos.columns)}")
    video_ids = np.asarray(video_ids)
    unknown = ~np.isin(video_ids, videos["video_id"].to_numpy())
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} video(s) with features are not in the metadata and get no label"
            f"{examples(video_ids[unknown])}",
            ProbeWarning,
            stacklevel=2,
        )
    if task == "genre":
        if "genre" not in videos.columns:
            raise ValueError(
                "metadata has no 'genre' column; the genre probe needs one (metadata CSV: genre)"
            )
        genre = videos.set_index("video_id")["genre"].reindex(video_ids).astype("string").str.strip()
        mask = (genre.notna() & (genre != "")).to_numpy()
        y = genre[mask].to_numpy(dtype=object)
        return TaskLabels(mask=mask, y=y, label_names=sorted(set(y)))
    if tags is None:
        raise ValueError("the tagging probe needs MSD tags; set dataset.msd_tags to a CSV or lastfm_tags.db")
    if "msd_id" not in videos.columns:
        raise ValueError(
            "metadata has no 'msd_id' column; the tagging probe needs one (metadata CSV: msd_id)"
        )
    matrix = tag_matrix(videos, tags, top_k=top_k, min_count=min_count, vocabulary_videos=train_ids)
    row = pd.Series(np.arange(len(matrix.video_ids)), index=matrix.video_ids)
    mask = np.isin(video_ids, matrix.video_ids)
    y = matrix.labels[row[video_ids[mask]].to_numpy()]
    return TaskLabels(mask=mask, y=y, label_names=list(matrix.tag_names))


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose one of {TASKS}")


def examples(ids: np.ndarray, n: int = 3) -> str:
    return f" (e.g. {', '.join(repr(str(i)) for i in ids[:n])})" if len(ids) else ""
