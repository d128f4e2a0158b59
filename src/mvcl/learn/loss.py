"""Bidirectional contrastive loss (study section 3.3) and the bounds a projection head's output space allows.

With L2-normalised embeddings, s_ij = a_i · v_j is the cosine similarity of audio i and video j, and for
audio query i (the video direction is the same with s transposed)

    paper's formula (exclude_positive: true):   loss_i = -s_ii/τ + log Σ_{j≠i} exp(s_ij/τ)
    their code, standard InfoNCE (false):       loss_i = -s_ii/τ + log Σ_j   exp(s_ij/τ)

Each direction is the mean over the batch; the two directions are summed (their code) or averaged (CLIP).

Its bounds (chance, and the floor a head's output space allows) are in `mvcl.learn.bounds`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvcl.learn.bounds import Reduction


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
