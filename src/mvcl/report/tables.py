"""The study's tables as CSV (long, one number per column) and as Markdown laid out like the paper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mvcl.evaluate.bootstrap import DEFAULT_RESAMPLES, Interval
from mvcl.evaluate.probe_intervals import compare, metric_intervals, small_collection_notes, small_labels
from mvcl.evaluate.retrieval import SMALL_TEST_VIDEOS
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


def table2(
    results: dict[tuple[str, str], dict], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """One row per (representation, task) from probe results keyed by (task, representation).

    Each figure (mean over seeds) has a 95% bootstrap interval over the test videos beside it (`auc_ci_low`,
    `auc_ci_high`, ...; `resamples` draws, seeded), the spread over seeds its own column (`auc_std`, ...), and the
    draws left out as undefined (`auc_ci_undefined`, ...). `small_labels` lists the classes or tags with fewer
    than 2 test videos. A representation key `cl_x@name` is configuration `name`'s CL representation (the rows
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
            level=result.get("level", "video"),
            small_labels="; ".join(small_labels(result, name)),
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
    return "\n".join(
        [
            "# Table 2: downstream probes (mean over seeds [95% interval over test videos])",
            "",
            *lines,
            "",
            f"CL rows use the `{configuration}` configuration unless another is named in brackets. {sizes}. "
            f"Each interval is a percentile bootstrap over the test videos ({resamples} draws) of the mean over "
            f"{int(table['repeats'].max())} seeds; the spread over seeds is in table2.csv (*_std).{left_out}",
            *(["", *(f"**Small collection:** {note}." for note in notes)] if notes else []),
            "",
            f"{footnote(provenance)}",
            "",
        ]
    )


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


# Table 1's figures with an interval: pooled, whole-set ('full_') and video-level ('video_') ranks.
TABLE1_INTERVALS = tuple(
    f"{prefix}{figure}_{direction}"
    for prefix in ("", "full_", "video_")
    for figure in ("median_rank", *(f"recall@{k}" for k in RECALL_AT))
    for direction in ("a2v", "v2a")
)
CANDIDATE_PROTOCOLS = {
    "other_videos": "a query's own video's other segments are not among its candidates",
    "all_segments": "every segment of the pool is a candidate, the query's own video's others included",
}


def _with_interval(row: dict, result: dict, key: str) -> None:
    row[key] = result.get(key, math.nan)
    row[f"{key}_ci_low"] = result.get(f"{key}_ci_low", math.nan)
    row[f"{key}_ci_high"] = result.get(f"{key}_ci_high", math.nan)


def table1(
    metrics: dict[str, dict], study_configurations: list[str], reference: str = "base"
) -> pd.DataFrame:
    """One row per configuration (study's first, in config order) plus a chance row, from retrieval results.

    Each figure of TABLE1_INTERVALS comes with its `_ci_low`/`_ci_high`; `median_rank_{d}_chance_p` is the
    p-value against random pairings, `median_rank_{d}_vs_{reference}` (with interval and `_p`) the paired
    difference to the reference configuration when the records carry it (retrieval.against_reference).
    """
    rows = []
    for name, result in metrics.items():
        row = {"configuration": name, "study": name in study_configurations, "pool": result["pool_size"]}
        for direction in ("a2v", "v2a"):
            _with_interval(row, result, f"median_rank_{direction}")
            row[f"mean_rank_{direction}"] = result[f"mean_rank_{direction}"]
            for k in RECALL_AT:
                _with_interval(row, result, f"recall@{k}_{direction}")
            _with_interval(row, result, f"full_median_rank_{direction}")
        for key in TABLE1_INTERVALS:
            if key.startswith(("full_recall", "video_")):
                _with_interval(row, result, key)
        row["chance_median_rank"] = result["chance_median_rank"]
        row["full_pool"] = result["full_pool_size"]
        row["full_chance_median_rank"] = result.get(
            "full_chance_median_rank", (result["full_pool_size"] + 1) / 2
        )
        row["video_pool"] = result.get("video_pool_size", math.nan)
        for direction in ("a2v", "v2a"):
            row[f"study_median_rank_{direction}"] = result.get(f"study_median_rank_{direction}", math.nan)
        for direction in ("a2v", "v2a"):
            row[f"median_rank_{direction}_chance_p"] = result.get(
                f"median_rank_{direction}_chance_p", math.nan
            )
            key = f"median_rank_{direction}_vs_{reference}"
            _with_interval(row, result, key)
            row[f"{key}_p"] = result.get(f"{key}_p", math.nan)
        row["n_test_segments"] = result["n_queries"]
        row["n_test_videos"] = result.get("n_videos", math.nan)
        row["candidates"] = result.get("candidates", "all_segments")
        row["bootstrap_resamples"] = result.get("bootstrap_resamples", math.nan)
        row["permutations"] = result.get("permutations", math.nan)
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
            video_pool=first["video_pool"],
            chance_median_rank=first["chance_median_rank"],
            full_chance_median_rank=first["full_chance_median_rank"],
            median_rank_a2v=first["chance_median_rank"],
            median_rank_v2a=first["chance_median_rank"],
            full_median_rank_a2v=first["full_chance_median_rank"],
            full_median_rank_v2a=first["full_chance_median_rank"],
            video_median_rank_a2v=(first["video_pool"] + 1) / 2,
            video_median_rank_v2a=(first["video_pool"] + 1) / 2,
            n_test_segments=first["n_test_segments"],
            n_test_videos=first["n_test_videos"],
            candidates=first["candidates"],
        )
        candidates = 2 * first["chance_median_rank"] - 1  # the (median) candidate count of a query
        for direction in ("a2v", "v2a"):
            for k in RECALL_AT:
                chance[f"recall@{k}_{direction}"] = min(k / candidates, 1.0)
                chance[f"full_recall@{k}_{direction}"] = min(
                    k / (2 * first["full_chance_median_rank"] - 1), 1.0
                )
                chance[f"video_recall@{k}_{direction}"] = min(k / first["video_pool"], 1.0)
            chance[f"mean_rank_{direction}"] = first["chance_median_rank"]
        table = pd.concat([table, pd.DataFrame([chance])], ignore_index=True)
    return table


def _interval_text(record: dict, key: str, digits: int) -> str:
    """'12.0 [9.5, 15.0]' from a Table 1 record (the value alone where it has no interval)."""
    value, low, high = (record.get(name, math.nan) for name in (key, f"{key}_ci_low", f"{key}_ci_high"))
    if value is None or not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _p_text(p: float) -> str:
    return "n/a" if not math.isfinite(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def table1_tests(table: pd.DataFrame, reference: str = "base") -> list[str]:
    """One line per configuration: its median ranks against chance (p) and against the reference (difference)."""
    lines = []
    for record in table[table["configuration"] != "chance"].to_dict("records"):
        parts = []
        for direction, arrow in (("a2v", "a→v"), ("v2a", "v→a")):
            text = f"{arrow} p = {_p_text(record[f'median_rank_{direction}_chance_p'])} against chance"
            key = f"median_rank_{direction}_vs_{reference}"
            if record["configuration"] != reference and math.isfinite(record.get(key, math.nan)):
                text += (
                    f", {_interval_text(record, key, 1)} against {reference} "
                    f"(p = {_p_text(record[f'{key}_p'])})"
                )
            parts.append(text)
        lines.append(f"- {record['configuration']}: " + "; ".join(parts))
    return lines


def table1_markdown(table: pd.DataFrame, provenance: dict, reference: str = "base") -> str:
    """Median ranks both ways (pooled, whole test set, video level) and recall@k, each with its 95% interval,
    the study's numbers, and the tests against chance and against the reference configuration."""
    header = [
        "Configuration",
        "MR a→v",
        "MR v→a",
        "R@1/5/10 a→v",
        "R@1/5/10 v→a",
        "MR a→v (all)",
        "MR v→a (all)",
        "video MR a→v",
        "video MR v→a",
        "video R@1/5/10 a→v",
        "video R@1/5/10 v→a",
        "study's MR",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in table.to_dict("records"):
        name = f"{record['configuration']} (study)" if record["study"] else record["configuration"]

        def recalls(direction: str, prefix: str = "", record: dict = record) -> str:
            return " / ".join(_interval_text(record, f"{prefix}recall@{k}_{direction}", 2) for k in RECALL_AT)

        study = record["study_median_rank_a2v"]
        cells = [
            name,
            _interval_text(record, "median_rank_a2v", 1),
            _interval_text(record, "median_rank_v2a", 1),
            recalls("a2v"),
            recalls("v2a"),
            _interval_text(record, "full_median_rank_a2v", 1),
            _interval_text(record, "full_median_rank_v2a", 1),
            _interval_text(record, "video_median_rank_a2v", 1),
            _interval_text(record, "video_median_rank_v2a", 1),
            recalls("a2v", "video_"),
            recalls("v2a", "video_"),
            "n/a" if math.isnan(study) else f"{study:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    first = table.iloc[0]
    videos, segments = first["n_test_videos"], int(first["n_test_segments"])
    candidates = first["candidates"]
    sample = (
        f"Intervals: 95% percentile bootstrap over the {int(videos)} test videos ({segments} segments), "
        f"{int(first['bootstrap_resamples'])} resamples, a video drawn with all its segments; each query keeps "
        "the rank it got among the real test set's candidates."
        if math.isfinite(videos) and math.isfinite(first["bootstrap_resamples"])
        else "No intervals: the retrieval records carry none."
    )
    small = (
        f" Only {int(videos)} test videos (fewer than {SMALL_TEST_VIDEOS}): a small collection, so the intervals "
        "are wide and differences between configurations are rarely resolved."
        if math.isfinite(videos) and videos < SMALL_TEST_VIDEOS
        else ""
    )
    return "\n".join(
        [
            "# Table 1: cross-modal median rank (lower is better)",
            "",
            *lines,
            "",
            f"Ranks among pools of {int(first['pool'])} test segments (chance: {first['chance_median_rank']:.1f}), "
            f"among all {int(first['full_pool'])} test segments ('all', chance {first['full_chance_median_rank']:.1f}) "
            f"and of each test video's mean embedding among all {int(first['video_pool'])} test videos ('video', "
            f"chance {(first['video_pool'] + 1) / 2:.1f}). Candidates: `{candidates}` "
            f"({CANDIDATE_PROTOCOLS.get(candidates, candidates)}). 'study's MR' is the study's own "
            "computation on the same embeddings (an argsort index, not a rank: it stays near pool/2 for any model "
            "and reports one number for both directions).",
            "",
            sample + small,
            "",
            f"Against chance (one-sided permutation test of the pooled median rank, "
            f"{_count(first['permutations'])} random audio-video pairings) and against `{reference}` (paired "
            "bootstrap of the difference in pooled median rank on the same resampled test videos; negative = better):",
            "",
            *table1_tests(table, reference),
            "",
            footnote(provenance),
            "",
        ]
    )


def _count(value: float) -> str:
    return str(int(value)) if math.isfinite(value) else "n/a"
