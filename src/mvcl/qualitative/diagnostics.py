"""Diagnostics of a joint embedding space: why cross-modal retrieval works or fails.

All on unit vectors (the heads L2-normalise), test split, rows with finite embeddings only.

- Positive pairs are a segment's own audio and video embeddings; negative pairs are the audio of one segment
  and the video of a segment of ANOTHER video (segments of one video share the song, so they are not clean
  negatives). Retrieval can only work where positives score above negatives; `positive_negative_auc` is the
  probability that a random positive outscores a random negative (0.5 = chance, 1 = separable).
- Modality gap (Liang et al. 2022, "Mind the Gap"): the distance between the audio and the video centroids.
  A large gap means the two modalities live in separate regions, so every cross-modal cosine is low.
- Alignment and uniformity (Wang & Isola 2020, section 4.1): alignment = E ||f(a) - f(v)||^2 over positive
  pairs (lower: positives closer); uniformity = log E exp(-2 ||x - y||^2) over pairs of one modality (lower:
  spread more evenly over the sphere). Sigmoid outputs confine every vector to the positive orthant, which
  caps uniformity well above a spread-out sphere's (docs/design.md: all cosines in [0, 1]).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from mvcl.qualitative.neighbours import valid_test_rows
from mvcl.vectors import l2_normalise

# Pairs sampled for negatives and points sampled for uniformity: enough for 3 significant digits.
MAX_NEGATIVES = 200_000
MAX_UNIFORMITY_POINTS = 4_000


def test_embeddings(
    segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit audio and video embeddings of the usable test segments, and their video ids."""
    mask = valid_test_rows(segments, audio, video)
    if mask.sum() < 2:
        raise ValueError(f"only {int(mask.sum())} test segment(s) with finite embeddings; need at least 2")
    return l2_normalise(audio[mask]), l2_normalise(video[mask]), segments.loc[mask, "video_id"].to_numpy()


def pair_similarities(
    audio: np.ndarray,
    video: np.ndarray,
    video_ids: np.ndarray,
    seed: int,
    max_negatives: int = MAX_NEGATIVES,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of positive pairs [n] and of negative pairs (audio i, video j of another video).

    Every negative pair is used when there are at most `max_negatives`, else a seeded uniform sample of them.
    """
    positives = np.einsum("nd,nd->n", audio, video)
    n = len(audio)
    if n * n <= max_negatives:
        rows, columns = np.divmod(np.arange(n * n), n)
    else:
        rng = np.random.default_rng(seed)
        rows, columns = rng.integers(0, n, size=(2, max_negatives))
    keep = video_ids[rows] != video_ids[columns]
    rows, columns = rows[keep], columns[keep]
    return positives, _paired_dot(audio, video, rows, columns)


def _paired_dot(
    left: np.ndarray, right: np.ndarray, rows: np.ndarray, columns: np.ndarray, chunk: int = 8192
) -> np.ndarray:
    """left[rows] . right[columns] row by row, in chunks (200k pairs of 1506-d rows would need 2.4 GB)."""
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        out[part] = np.einsum("nd,nd->n", left[rows[part]], right[columns[part]])
    return out


def separation_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a random positive pair scores above a random negative pair): 0.5 = chance, 1 = fully separable."""
    if not positives.size or not negatives.size:
        return float("nan")
    labels = np.concatenate([np.ones(positives.size), np.zeros(negatives.size)])
    return float(roc_auc_score(labels, np.concatenate([positives, negatives])))


def alignment(audio: np.ndarray, video: np.ndarray) -> float:
    """Wang & Isola's alignment loss: mean squared distance between positive pairs (0 = identical)."""
    return float(np.mean(np.sum((audio - video) ** 2, axis=1)))


def uniformity(
    vectors: np.ndarray, seed: int, t: float = 2.0, max_points: int = MAX_UNIFORMITY_POINTS
) -> float:
    """Wang & Isola's uniformity loss: log of the mean Gaussian potential exp(-t ||x - y||^2) over pairs x != y.

    0 when all points coincide; about -4 (t = 2) for points spread uniformly over a high-dimensional sphere.
    """
    if len(vectors) > max_points:
        vectors = vectors[np.random.default_rng(seed).choice(len(vectors), max_points, replace=False)]
    n = len(vectors)
    squared = np.maximum(2.0 - 2.0 * (vectors @ vectors.T), 0.0)  # unit vectors: ||x - y||^2 = 2 - 2 x.y
    potentials = -t * squared.astype(np.float64)
    np.fill_diagonal(
        potentials, -np.inf
    )  # pairs x != y only; the matrix is symmetric, so the mean is the same
    return float(logsumexp(potentials) - np.log(n * (n - 1)))


def modality_gap(audio: np.ndarray, video: np.ndarray) -> float:
    """Euclidean distance between the audio and the video centroid (0 = the modalities share a centre)."""
    return float(np.linalg.norm(audio.mean(axis=0) - video.mean(axis=0)))


def diagnose(
    segments: pd.DataFrame, audio: np.ndarray, video: np.ndarray, seed: int
) -> dict[str, float | int]:
    """Every diagnostic of one configuration's test embeddings, as one flat record."""
    audio, video, video_ids = test_embeddings(segments, audio, video)
    positives, negatives = pair_similarities(audio, video, video_ids, seed)
    return {
        "test_segments": int(len(audio)),
        "test_videos": int(len(np.unique(video_ids))),
        "positive_cosine_mean": float(positives.mean()),
        "negative_cosine_mean": float(negatives.mean()) if negatives.size else float("nan"),
        "positive_negative_auc": separation_auc(positives, negatives),
        "modality_gap": modality_gap(audio, video),
        "alignment": alignment(audio, video),
        "uniformity_audio": uniformity(audio, seed),
        "uniformity_video": uniformity(video, seed),
    }


def merge_records(records: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per configuration from any number of records per configuration (e.g. diagnostics, loss floor).

    Records of one configuration are merged key by key; a key that two of them give is an error (one
    source of truth per column). Configurations keep the order given.
    """
    rows = []
    for configuration, parts in records.items():
        row: dict = {"configuration": configuration}
        for part in parts:
            clashes = sorted(set(row) & set(part))
            if clashes:
                raise ValueError(
                    f"configuration '{configuration}': column(s) {', '.join(clashes)} given twice"
                )
            row.update(part)
        rows.append(row)
    return pd.DataFrame(rows)


def embedding_map(
    manifest: pd.DataFrame,
    segments: pd.DataFrame,
    audio: np.ndarray,
    video: np.ndarray,
    seed: int,
    max_segments: int = 2000,
) -> pd.DataFrame:
    """2-D t-SNE of the test segments' audio and video embeddings together (one point per segment and modality).

    At most `max_segments` segments (a seeded sample) keep t-SNE within minutes on a CPU. Columns: x, y,
    modality (audio/video), video_id, segment, genre ("" when unknown).
    """
    from sklearn.manifold import TSNE

    mask = valid_test_rows(segments, audio, video)
    rows = np.flatnonzero(mask)
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} test segment(s) with finite embeddings; a map needs at least 2")
    if len(rows) > max_segments:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_segments, replace=False))
    points = np.concatenate([l2_normalise(audio[rows]), l2_normalise(video[rows])])
    perplexity = float(np.clip((len(points) - 1) / 3, 1.0, 30.0))  # t-SNE needs perplexity < points
    coordinates = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        points
    )
    table = pd.concat([segments.iloc[rows][["video_id", "segment"]]] * 2, ignore_index=True)
    table.insert(0, "modality", np.repeat(["audio", "video"], len(rows)))
    table.insert(0, "y", coordinates[:, 1])
    table.insert(0, "x", coordinates[:, 0])
    genres = manifest.set_index("video_id")["genre"] if "genre" in manifest.columns else pd.Series(dtype=str)
    table["genre"] = table["video_id"].map(genres).fillna("").astype(str)
    return table


def read_coupling_sweep(retrieval: dict) -> pd.DataFrame:
    """One row per (configuration, demo.av_coupling) from retrieval.json records, sorted by both.

    Keys are couplings (one configuration, named by the record's `configuration`, else "") or (configuration,
    coupling) pairs. Each record needs median_rank_a2v, median_rank_v2a and chance_median_rank (of the same
    pools); the intervals (`_ci_low`, `_ci_high`) and p-values against chance are carried when present.
    """
    needed = ("median_rank_a2v", "median_rank_v2a", "chance_median_rank")
    optional = [
        f"median_rank_{direction}{suffix}"
        for direction in ("a2v", "v2a")
        for suffix in ("_ci_low", "_ci_high", "_chance_p")
    ]
    rows = []
    for key, record in retrieval.items():
        configuration, coupling = key if isinstance(key, tuple) else (record.get("configuration", ""), key)
        missing = [name for name in needed if name not in record]
        if missing:
            raise KeyError(f"retrieval record of av_coupling {coupling}: missing key(s) {', '.join(missing)}")
        row = {"configuration": configuration, "av_coupling": float(coupling)}
        row.update({name: float(record[name]) for name in needed})
        row.update({name: float(record.get(name, np.nan)) for name in optional})
        row["test_videos"] = record.get("n_videos", np.nan)
        rows.append(row)
    order = list(dict.fromkeys(row["configuration"] for row in rows))
    table = pd.DataFrame(rows)
    table["order"] = table["configuration"].map(order.index)
    return table.sort_values(["order", "av_coupling"], ignore_index=True).drop(columns="order")
