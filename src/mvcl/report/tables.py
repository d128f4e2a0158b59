"""The study's tables as CSV (long, one number per column) and as Markdown laid out like the paper."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd

from mvcl.plan import RECALL_AT, parse_probe_key
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


def representation_name(key: str) -> str:
    """Display name of a row key: 'CL aggregated', or 'CL aggregated (clip_style)' beyond the study's rows."""
    representation, configuration = parse_probe_key(key)
    name = REPRESENTATION_NAMES.get(representation, representation)
    return f"{name} ({configuration})" if configuration else name


def table2(results: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """One row per (representation, task) from probe results keyed by (task, representation).

    A representation key `cl_x@name` is configuration `name`'s CL representation (the rows beyond the study); they
    follow the study's six rows, by configuration in the order given, and carry `configuration`.
    """
    rows = []
    for (task, representation), result in results.items():
        mean, std = result.get("mean", {}), result.get("std", {})
        rows.append(
            {
                "representation": representation,
                "configuration": parse_probe_key(representation)[1],
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
    configurations = list(dict.fromkeys(["", *table["configuration"]]))  # the study's rows first
    order = {name: i for i, name in enumerate(REPRESENTATION_NAMES)}
    rank = {
        key: (configurations.index(parse_probe_key(key)[1]), order.get(parse_probe_key(key)[0], 99))
        for key in table["representation"]
    }
    return table.sort_values(
        ["task", "representation"],
        key=lambda column: column.map(rank) if column.name == "representation" else column,
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
    for representation in table["representation"].drop_duplicates():  # table2's order
        rows = table[table["representation"] == representation].set_index("task")
        cells = [representation_name(representation)]
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
            f"CL rows use the `{configuration}` configuration unless another is named in brackets. {sizes}.",
            "",
            f"{footnote(provenance)}",
            "",
        ]
    )


def table1(metrics: dict[str, dict], study_configurations: list[str]) -> pd.DataFrame:
    """One row per configuration (study's first, in config order) plus a chance row, from retrieval results."""
    rows = []
    for name, result in metrics.items():
        row = {"configuration": name, "study": name in study_configurations, "pool": result["pool_size"]}
        for direction in ("a2v", "v2a"):
            row[f"median_rank_{direction}"] = result[f"median_rank_{direction}"]
            row[f"mean_rank_{direction}"] = result[f"mean_rank_{direction}"]
            for k in RECALL_AT:
                row[f"recall@{k}_{direction}"] = result[f"recall@{k}_{direction}"]
            row[f"full_median_rank_{direction}"] = result[f"full_median_rank_{direction}"]
        row["chance_median_rank"] = result["chance_median_rank"]
        row["full_pool"] = result["full_pool_size"]
        for direction in ("a2v", "v2a"):
            row[f"study_median_rank_{direction}"] = result.get(f"study_median_rank_{direction}", math.nan)
        row["n_test_segments"] = result["n_queries"]
        rows.append(row)
    table = pd.DataFrame(rows)
    table["order"] = [0 if study else 1 for study in table["study"]]
    table = table.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    if len(table):
        first = table.iloc[0]
        chance = {column: math.nan for column in table.columns}
        chance.update(
            configuration="chance",
            study=False,
            pool=first["pool"],
            full_pool=first["full_pool"],
            chance_median_rank=first["chance_median_rank"],
            median_rank_a2v=first["chance_median_rank"],
            median_rank_v2a=first["chance_median_rank"],
            full_median_rank_a2v=(first["full_pool"] + 1) / 2,
            full_median_rank_v2a=(first["full_pool"] + 1) / 2,
            n_test_segments=first["n_test_segments"],
        )
        for direction in ("a2v", "v2a"):
            for k in RECALL_AT:
                chance[f"recall@{k}_{direction}"] = min(k / first["pool"], 1.0)
            chance[f"mean_rank_{direction}"] = first["chance_median_rank"]
        table = pd.concat([table, pd.DataFrame([chance])], ignore_index=True)
    return table


def table1_markdown(table: pd.DataFrame, provenance: dict) -> str:
    """Median ranks both ways (correct, pooled and over the whole test set), recall@k, and the study's numbers."""
    header = [
        "Configuration",
        "MR a→v",
        "MR v→a",
        "R@1/5/10 a→v",
        "R@1/5/10 v→a",
        "MR a→v (all)",
        "MR v→a (all)",
        "study's MR",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in table.to_dict("records"):  # not itertuples: it renames columns such as recall@1_a2v
        row = SimpleNamespace(**record)
        name = f"{row.configuration} (study)" if row.study else row.configuration

        def recalls(direction: str, record: dict = record) -> str:
            return "/".join(f"{record[f'recall@{k}_{direction}']:.2f}" for k in RECALL_AT)

        study = record["study_median_rank_a2v"]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{row.median_rank_a2v:.1f}",
                    f"{row.median_rank_v2a:.1f}",
                    recalls("a2v"),
                    recalls("v2a"),
                    f"{row.full_median_rank_a2v:.1f}",
                    f"{row.full_median_rank_v2a:.1f}",
                    "n/a" if math.isnan(study) else f"{study:.1f}",
                ]
            )
            + " |"
        )
    first = table.iloc[0]
    return "\n".join(
        [
            "# Table 1: cross-modal median rank (lower is better)",
            "",
            *lines,
            "",
            f"Ranks among pools of {int(first['pool'])} test segments (chance: {first['chance_median_rank']:.1f}) "
            f"and among all {int(first['full_pool'])} test segments ('all'). 'study's MR' is the study's own "
            "computation on the same embeddings (an argsort index, not a rank: it stays near pool/2 for any model "
            "and reports one number for both directions).",
            "",
            footnote(provenance),
            "",
        ]
    )
