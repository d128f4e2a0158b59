"""The bounds of the bidirectional contrastive loss (`mvcl.learn.loss`), used to read training curves.

Torch-free: the ablation table reads its records without torch; the train job writes them (loss_floor_record).

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
import pandas as pd

Reduction = Literal["sum", "mean"]


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


def batch_bounds(settings: dict, segments_per_video: int) -> tuple[int, float, float]:
    """(pairs, chance, floor) of one training batch of the configured size, at the initial τ.

    A flat batch holds `training.batch_size` segment pairs; a temporal batch holds batch_size // S videos
    (at least 2), whose segment loss is joined by `video_loss_weight` times the loss over their video pairs.
    """
    model, loss, batch = settings["model"], settings["loss"], settings["training"]["batch_size"]
    args = {"exclude_positive": loss["exclude_positive"], "reduction": loss["reduction"]}
    tau, activation = loss["temperature"], model["output_activation"]
    temporal = model.get("temporal", {})
    if not temporal.get("enabled", False):
        return batch, chance_loss(batch, **args), loss_floor(batch, tau, activation, **args)
    videos = max(2, batch // segments_per_video)
    pairs, weight = videos * segments_per_video, temporal["video_loss_weight"]
    chance = chance_loss(pairs, **args) + weight * chance_loss(videos, **args)
    floor = loss_floor(pairs, tau, activation, **args) + weight * loss_floor(videos, tau, activation, **args)
    return pairs, chance, floor


def loss_floor_record(history: pd.DataFrame, settings: dict, segments_per_video: int) -> dict[str, float]:
    """Best validation loss against the chance loss and the loss floor (one flat record, `loss_` columns).

    `headroom` = chance − floor: how far the loss could fall at all; `headroom_used` = (chance − best) /
    headroom: the share of it the model used (0 = chance, 1 = at the floor). Both at the best epoch's τ.
    """
    missing = [c for c in ("epoch", "val_loss", "val_chance", "val_floor", "temperature") if c not in history]
    if missing:
        raise ValueError(f"history lacks column(s) {missing}; retrain with the current mvcl.learn.train")
    if history.empty or not history["val_loss"].notna().any():
        raise ValueError("history holds no epoch with a validation loss")
    best = history.loc[history["val_loss"].idxmin()]
    chance, floor, reached = float(best["val_chance"]), float(best["val_floor"]), float(best["val_loss"])
    headroom = chance - floor
    pairs, batch_chance, batch_floor = batch_bounds(settings, segments_per_video)
    return {
        "loss_best_epoch": int(best["epoch"]),
        "loss_epochs": len(history),
        "loss_temperature": float(best["temperature"]),
        "loss_val_best": reached,
        "loss_val_chance": chance,
        "loss_val_floor": floor,
        "loss_headroom": headroom,
        "loss_headroom_used": (chance - reached) / headroom if headroom > 0 else math.nan,
        "loss_batch_pairs": pairs,
        "loss_batch_chance": batch_chance,
        "loss_batch_floor": batch_floor,
    }
