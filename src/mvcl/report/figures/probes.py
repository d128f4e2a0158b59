"""Table 2 as a picture: ROC-AUC and F1 per representation and task with 95% intervals over test videos, and
RQ1's paired differences of each CL representation from its frozen counterpart."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mvcl.report.names import REPRESENTATION_NAMES, TASK_NAMES, representation_name


def _error_bars(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[2, n] distances below and above each value (0 where the interval is undefined)."""
    return np.nan_to_num(np.stack([values - low, high - values]), nan=0.0).clip(min=0.0)


def plot_probes(table: pd.DataFrame, out: str | Path, rq1: pd.DataFrame | None = None) -> None:
    """A grid with one row per task: ROC-AUC, macro F1 and (with `rq1`) RQ1's differences, in columns."""
    tasks = [task for task in ("tagging", "genre") if task in set(table["task"])]
    with_rq1 = rq1 is not None and bool(set(rq1["task"]) & set(tasks))
    widths = [1.0, 1.0, 1.6] if with_rq1 else [1.0, 1.0]  # RQ1's labels name two representations each
    figure, axes = plt.subplots(
        len(tasks),
        len(widths),
        figsize=(4.0 * sum(widths), 3.9 * len(tasks)),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
        layout="constrained",  # spaces each column by its own labels (tight_layout spaces all by the widest)
    )
    representations = [name for name in REPRESENTATION_NAMES if name in set(table["representation"])]
    colours = plt.cm.tab10(np.arange(len(representations)))
    for (row, task), (column, metric) in itertools.product(enumerate(tasks), enumerate(("auc", "f1"))):
        axis = axes[row, column]
        rows = table[table["task"] == task].set_index("representation").reindex(representations)
        values = rows[metric].to_numpy(dtype=float)
        axis.bar(
            np.arange(len(representations)),
            values,
            yerr=_error_bars(
                values,
                rows[f"{metric}_ci_low"].to_numpy(dtype=float),
                rows[f"{metric}_ci_high"].to_numpy(dtype=float),
            ),
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
    for row, task in enumerate(tasks if with_rq1 else []):
        axis = axes[row, 2]
        rows = rq1[rq1["task"] == task].reset_index(drop=True)
        if rows.empty:
            axis.set_axis_off()
            continue
        values = rows["difference"].to_numpy(dtype=float)
        positions = np.arange(len(rows))[::-1]
        axis.errorbar(
            values,
            positions,
            xerr=_error_bars(
                values, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float)
            ),
            fmt="o",
            color="black",
            capsize=3,
        )
        axis.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        axis.set_yticks(positions)
        axis.set_yticklabels(
            [
                f"{representation_name(row.representation)} − {representation_name(row.baseline)}"
                for row in rows.itertuples()
            ],
            fontsize=8,
        )
        axis.set_xlabel("ROC-AUC difference (95% paired interval)", fontsize=9)
        axis.set_title(f"RQ1: {TASK_NAMES[task]}\nCL minus frozen", fontsize=10)
    figure.savefig(out, dpi=110)
    plt.close(figure)
