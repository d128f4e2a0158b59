"""RQ1: each contrastive representation against the frozen features it was learned from (results/rq1.csv)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mvcl.plan import parse_probe_key
from mvcl.probe.intervals import compare
from mvcl.provenance import footnote
from mvcl.report.names import TASK_NAMES, representation_name
from mvcl.stats import DEFAULT_RESAMPLES, Interval

# Frozen counterparts in RQ1's sentences.
BASELINE_NAMES = {
    "musicnn": "the musicnn features",
    "r2plus1d": "the R(2+1)D features",
    "both": "the concatenated features",
}


def rq1(
    results: dict[tuple[str, str], dict],
    pairs: Sequence[tuple[str, str, str]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """RQ1: per (task, CL representation, frozen baseline) the ROC-AUC difference, paired over test videos."""
    rows = []
    for task, representation, baseline in pairs:
        comparison, auc, baseline_auc = compare(
            results[(task, representation)],
            results[(task, baseline)],
            (f"{task}/{representation}", f"{task}/{baseline}"),
            "roc_auc",
            resamples,
            seed,
        )
        difference = comparison.difference
        row = {
            "task": task,
            "representation": representation,
            "configuration": parse_probe_key(representation)[1],
            "baseline": baseline,
            "auc": auc,
            "baseline_auc": baseline_auc,
            "difference": difference.value,
            "ci_low": difference.low,
            "ci_high": difference.high,
            "p_value": comparison.p_value,
            "n_test_videos": difference.n_videos,
            "resamples": resamples,
            "undefined": difference.undefined,
        }
        row["sentence"] = rq1_sentence(row)
        rows.append(row)
    return pd.DataFrame(rows)


def rq1_sentence(row: dict) -> str:
    """'CL aggregated is worse than the concatenated features by 0.04 [0.01, 0.07] (p = 0.003, 17 test videos).'"""
    name = representation_name(row["representation"])
    baseline = BASELINE_NAMES.get(row["baseline"], representation_name(row["baseline"]))
    task = {"tagging": "music tagging (MSD overlap)", "genre": "genre classification"}[row["task"]]
    d, low, high = row["difference"], row["ci_low"], row["ci_high"]
    if not all(math.isfinite(value) for value in (d, low, high)):
        return f"{name} and {baseline} cannot be compared on {task}: no test video with a defined AUC."
    evidence = f"(p = {row['p_value']:.3g}, {row['n_test_videos']} test videos)"
    if low > 0 or high < 0:
        verdict, size, bounds = ("better", d, (low, high)) if low > 0 else ("worse", -d, (-high, -low))
        return (
            f"{name} is {verdict} than {baseline} at {task} by {size:.2f} "
            f"[{bounds[0]:.2f}, {bounds[1]:.2f}] ROC-AUC {evidence}."
        )
    return (
        f"{name} and {baseline} do not differ clearly at {task}: {name} − {baseline.removeprefix('the ')} = "
        f"{d:+.2f} [{low:+.2f}, {high:+.2f}] ROC-AUC {evidence}."
    )


def rq1_markdown(table: pd.DataFrame, provenance: dict) -> str:
    """RQ1's comparisons as a table and one sentence each."""
    header = ["Task", "CL representation", "Frozen baseline", "ROC-AUC (CL − frozen)", "p", "test videos"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        difference = Interval(row["difference"], row["ci_low"], row["ci_high"], 0, 0)
        lines.append(
            "| "
            + " | ".join(
                [
                    TASK_NAMES[row["task"]],
                    representation_name(row["representation"]),
                    representation_name(row["baseline"]),
                    difference.text(),
                    f"{row['p_value']:.3g}",
                    str(row["n_test_videos"]),
                ]
            )
            + " |"
        )
    resamples = int(table["resamples"].iloc[0]) if len(table) else DEFAULT_RESAMPLES
    return "\n".join(
        [
            "# RQ1: does contrastive learning beat the frozen features it starts from?",
            "",
            *lines,
            "",
            *(f"- {sentence}" for sentence in table["sentence"]),
            "",
            f"Differences of the probes' ROC-AUC (mean over seeds), each pair scored on the same test videos; 95% "
            f"interval and two-sided p-value from a paired bootstrap over those videos ({resamples} draws).",
            "",
            footnote(provenance),
            "",
        ]
    )
