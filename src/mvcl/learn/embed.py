"""Embeddings of every segment row with trained heads (eval mode, video view 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mvcl.learn.batches import Features, as_views, split_rows, view_zero
from mvcl.learn.model import ContrastiveModel
from mvcl.vectors import finite_rows


@torch.no_grad()
def embed(
    model: ContrastiveModel,
    audio_features: np.ndarray,
    video_features: np.ndarray,
    device: torch.device | str,
    batch: int = 4096,
    segments: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row-aligned embeddings (eval mode, video view 0): audio [n, d], video [n, d], float32.

    Rows with non-finite features get NaN embeddings, so retrieval and probes must drop them. The temporal
    model needs `segments` (video_id, segment) to put each video's segments in sequence.
    """
    video_features, device = as_views(video_features), torch.device(device)
    model = model.to(device).eval()
    n = len(audio_features)
    audio_emb = np.full((n, model.embedding_dim), np.nan, dtype=np.float32)
    video_emb = np.full((n, model.embedding_dim), np.nan, dtype=np.float32)
    keep = finite_rows(audio_features, video_features)
    features = Features(audio_features, video_features, device)
    if model.temporal:
        if segments is None:
            raise ValueError("embed: the temporal model needs `segments` to order each video's segments")
        everything = segments.assign(split="all")
        table = split_rows(everything, keep, "all", model.segments_per_video).slots  # [videos, S] rows
        per_chunk = max(1, batch // model.segments_per_video)
        for start in range(0, len(table), per_chunk):
            slots = table[start : start + per_chunk]
            audio, video, present = features.sequences(slots, view_zero)
            audio_out, video_out = model(audio, video, present)  # [N, S, d]
            rows = slots[slots >= 0]  # table order, as audio_out[present]
            audio_emb[rows] = audio_out[present].cpu().numpy()
            video_emb[rows] = video_out[present].cpu().numpy()
        return audio_emb, video_emb
    rows = np.flatnonzero(keep)
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        audio_out, video_out = model(*features.flat(part, view_zero(part)))  # [B, d]
        audio_emb[part], video_emb[part] = audio_out.cpu().numpy(), video_out.cpu().numpy()
    return audio_emb, video_emb
