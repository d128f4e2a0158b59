"""RQ1: each contrastive representation against the frozen features it was learned from (results/rq1.csv)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mvcl.plan import parse_probe_key
from mvcl.probe.intervals import compare
from mvcl.provenance import footnote
from mvcl.report.names import TASK_NAMES, representation_name
from mvcl.retrieval import RetrievalRecord
from mvcl.stats import DEFAULT_RESAMPLES, Interval, p_text

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
    heads: dict[str, RetrievalRecord] | None = None,
) -> pd.DataFrame:
    """RQ1: per (task, CL representation, frozen baseline) the ROC-AUC difference, paired over test videos and
    over the CL row's training replicates.

    `heads[configuration]` ("" = the study's CL rows) is that configuration's retrieval record: whether its
    contrastive heads learned at all (replicates beating chance), so "CL did not help" can be told from "CL
    did not train"."""
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
            "n_replicates": difference.n_replicates,
            "resamples": resamples,
            "undefined": difference.undefined,
        }
        record = (heads or {}).get(row["configuration"])
        row["heads_learned"] = math.nan if record is None else record.learned
        row["heads_replicates"] = math.nan if record is None else len(record.replicates)
        row["heads_chance_p"] = math.nan if record is None else max(record.chance_p.values())
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
    evidence = f"(p = {p_text(row['p_value'])}, {row['n_test_videos']} test videos)"
    if low > 0 or high < 0:
        verdict, size, bounds = ("better", d, (low, high)) if low > 0 else ("worse", -d, (-high, -low))
        sentence = (
            f"{name} is {verdict} than {baseline} at {task} by {size:.2f} "
            f"[{bounds[0]:.2f}, {bounds[1]:.2f}] ROC-AUC {evidence}."
        )
    else:
        sentence = (
            f"{name} and {baseline} do not differ clearly at {task}: {name} − {baseline.removeprefix('the ')} = "
            f"{d:+.2f} [{low:+.2f}, {high:+.2f}] ROC-AUC {evidence}."
        )
    return sentence + _heads_text(row)


def _heads_text(row: dict) -> str:
    """Whether the CL row's contrastive heads learned at all (its replicates against chance at retrieval)."""
    learned, replicates = row.get("heads_learned", math.nan), row.get("heads_replicates", math.nan)
    if not (isinstance(replicates, (int, float)) and math.isfinite(replicates)):
        return ""
    if learned == 0:
        return (
            f" Its contrastive heads did not learn (0 of {int(replicates)} training replicates beat chance at "
            "retrieval): this row says CL did not train, not that CL does not help."
        )
    return f" Its heads learned in {int(learned)} of {int(replicates)} training replicates."


def rq1_markdown(table: pd.DataFrame, provenance: dict) -> str:
    """RQ1's comparisons as a table and one sentence each."""
    header = [
        "Task",
        "CL representation",
        "Frozen baseline",
        "ROC-AUC (CL − frozen)",
        "p",
        "test videos",
        "heads learned",
    ]
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
                    p_text(row["p_value"]),
                    str(row["n_test_videos"]),
                    _learned_cell(row),
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
            f"interval and two-sided p-value from a paired bootstrap over those videos ({resamples} draws). A CL "
            f"row is probed on each of its configuration's {_replicates(table)} training replicates' embeddings "
            "(`probe.repeats` seeds spread over them), and each draw also draws replicates, so the difference "
            "carries the contrastive training's variance as well as the test videos'. 'heads learned': the "
            "replicates whose retrieval median rank beat chance both ways (Table 1).",
            "",
            footnote(provenance),
            "",
        ]
    )


def _learned_cell(row: dict) -> str:
    replicates = row.get("heads_replicates", math.nan)
    if not (isinstance(replicates, (int, float)) and math.isfinite(replicates)):
        return "n/a"
    return f"{int(row['heads_learned'])}/{int(replicates)}"


def _replicates(table: pd.DataFrame) -> str:
    """The CL rows' replicate counts (from their configurations' retrieval records)."""
    counts = sorted({int(n) for n in table.get("heads_replicates", pd.Series(dtype=float)).dropna()})
    return "/".join(map(str, counts)) or "1"
