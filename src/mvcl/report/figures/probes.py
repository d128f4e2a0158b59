"""Table 2 as a picture: ROC-AUC and F1 per representation and task, with the spread over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mvcl.report.tables import REPRESENTATION_NAMES, TASK_NAMES


def plot_probes(table: pd.DataFrame, out: str | Path) -> None:
    tasks = [task for task in ("tagging", "genre") if task in set(table["task"])]
    figure, axes = plt.subplots(1, 2 * len(tasks), figsize=(4.2 * 2 * len(tasks), 3.8), squeeze=False)
    representations = [name for name in REPRESENTATION_NAMES if name in set(table["representation"])]
    colours = plt.cm.tab10(np.arange(len(representations)))
    for column, (task, metric) in enumerate((task, metric) for task in tasks for metric in ("auc", "f1")):
        axis = axes[0, column]
        rows = table[table["task"] == task].set_index("representation").reindex(representations)
        axis.bar(
            np.arange(len(representations)),
            rows[metric].to_numpy(dtype=float),
            yerr=rows[f"{metric}_std"].to_numpy(dtype=float),
            color=colours,
            capsize=3,
        )
        if metric == "auc":
            axis.axhline(0.5, color="black", linestyle=":", linewidth=1, label="chance")
            axis.legend(loc="lower right", fontsize=8)
        axis.set_xticks(np.arange(len(representations)))
        axis.set_xticklabels(
            [REPRESENTATION_NAMES[name] for name in representations], rotation=40, ha="right"
        )
        axis.set_ylim(0, 1)
        axis.set_title(f"{TASK_NAMES[task]}\n{'ROC-AUC' if metric == 'auc' else 'macro F1'}", fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
