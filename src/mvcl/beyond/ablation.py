"""Beyond the study: the one-factor ablation, and how far each model got towards its loss floor.

Ablation. The study's configuration (`base`: sigmoid heads, τ = 1, positive excluded, one segment per video
and epoch, BatchNorm in the head) is changed ONE factor at a time. Each of config.yaml's `ablation.entries`
is an override of `base` in the same form as a configuration; `mvcl.plan.ablation_overrides` merges it onto base's own
override, so the rules train, rank and probe an entry exactly as a configuration (results/models/{name}/...),
and `ablation_table` gathers one row per entry beside the `base` row it departs from.

Loss floor. A contrastive loss cannot fall below the floor that the head's output space allows
(`mvcl.learn.bounds.loss_floor`), nor is a loss at chance (`mvcl.learn.bounds.chance_loss`) any sign of learning. The
record of a configuration sets its best validation loss between the two, from the bounds that `train_heads`
logged per epoch (history.csv: val_chance, val_floor at that epoch's τ), and adds both bounds at the
configured batch size, where the study's 1000-batch at τ = 1 leaves about 2 of 13.8 nats (docs/design.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from mvcl.learn.bounds import chance_loss, loss_floor
from mvcl.probe.intervals import metric_intervals
from mvcl.stats import DEFAULT_RESAMPLES


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


# Retrieval columns of results/ablation.csv (RetrievalRecord.flat() of results/metrics/{name}/retrieval.json):
# medians over replicates with their two-level intervals, and how many replicates learned.
RETRIEVAL_COLUMNS = (
    *(
        f"{figure}{suffix}"
        for figure in ("median_rank_a2v", "median_rank_v2a")
        for suffix in ("", "_ci_low", "_ci_high")
    ),
    "chance_median_rank",
    "recall@10_a2v",
    "recall@10_v2a",
    "full_median_rank_a2v",
    "full_median_rank_v2a",
    "full_chance_median_rank",
    "n_replicates",
    "replicates_learned",
)
LOSS_COLUMNS = (
    "loss_val_best",
    "loss_val_chance",
    "loss_val_floor",
    "loss_headroom_used",
    "loss_temperature",
)


def ablation_table(
    names: Iterable[str],
    changes: dict[str, str],
    retrieval: dict[str, dict],
    probes: dict[tuple[str, str], dict],
    floors: dict[str, dict],
    tasks: Iterable[str],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per ablation entry (the reference first): what changed, ranks, probe AUCs, loss bounds.

    `retrieval[name]` is RetrievalRecord.flat() (medians over replicates with two-level intervals); `probes`
    is keyed by (name, task) and holds the probe results of that entry's cl_agg representation, whose ROC-AUC
    gets Table 2's interval (`{task}_auc_ci_low/high`: replicates, then test videos).
    """
    rows = []
    for name in names:
        row: dict = {"name": name, "change": changes.get(name, "")}
        row.update({column: retrieval[name].get(column, math.nan) for column in RETRIEVAL_COLUMNS})
        for task in tasks:
            result = probes[(name, task)]
            row[f"{task}_auc"] = result.get("mean", {}).get("roc_auc", math.nan)
            auc = metric_intervals(result, f"{task}/cl_agg@{name}", resamples, seed)["roc_auc"]
            row[f"{task}_auc_ci_low"], row[f"{task}_auc_ci_high"] = auc.low, auc.high
            row[f"{task}_auc_std"] = result.get("std", {}).get("roc_auc", math.nan)
            row[f"{task}_repeats"] = result.get("repeats")
        row.update({column: floors[name].get(column, math.nan) for column in LOSS_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)
