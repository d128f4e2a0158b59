"""Bidirectional contrastive loss (study section 3.3) and the bounds a projection head's output space allows.

With L2-normalised embeddings, s_ij = a_i · v_j is the cosine similarity of audio i and video j, and for
audio query i (the video direction is the same with s transposed)

    paper's formula (exclude_positive: true):   loss_i = -s_ii/τ + log Σ_{j≠i} exp(s_ij/τ)
    their code, standard InfoNCE (false):       loss_i = -s_ii/τ + log Σ_j   exp(s_ij/τ)

Each direction is the mean over the batch; the two directions are summed (their code) or averaged (CLIP).

Bounds (per direction, batch B, before `reduction`), used to read training curves:
- chance: every similarity equal. log(B) with the positive in the denominator, log(B - 1) without; τ drops out.
- floor, sigmoid outputs: every coordinate is >= 0, so every cosine lies in [0, 1]. The loss falls as s_ii
  rises and s_ij falls, so positives at 1 and negatives at 0 bound it from below:
  -1/τ + log(e^{1/τ} + (B - 1)) (or -1/τ + log(B - 1)); reached only when embedding_dim >= B. At τ = 1 and
  B = 1000 the summed floor is 11.8 against 13.8 at chance: the study's heads could barely learn (docs/design.md).
- floor, no activation: cosines lie in [-1, 1], but B unit vectors cannot all be at -1 from one another. With
  positives at 1 (a_i = v_i = u_i), Σ_{i≠j} u_i·u_j = |Σ u_i|² - B >= -B, so the mean negative is >= -1/(B-1),
  and by Jensen the log-sum-exp is smallest when every negative equals that mean: the regular simplex,
  s_ij = -1/(B - 1). That is the floor we report; it needs embedding_dim >= B - 1 to be reached (the tests
  check numerically that optimised embeddings approach it and never go below).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Reduction = Literal["sum", "mean"]


def contrastive_loss(
    audio_emb: torch.Tensor,
    video_emb: torch.Tensor,
    temperature: float | torch.Tensor,
    exclude_positive: bool,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Bidirectional InfoNCE over a batch of aligned pairs; `temperature` may be a learnable 0-d tensor."""
    batch = audio_emb.shape[0]
    if batch < 2:
        raise ValueError(f"contrastive loss needs at least 2 pairs per batch, got {batch}")
    logits = audio_emb @ video_emb.T / temperature  # [B, B]; row i: audio i vs every video
    if exclude_positive:
        positives = logits.diagonal()  # [B]
        diagonal = torch.eye(batch, dtype=torch.bool, device=logits.device)
        negatives = logits.masked_fill(diagonal, float("-inf"))  # [B, B], the positive removed
        loss_audio = (torch.logsumexp(negatives, dim=1) - positives).mean()  # audio → video
        loss_video = (torch.logsumexp(negatives, dim=0) - positives).mean()  # video → audio
    else:
        targets = torch.arange(batch, device=logits.device)  # [B]; the positive of row i is column i
        loss_audio = F.cross_entropy(logits, targets)
        loss_video = F.cross_entropy(logits.T, targets)
    total = loss_audio + loss_video
    return total if reduction == "sum" else total / 2


def _combine(per_direction: float, reduction: Reduction) -> float:
    """Both directions share the bound: 2x for sum, 1x for mean."""
    return 2 * per_direction if reduction == "sum" else per_direction


def chance_loss(batch_size: int, exclude_positive: bool, reduction: Reduction = "sum") -> float:
    """Loss when every similarity is equal (an untrained or collapsed head), for any τ."""
    candidates = batch_size - 1 if exclude_positive else batch_size
    return _combine(math.log(candidates), reduction)


def loss_floor(
    batch_size: int,
    temperature: float,
    output_activation: Literal["sigmoid", "none"],
    exclude_positive: bool,
    reduction: Reduction = "sum",
) -> float:
    """Lowest loss the head's output space allows (see the module docstring for the derivation)."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    negative = 0.0 if output_activation == "sigmoid" else -1.0 / (batch_size - 1)
    positive_logit, negative_logit = 1.0 / temperature, negative / temperature
    # log of the softmax denominator with every negative equal: log((B-1) e^{s_neg/τ} [+ e^{1/τ}])
    log_denominator = math.log(batch_size - 1) + negative_logit
    if not exclude_positive:
        log_denominator = float(np.logaddexp(log_denominator, positive_logit))
    return _combine(log_denominator - positive_logit, reduction)
