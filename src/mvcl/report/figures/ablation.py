"""The ablation as a picture: what each change of the study's choices does to ranks, probes, loss."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mvcl.report.names import TASK_NAMES


def plot_ablation(table: pd.DataFrame, out: str | Path) -> None:
    """Three panels over the rows of results/ablation.csv (the reference `base` first, drawn as a line):
    median rank both ways over replicates with its two-level 95% interval (chance dotted), cl_agg probe ROC-AUC per task (95% interval over replicates and test videos, 0.5 dotted), and
    the loss: how far below chance the best validation loss fell, against how far the floor would allow."""
    names = table["name"].tolist()
    labels = [
        f"{name}\n({change})" if change else name for name, change in zip(names, _changes(table), strict=True)
    ]
    y = np.arange(len(names))[::-1]  # the reference on top
    tasks = [task for task in TASK_NAMES if f"{task}_auc" in table]
    figure, axes = plt.subplots(1, 3, figsize=(15, 0.55 * len(names) + 2.2), sharey=True)

    ranks = axes[0]
    height = 0.38
    for offset, direction, colour in ((height / 2, "a2v", "tab:blue"), (-height / 2, "v2a", "tab:orange")):
        values = table[f"median_rank_{direction}"].to_numpy(float)
        errors = np.abs(
            np.stack(
                [
                    values - table[f"median_rank_{direction}_ci_low"],
                    table[f"median_rank_{direction}_ci_high"] - values,
                ]
            )
        )
        ranks.barh(
            y + offset,
            values,
            height,
            xerr=errors,
            capsize=2,
            color=colour,
            label=f"{direction[0]}→{direction[-1]}",
        )
        ranks.axvline(values[0], color=colour, linewidth=0.8, linestyle="--")
    ranks.axvline(table["chance_median_rank"].iloc[0], color="black", linestyle=":", label="chance")
    ranks.set_xlabel("median rank over replicates, 95% interval (lower is better)")
    _legend_above(ranks)

    probes = axes[1]
    height = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        offset = 0.4 - height * (i + 0.5)
        values = table[f"{task}_auc"].to_numpy(float)
        probes.barh(
            y + offset,
            values,
            height,
            xerr=np.abs(
                np.stack([values - table[f"{task}_auc_ci_low"], table[f"{task}_auc_ci_high"] - values])
            ),
            color=plt.cm.tab10(i + 2),
            capsize=2,
            label=TASK_NAMES[task],
        )
        probes.axvline(values[0], color=plt.cm.tab10(i + 2), linewidth=0.8, linestyle="--")
    probes.axvline(0.5, color="black", linestyle=":", label="chance")
    probes.set_xlim(0.4, 1.0)
    probes.set_xlabel("probe ROC-AUC of CL aggregated, 95% interval")
    _legend_above(probes)

    loss = axes[2]
    possible = (table["loss_val_chance"] - table["loss_val_floor"]).to_numpy(float)
    reached = (table["loss_val_chance"] - table["loss_val_best"]).to_numpy(float)
    loss.barh(y, possible, 0.7, color="lightgrey", label="chance − floor (possible)")
    loss.barh(y, reached, 0.35, color="tab:green", label="chance − best val loss (reached)")
    loss.set_xscale("symlog", linthresh=1.0)
    loss.set_xlabel("validation loss below chance (nats, symlog)")
    _legend_above(loss)

    ranks.set_yticks(y)
    ranks.set_yticklabels(labels, fontsize=8)
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("One factor at a time away from the study's choices (dashed: base)", fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _legend_above(axis: plt.Axes) -> None:
    axis.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)


def _changes(table: pd.DataFrame) -> list[str]:
    if "change" not in table:
        return [""] * len(table)
    return ["" if pd.isna(change) else str(change) for change in table["change"]]
