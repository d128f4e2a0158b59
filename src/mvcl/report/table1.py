"""Table 1: cross-modal median ranks and recall@k per configuration, as CSV (long) and as Markdown."""

from __future__ import annotations

import math

import pandas as pd

from mvcl.plan import RECALL_AT
from mvcl.provenance import footnote
from mvcl.retrieval import SMALL_TEST_VIDEOS

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
    metrics: dict[str, dict],
    study_configurations: list[str],
    reference: str = "base",
    encoders: dict[str, tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per configuration (study's first, in config order) plus a chance row, from retrieval results.

    `encoders`: configuration -> the (audio, video) encoders it trained on (columns audio_encoder,
    video_encoder; default the study's musicnn and r2plus1d).

    Each figure of TABLE1_INTERVALS comes with its `_ci_low`/`_ci_high`; `median_rank_{d}_chance_p` is the
    p-value against random pairings, `median_rank_{d}_vs_{reference}` (with interval and `_p`) the paired
    difference to the reference configuration when the records carry it (retrieval.against_reference).
    """
    rows = []
    for name, result in metrics.items():
        row = {"configuration": name, "study": name in study_configurations, "pool": result["pool_size"]}
        row["audio_encoder"], row["video_encoder"] = (encoders or {}).get(name, ("musicnn", "r2plus1d"))
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
        pair = (record.get("audio_encoder", "musicnn"), record.get("video_encoder", "r2plus1d"))
        if pair != ("musicnn", "r2plus1d"):
            name += f" [{pair[0]} + {pair[1]}]"  # trained on other encoders than the study's

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
