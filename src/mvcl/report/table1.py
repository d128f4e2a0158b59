"""Table 1: cross-modal median ranks and recall@k per configuration over its training replicates, as CSV
(every column) and as Markdown (a compact table, then recall@k and the other pools).

Each figure is the median over a configuration's replicates with its two-level 95% interval (replicates, then
test videos: mvcl.stats.two_level_interval). The tests of one table form one family, Holm-corrected together:
each configuration's pooled median rank against chance (both directions) and against the reference
configuration (both directions).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mvcl.plan import ABLATION_REFERENCE, RECALL_AT
from mvcl.provenance import footnote
from mvcl.retrieval import DIRECTIONS, LEARNED_ALPHA, SMALL_TEST_VIDEOS, RetrievalRecord, figure_key
from mvcl.stats import Comparison, holm, p_text

CANDIDATE_PROTOCOLS = {
    "other_videos": "a query's own video's other segments are not among its candidates",
    "all_segments": "every segment of the pool is a candidate, the query's own video's others included",
}
# A replicate whose best validation epoch is below this sat on the chance plateau (footnoted when all do).
EARLY_EPOCHS = 5
ARROWS = {"a2v": "a→v", "v2a": "v→a"}
# Table 1's columns read from the retrieval record as they are: pools, chance levels, test set, resampling.
RECORD_COLUMNS = {
    "pool": "pool_size",
    "chance_median_rank": "chance_median_rank",
    "full_pool": "full_pool_size",
    "full_chance_median_rank": "full_chance_median_rank",
    "video_pool": "video_pool_size",
    "n_test_segments": "n_queries",
    "n_test_videos": "n_videos",
    "candidates": "candidates",
    "bootstrap_resamples": "bootstrap_resamples",
    "permutations": "permutations",
}


def best_epoch(history: pd.DataFrame) -> int:
    """The epoch whose weights a run kept: the first with the lowest validation loss (history.csv)."""
    return int(history.sort_values(["val_loss", "epoch"], na_position="last")["epoch"].iloc[0])


def reference_key(direction: str, reference: str = ABLATION_REFERENCE) -> str:
    """Table 1's column of the difference to the reference, e.g. 'median_rank_a2v_vs_base'."""
    return f"{figure_key('median_rank', direction)}_vs_{reference}"


def table1(
    records: dict[str, RetrievalRecord],
    study_configurations: list[str],
    comparisons: dict[str, dict[str, Comparison]] | None = None,
    best_epochs: dict[str, list[int]] | None = None,
    reference: str = ABLATION_REFERENCE,
    encoders: dict[str, tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per configuration (study's first, in config order) plus a chance row.

    `comparisons[name][direction]` (retrieval.against_reference) gives the `_vs_{reference}` columns;
    `best_epochs[name]` each replicate's best validation epoch. p-values come raw (`_p`) and Holm-corrected
    over the table's family (`_p_holm`).
    `encoders`: configuration -> the (audio, video) encoders it trained on (columns audio_encoder,
    video_encoder; default the study's musicnn and r2plus1d).
    """
    comparisons, best_epochs = comparisons or {}, best_epochs or {}
    rows = []
    for name, record in records.items():
        row: dict = {
            "configuration": name,
            "study": name in study_configurations,
            "n_replicates": len(record.replicates),
            "replicates_learned": record.learned,
        }
        row["audio_encoder"], row["video_encoder"] = (encoders or {}).get(name, ("musicnn", "r2plus1d"))
        for key, figure in record.intervals.items():
            row.update(figure.as_dict(key))
        for direction in DIRECTIONS:
            key = figure_key("median_rank", direction)
            values = record.replicate_values(key)
            row[f"{key}_replicate_min"], row[f"{key}_replicate_max"] = np.min(values), np.max(values)
            row[f"{key}_replicates"] = ";".join(f"{value:g}" for value in values)
            row[f"mean_rank_{direction}"] = float(
                np.median(record.replicate_values(f"mean_rank_{direction}"))
            )
            row[f"study_median_rank_{direction}"] = float(
                np.median(record.replicate_values(f"study_median_rank_{direction}"))
            )
            row[f"{key}_chance_p"] = record.chance_p[direction]
            comparison = comparisons.get(name, {}).get(direction)
            if comparison is not None:
                row.update(comparison.difference.as_dict(reference_key(direction, reference)))
                row[f"{reference_key(direction, reference)}_p"] = comparison.p_value
        epochs = best_epochs.get(name, [])
        row["best_epochs"] = ";".join(map(str, epochs))
        row["all_stopped_early"] = bool(epochs) and max(epochs) < EARLY_EPOCHS
        row.update({column: getattr(record, field) for column, field in RECORD_COLUMNS.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["order"] = [0 if study else 1 for study in table["study"]]
    table = table.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    _holm_columns(table, reference)
    return pd.concat([table, _chance_row(table)], ignore_index=True) if len(table) else table


def family(table: pd.DataFrame, reference: str = ABLATION_REFERENCE) -> list[str]:
    """The p-value columns of Table 1's family of tests (against chance and against the reference)."""
    columns = [f"{figure_key('median_rank', d)}_chance_p" for d in DIRECTIONS]
    columns += [f"{reference_key(d, reference)}_p" for d in DIRECTIONS]
    return [column for column in columns if column in table]


def _holm_columns(table: pd.DataFrame, reference: str) -> None:
    columns = family(table, reference)
    if not columns:
        return
    adjusted = holm(table[columns].to_numpy(float).ravel()).reshape(len(table), len(columns))
    for i, column in enumerate(columns):
        table[f"{column}_holm"] = adjusted[:, i]


def _chance_row(table: pd.DataFrame) -> pd.DataFrame:
    """What random embeddings score: (candidates + 1) / 2 median ranks, k / candidates recalls."""
    first = table.iloc[0]
    chance = {column: math.nan for column in table.columns}
    video_chance = (first["video_pool"] + 1) / 2
    chance.update(
        configuration="chance",
        study=False,
        **{
            key: first[key]
            for key in (
                "pool",
                "full_pool",
                "video_pool",
                "chance_median_rank",
                "full_chance_median_rank",
                "n_test_segments",
                "n_test_videos",
                "candidates",
            )
        },
    )
    candidates = {
        "pooled": 2 * first["chance_median_rank"] - 1,  # the (median) candidate count of a query
        "full": 2 * first["full_chance_median_rank"] - 1,
        "video": first["video_pool"],
    }
    for direction in DIRECTIONS:
        chance[figure_key("median_rank", direction)] = first["chance_median_rank"]
        chance[figure_key("median_rank", direction, "full")] = first["full_chance_median_rank"]
        chance[figure_key("median_rank", direction, "video")] = video_chance
        chance[f"mean_rank_{direction}"] = first["chance_median_rank"]
        for level, count in candidates.items():
            for k in RECALL_AT:
                chance[figure_key(f"recall@{k}", direction, level)] = min(k / count, 1.0)
    return pd.DataFrame([chance])


def _interval_text(record: dict, key: str, digits: int) -> str:
    """'12.0 [9.5, 15.0]' from a Table 1 record (the value alone where it has no interval)."""
    value, low, high = (record.get(name, math.nan) for name in (key, f"{key}_ci_low", f"{key}_ci_high"))
    if value is None or not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _difference_text(record: dict, direction: str, reference: str) -> str:
    key = reference_key(direction, reference)
    if record["configuration"] in ("chance", reference) or not math.isfinite(record.get(key, math.nan)):
        return "—"
    return f"{record[key]:+.1f} (p {p_text(record[f'{key}_p_holm'])})"


def _learned_text(record: dict) -> str:
    if record["configuration"] == "chance":
        return "—"
    text = f"{int(record['replicates_learned'])}/{int(record['n_replicates'])}"
    return text + (" †" if record.get("all_stopped_early") is True else "")


def _rows(table: pd.DataFrame, cells) -> list[str]:
    lines = []
    for record in table.to_dict("records"):
        name = f"{record['configuration']} (study)" if record["study"] else record["configuration"]
        pair = (record.get("audio_encoder", "musicnn"), record.get("video_encoder", "r2plus1d"))
        if record["configuration"] != "chance" and pair != ("musicnn", "r2plus1d"):
            name += f" [{pair[0]} + {pair[1]}]"  # trained on other encoders than the study's
        lines.append("| " + " | ".join([name, *cells(record)]) + " |")
    return lines


def _header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def table1_markdown(table: pd.DataFrame, provenance: dict, reference: str = ABLATION_REFERENCE) -> str:
    """A compact table (median ranks both ways and at the video level with intervals, replicates that
    learned, the difference to the reference with its Holm-corrected p), then recall@k, the other pools and
    the replicates' spread, and the footnotes."""
    compact = _header(
        [
            "Configuration",
            "MR a→v",
            "MR v→a",
            "video MR a→v",
            "video MR v→a",
            "learned",
            f"Δ MR a→v vs {reference}",
            f"Δ MR v→a vs {reference}",
        ]
    ) + _rows(
        table,
        lambda record: [
            *(_interval_text(record, figure_key("median_rank", d), 1) for d in DIRECTIONS),
            *(_interval_text(record, figure_key("median_rank", d, "video"), 1) for d in DIRECTIONS),
            _learned_text(record),
            *(_difference_text(record, d, reference) for d in DIRECTIONS),
        ],
    )

    def recalls(record: dict, direction: str, level: str = "pooled") -> str:
        return " / ".join(
            _interval_text(record, figure_key(f"recall@{k}", direction, level), 2) for k in RECALL_AT
        )

    def spread(record: dict) -> str:
        if record["configuration"] == "chance":
            return "—"
        return ", ".join(
            f"{record[figure_key('median_rank', d) + '_replicate_min']:.1f}–"
            f"{record[figure_key('median_rank', d) + '_replicate_max']:.1f}"
            for d in DIRECTIONS
        )

    detail = _header(
        [
            "Configuration",
            "R@1/5/10 a→v",
            "R@1/5/10 v→a",
            "MR a→v (all)",
            "MR v→a (all)",
            "video R@1/5/10 a→v",
            "video R@1/5/10 v→a",
            "replicates' MR a→v, v→a (min–max)",
            "study's MR",
        ]
    ) + _rows(
        table,
        lambda record: [
            *(recalls(record, d) for d in DIRECTIONS),
            *(_interval_text(record, figure_key("median_rank", d, "full"), 1) for d in DIRECTIONS),
            *(recalls(record, d, "video") for d in DIRECTIONS),
            spread(record),
            _interval_text(record, "study_median_rank_a2v", 1),
        ],
    )
    return "\n".join(
        [
            "# Table 1: cross-modal median rank (lower is better)",
            "",
            *compact,
            "",
            *_notes(table, reference),
            "",
            "## Recall@k, the other pools and the replicates' spread",
            "",
            *detail,
            "",
            footnote(provenance),
            "",
        ]
    )


def _notes(table: pd.DataFrame, reference: str) -> list[str]:
    first = table.iloc[0]
    videos, segments = int(first["n_test_videos"]), int(first["n_test_segments"])
    replicates = sorted({int(n) for n in table["n_replicates"].dropna()})
    counts = "/".join(map(str, replicates))
    notes = [
        f"Each figure is the median over {counts} training replicates of a configuration (seeds derived from "
        f"`seed`; replicate 0 uses `seed` itself), with a 95% two-level percentile-bootstrap interval "
        f"({int(first['bootstrap_resamples'])} draws: replicates with replacement, then the {videos} test "
        f"videos ({segments} segments) with replacement, a video drawn with all its segments; each query keeps "
        "the rank it got among the real test set's candidates). Intervals and comparisons rest on "
        f"{counts} replicates and {videos} test videos.",
        "",
        f"Ranks among pools of {int(first['pool'])} test segments (chance {first['chance_median_rank']:.1f}); "
        f"'all' among all {int(first['full_pool'])} test segments (chance {first['full_chance_median_rank']:.1f}); "
        f"'video': each test video's mean embedding among all {int(first['video_pool'])} test videos (chance "
        f"{(first['video_pool'] + 1) / 2:.1f}). Candidates: `{first['candidates']}` "
        f"({CANDIDATE_PROTOCOLS.get(first['candidates'], first['candidates'])}). 'study's MR' is the study's "
        "own computation on the same embeddings (an argsort index, not a rank: it stays near pool/2 for any "
        "model and reports one number for both directions).",
        "",
        f"'learned': replicates whose pooled median rank beat random audio-video pairings both ways "
        f"(one-sided permutation test, {int(first['permutations'])} pairings, p ≤ {LEARNED_ALPHA}). "
        f"'Δ MR vs {reference}': the median over replicates minus {reference}'s (negative = better), replicates "
        "paired by seed and the same test videos drawn for both sides; p two-sided. Holm's correction over the "
        f"table's family of {_family_size(table, reference)} tests (each configuration's pooled median rank both "
        f"ways against chance and against {reference}); the CSV keeps raw (`_p`) and corrected (`_p_holm`) "
        "p-values.",
    ]
    chance = [
        f"{record['configuration']} (a→v p {p_text(record['median_rank_a2v_chance_p_holm'])}, "
        f"v→a p {p_text(record['median_rank_v2a_chance_p_holm'])})"
        for record in table.to_dict("records")
        if record["configuration"] != "chance"
    ]
    floor = min(1.0, _family_size(table, reference) / (first["permutations"] + 1))
    notes += [
        "",
        "Against chance (Holm-corrected): "
        + "; ".join(chance)
        + f". The smallest p-value {int(first['permutations'])} pairings can give, 1/"
        f"{int(first['permutations']) + 1}, is {floor:.3f} after Holm over {_family_size(table, reference)} tests.",
    ]
    early = table.loc[table["all_stopped_early"] == True, "configuration"].tolist()  # noqa: E712 (NaN rows)
    if early:
        notes += [
            "",
            f"† Every replicate of {', '.join(early)} kept the weights of an epoch before {EARLY_EPOCHS} (the "
            "chance plateau): its heads may never have trained; read its row as 'did not train', not as a "
            "worse configuration.",
        ]
    if videos < SMALL_TEST_VIDEOS:
        notes += [
            "",
            f"Only {videos} test videos (fewer than {SMALL_TEST_VIDEOS}): a small collection, so the intervals "
            "are wide and differences between configurations are rarely resolved.",
        ]
    return notes


def _family_size(table: pd.DataFrame, reference: str) -> int:
    columns = family(table, reference)
    return int(np.isfinite(table[columns].to_numpy(float)).sum()) if columns else 0
