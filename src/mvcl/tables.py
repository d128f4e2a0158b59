"""The study's tables as CSV (long, one number per column) and as Markdown laid out like the paper."""

from __future__ import annotations

import math

import pandas as pd

from mvcl.provenance import footnote

# Display names of Table 2's representations (file names use the short keys).
REPRESENTATION_NAMES = {
    "musicnn": "musicnn",
    "r2plus1d": "R(2+1)D",
    "both": "musicnn+R(2+1)D",
    "cl_a": "CL audio",
    "cl_v": "CL video",
    "cl_agg": "CL aggregated",
}
TASK_NAMES = {"tagging": "Music tagging (MSD overlap)", "genre": "Genre classification"}


def table2(results: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """One row per (representation, task) from probe results keyed by (task, representation)."""
    rows = []
    for (task, representation), result in results.items():
        mean, std = result.get("mean", {}), result.get("std", {})
        rows.append(
            {
                "representation": representation,
                "task": task,
                "auc": mean.get("roc_auc", math.nan),
                "auc_std": std.get("roc_auc", math.nan),
                "f1": mean.get("f1", math.nan),
                "f1_std": std.get("f1", math.nan),
                "pr_auc": mean.get("pr_auc", math.nan),
                "pr_auc_std": std.get("pr_auc", math.nan),
                "n_train": result.get("n_train"),
                "n_test": result.get("n_test"),
                "repeats": result.get("repeats"),
            }
        )
    table = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(REPRESENTATION_NAMES)}
    return table.sort_values(
        ["task", "representation"],
        key=lambda column: column.map(order) if column.name == "representation" else column,
    ).reset_index(drop=True)


def _cell(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}"


def table2_markdown(table: pd.DataFrame, provenance: dict, configuration: str) -> str:
    """Rows: representations; per task a ROC-AUC and an F1 column (mean ± std over repeats), like Table 2."""
    tasks = [task for task in ("tagging", "genre") if task in set(table["task"])]
    header = ["Representation"] + [
        f"{TASK_NAMES[task]} {metric}" for task in tasks for metric in ("ROC-AUC", "F1")
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for representation, name in REPRESENTATION_NAMES.items():
        rows = table[table["representation"] == representation].set_index("task")
        if rows.empty:
            continue
        cells = [name]
        for task in tasks:
            row = rows.loc[task] if task in rows.index else None
            cells += [
                _cell(row["auc"], row["auc_std"]) if row is not None else "n/a",
                _cell(row["f1"], row["f1_std"]) if row is not None else "n/a",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    counts = table.groupby("task")[["n_train", "n_test"]].first()
    sizes = "; ".join(
        f"{task}: {int(r.n_train)} train / {int(r.n_test)} test videos"
        for task, r in counts.iterrows()
        if pd.notna(r.n_train)
    )
    return "\n".join(
        [
            "# Table 2: downstream probes (mean ± std over seeds)",
            "",
            *lines,
            "",
            f"CL rows use the `{configuration}` configuration. {sizes}.",
            "",
            f"{footnote(provenance)}",
            "",
        ]
    )
