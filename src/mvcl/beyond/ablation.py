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

from mvcl.probe.intervals import metric_intervals
from mvcl.stats import DEFAULT_RESAMPLES

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
