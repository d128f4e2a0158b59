"""Table 2: probe ROC-AUC and F1 per task and representation, as CSV (long) and as Markdown like the paper."""

from __future__ import annotations

import math

import pandas as pd

from mvcl.plan import parse_probe_key
from mvcl.probe.intervals import metric_intervals, small_collection_notes, small_labels
from mvcl.provenance import footnote
from mvcl.report.names import REPRESENTATION_NAMES, TASK_NAMES, representation_name
from mvcl.stats import DEFAULT_RESAMPLES, Interval


def table2(
    results: dict[tuple[str, str], dict], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """One row per (representation, task) from probe results keyed by (task, representation).

    Each figure (mean over seeds) has a 95% bootstrap interval over the test videos beside it (`auc_ci_low`,
    `auc_ci_high`, ...; `resamples` draws, seeded), the spread over seeds its own column (`auc_std`, ...), and the
    draws left out as undefined (`auc_ci_undefined`, ...). `small_labels` lists the classes or tags with fewer
    than 2 test videos, `excluded_labels` those left out of the macro averages with the reason (no training
    video, none in the test split), `f1_threshold_fallbacks` how many tags kept the F1 threshold 0.5 for want
    of a positive validation video (`f1_fallback_tags` names them). A representation key `cl_x@name` is
    configuration `name`'s CL representation (the rows
    beyond the study); they follow the study's six rows, by configuration in the order given.
    """
    rows = []
    for (task, representation), result in results.items():
        name = f"{task}/{representation}"
        mean, std = result.get("mean", {}), result.get("std", {})
        intervals = metric_intervals(result, name, resamples, seed)
        row = {
            "representation": representation,
            "configuration": parse_probe_key(representation)[1],
            "task": task,
        }
        for metric, column in (("roc_auc", "auc"), ("f1", "f1"), ("pr_auc", "pr_auc")):
            found = intervals[metric]
            row[column] = mean.get(metric, math.nan)
            row[f"{column}_ci_low"], row[f"{column}_ci_high"] = found.low, found.high
            row[f"{column}_std"] = std.get(metric, math.nan)
            row[f"{column}_ci_undefined"] = found.undefined
        row.update(
            n_train=result.get("n_train"),
            n_test=result.get("n_test"),
            n_test_videos=result.get("n_test_videos", result.get("n_test")),
            resamples=resamples,
            repeats=result.get("repeats"),
            replicates=result.get("replicates", 1),
            level=result.get("level", "video"),
            small_labels="; ".join(small_labels(result, name)),
            excluded_labels="; ".join(
                f"{label} ({why})" for label, why in result.get("excluded", {}).items()
            ),
            f1_threshold_fallbacks=len(result.get("threshold_fallbacks", [])),
            f1_fallback_tags="; ".join(result.get("threshold_fallbacks", [])),
            n_labels=len(result.get("labels", [])),
        )
        rows.append(row)
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


def _cell(mean: float, low: float, high: float) -> str:
    """'0.83 [0.71, 0.92]': the seed-mean figure and its interval over test videos."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return Interval(float(mean), float(low), float(high), 0, 0).text()


def table2_notes(table: pd.DataFrame) -> list[str]:
    """Warnings for Table 2: a task with fewer than 30 test videos, classes or tags with fewer than 2."""
    first = table.groupby("task", sort=False).first()
    sizes = {task: int(n) for task, n in first["n_test_videos"].items()}
    small = {
        task: [label for label in str(row.small_labels).split("; ") if label]
        for task, row in first.iterrows()
    }
    return small_collection_notes(sizes, small)


def _which_rows(same: pd.DataFrame, rows: pd.DataFrame) -> str:
    return "every row" if len(same) == len(rows) else ", ".join(map(representation_name, same.representation))


def left_out_notes(table: pd.DataFrame) -> list[str]:
    """Classes or tags left out of the macro averages, and tagging F1 thresholds that fell back to 0.5, per task
    (rows that agree are told together)."""
    notes = []
    for task, rows in table.groupby("task", sort=False):
        for excluded, same in rows.groupby("excluded_labels", sort=False):
            if excluded:
                notes.append(
                    f"{TASK_NAMES[task]} ({_which_rows(same, rows)}): left out of the macro averages: {excluded}"
                )
        fallbacks = rows[rows["f1_threshold_fallbacks"] > 0]
        for (count, tags, labels), same in fallbacks.groupby(
            ["f1_threshold_fallbacks", "f1_fallback_tags", "n_labels"], sort=False
        ):
            notes.append(
                f"{TASK_NAMES[task]} F1 ({_which_rows(same, rows)}): {count} of {labels} tags had no positive validation "
                f"video, so their threshold is 0.5, not one chosen on validation ({tags.replace('; ', ', ')})"
            )
    return notes


def table2_markdown(table: pd.DataFrame, provenance: dict, configuration: str) -> str:
    """Rows: representations; per task a ROC-AUC and an F1 column (mean over seeds [95% interval]), like Table 2."""
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
                _cell(row["auc"], row["auc_ci_low"], row["auc_ci_high"]) if row is not None else "n/a",
                _cell(row["f1"], row["f1_ci_low"], row["f1_ci_high"]) if row is not None else "n/a",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    counts = table.groupby("task")[["n_train", "n_test_videos"]].first()
    sizes = "; ".join(
        f"{task}: {int(r.n_train)} train rows, {int(r.n_test_videos)} test videos"
        for task, r in counts.iterrows()
        if pd.notna(r.n_train)
    )
    undefined = table[[f"{metric}_ci_undefined" for metric in ("auc", "f1", "pr_auc")]].to_numpy().max()
    left_out = (
        f" Up to {int(undefined)} draws per interval held a single class and were left out "
        "(table2.csv: *_ci_undefined)."
        if undefined
        else ""
    )
    resamples = int(table["resamples"].iloc[0])
    notes = table2_notes(table)
    left_out_lines = left_out_notes(table)
    return "\n".join(
        [
            "# Table 2: downstream probes (mean over seeds [95% interval over test videos])",
            "",
            *lines,
            "",
            f"CL rows use the `{configuration}` configuration unless another is named in brackets. {sizes}. "
            f"Each interval is a percentile bootstrap over the test videos ({resamples} draws) of the mean over "
            f"{int(table['repeats'].max())} seeds; the spread over seeds is in table2.csv (*_std). A CL row is "
            f"probed on each of its configuration's {int(table['replicates'].max())} training replicates "
            "(the seeds spread over them; table2.csv: replicates) and its interval draws replicates, then test "
            f"videos.{left_out}",
            *(["", *(f"**Left out:** {note}." for note in left_out_lines)] if left_out_lines else []),
            *(["", *(f"**Small collection:** {note}." for note in notes)] if notes else []),
            "",
            f"{footnote(provenance)}",
            "",
        ]
    )
