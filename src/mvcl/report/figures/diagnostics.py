"""Figures that explain retrieval: similarity histograms, the diagnostics table, the t-SNE map, the coupling sweep."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from mvcl.qualitative.diagnostics import separation_auc

# The study's Table 1: median ranks 494-507 in pools of 1000 test segments, chance (1000 + 1) / 2.
STUDY_MEDIAN_RANKS = (494.0, 507.0)
STUDY_POOL = 1000


def plot_similarity_histograms(
    similarities: dict[str, tuple[np.ndarray, np.ndarray]], out: str | Path
) -> None:
    """One panel per configuration: cosine similarity of positive pairs against negative pairs (density)."""
    names = list(similarities)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    values = np.concatenate([np.concatenate(pair) for pair in similarities.values()])
    low, high = float(values.min()), float(values.max())
    bins = np.linspace(low - 1e-6, high + 1e-6, 51)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns, 3.0 * rows),
        squeeze=False,
        sharex=True,
        constrained_layout=True,
    )
    for axis in axes.flat[len(names) :]:
        axis.axis("off")
    for axis, name in zip(axes.flat, names, strict=False):
        positives, negatives = similarities[name]
        axis.hist(negatives, bins=bins, density=True, color="tab:blue", alpha=0.45, label="negative pairs")
        axis.hist(
            positives,
            bins=bins,
            density=True,
            histtype="step",
            color="tab:orange",
            linewidth=1.8,
            label="positive pairs",
        )
        axis.axvline(np.median(positives), color="tab:orange", linestyle="--", linewidth=1)
        if negatives.size:
            axis.axvline(np.median(negatives), color="tab:blue", linestyle="--", linewidth=1)
        axis.set_title(f"{name}: AUC {separation_auc(positives, negatives):.3f} (0.5 = chance)", fontsize=9)
        axis.set_xlabel("cosine similarity (audio, video)")
        axis.set_yticks([])
    axes.flat[0].legend(fontsize=8, loc="upper left")
    figure.suptitle(
        "Test split: a segment's own audio-video pair (positive) vs pairs across videos (negative)"
    )
    figure.savefig(out, dpi=110)
    plt.close(figure)


def plot_diagnostics(table: pd.DataFrame, out: str | Path) -> None:
    """Alignment against uniformity (Wang & Isola 2020, Fig. 2 style), the modality gap, and positive-negative AUC."""
    figure, (scatter, gap, auc) = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    uniform = (table["uniformity_audio"] + table["uniformity_video"]) / 2
    scatter.scatter(table["alignment"], uniform, color="tab:purple")
    for name, x, y in zip(table["configuration"], table["alignment"], uniform, strict=True):
        scatter.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    scatter.set_xlabel("alignment: E ||a - v||² of positive pairs (lower = closer)")
    scatter.set_ylabel("uniformity: log E exp(-2 ||x - y||²),\nmean of audio and video (lower = spread)")
    scatter.set_title("alignment vs uniformity (both better toward lower left)", fontsize=10)
    positions = np.arange(len(table))
    gap.bar(positions, table["modality_gap"], color="tab:gray")
    gap.set_xticks(positions, table["configuration"], rotation=30, ha="right")
    gap.set_ylabel("|centroid(audio) - centroid(video)|")
    gap.set_title("modality gap (0 = shared centre, 2 = antipodal)", fontsize=10)
    auc.bar(positions, table["positive_negative_auc"], color="tab:green")
    auc.axhline(0.5, color="black", linestyle="--", linewidth=1)
    auc.text(positions[-1] + 0.4, 0.51, "chance", ha="right", va="bottom", fontsize=8)
    auc.set_ylim(0, 1)
    auc.set_xticks(positions, table["configuration"], rotation=30, ha="right")
    auc.set_ylabel("P(positive pair > negative pair)")
    auc.set_title("how separable positives are (AUC)", fontsize=10)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def plot_embedding_map(table: pd.DataFrame, out: str | Path, title: str, pairs_shown: int = 40) -> None:
    """Two views of one t-SNE map: points coloured by genre (marker = modality), and by modality with pair lines."""
    figure, (by_genre, by_modality) = plt.subplots(1, 2, figsize=(13, 6), constrained_layout=True)
    markers = {"audio": "o", "video": "^"}
    genres = sorted(table["genre"].unique())
    palette = plt.get_cmap("tab10" if len(genres) <= 10 else "tab20")
    for number, genre in enumerate(genres):
        for modality, marker in markers.items():
            points = table[(table["genre"] == genre) & (table["modality"] == modality)]
            by_genre.scatter(
                points["x"], points["y"], s=14, marker=marker, color=palette(number % palette.N), alpha=0.75
            )
    by_genre.legend(
        handles=[
            Line2D([], [], marker="s", linestyle="", color=palette(n % palette.N), label=g or "no genre")
            for n, g in enumerate(genres)
        ]
        + [Line2D([], [], marker=m, linestyle="", color="0.3", label=name) for name, m in markers.items()],
        fontsize=7,
        loc="best",
        ncol=2,
    )
    by_genre.set_title("coloured by genre (o audio, ^ video)", fontsize=10)
    audio = table[table["modality"] == "audio"].reset_index(drop=True)
    video = table[table["modality"] == "video"].reset_index(drop=True)
    shown = np.random.default_rng(0).permutation(len(audio))[:pairs_shown]
    for index in shown:
        by_modality.plot(
            [audio["x"][index], video["x"][index]],
            [audio["y"][index], video["y"][index]],
            color="0.6",
            linewidth=0.5,
            zorder=1,
        )
    for modality, colour in (("audio", "tab:blue"), ("video", "tab:orange")):
        points = table[table["modality"] == modality]
        by_modality.scatter(
            points["x"],
            points["y"],
            s=14,
            marker=markers[modality],
            color=colour,
            alpha=0.7,
            label=modality,
            zorder=2,
        )
    by_modality.legend(fontsize=8)
    by_modality.set_title(f"coloured by modality; grey lines join {len(shown)} positive pairs", fontsize=10)
    for axis in (by_genre, by_modality):
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def plot_coupling_sweep(table: pd.DataFrame, out: str | Path, demo_coupling: float | None = None) -> None:
    """Median rank against demo.av_coupling, scaled so 0 = perfect retrieval and 1 = chance; one panel per
    direction, one line per configuration, its 95% bootstrap interval (over test videos) as a band.

    Scaling (rank - 1) / (chance - 1) puts pools of any size on one axis, so the study's Table 1 (pools of
    1000) can be drawn beside a small sweep. Their ranks were computed as an index, not a rank (docs/design.md):
    the band shows what they reported, not a measured alignment.
    """
    table = table if "configuration" in table.columns else table.assign(configuration="")
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, constrained_layout=True)
    study_chance = (STUDY_POOL + 1) / 2
    low, high = ((rank - 1) / (study_chance - 1) for rank in STUDY_MEDIAN_RANKS)
    palette = plt.get_cmap("tab10")
    configurations = list(dict.fromkeys(table["configuration"]))
    for axis, (direction, title) in zip(
        axes, (("a2v", "audio → video"), ("v2a", "video → audio")), strict=True
    ):
        axis.axhspan(low, high, color="tab:red", alpha=0.18, label="the study's Table 1 (494-507 of 1000)")
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="chance")
        axis.axhline(0.0, color="black", linestyle=":", linewidth=1, label="perfect (rank 1)")
        column = f"median_rank_{direction}"
        for number, name in enumerate(configurations):
            rows = table[table["configuration"] == name]
            colour = palette(number % palette.N)
            scale = rows["chance_median_rank"] - 1
            scaled = (rows[column] - 1) / scale
            axis.plot(rows["av_coupling"], scaled, marker="o", color=colour, label=name or "median rank")
            if f"{column}_ci_low" in rows and rows[f"{column}_ci_low"].notna().any():
                axis.fill_between(
                    rows["av_coupling"],
                    (rows[f"{column}_ci_low"] - 1) / scale,
                    (rows[f"{column}_ci_high"] - 1) / scale,
                    color=colour,
                    alpha=0.2,
                    linewidth=0,
                )
            for x, y, rank in zip(rows["av_coupling"], scaled, rows[column], strict=True):
                axis.annotate(
                    f"{rank:g}", (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, color=colour
                )
        if demo_coupling is not None:
            axis.axvline(
                demo_coupling,
                color="0.5",
                linewidth=1,
                linestyle="-.",
                label=f"demo.av_coupling = {demo_coupling:g}",
            )
        axis.set_xlabel("demo.av_coupling (0 = picture independent of sound, 1 = a function of it)")
        axis.set_title(f"{title}: median rank, 95% interval over test videos", fontsize=10)
    axes[0].set_ylabel("(median rank - 1) / (chance - 1)")
    axes[0].set_ylim(-0.05, 1.3)
    axes[0].legend(fontsize=8, loc="lower left")
    videos = table["test_videos"].dropna() if "test_videos" in table else pd.Series(dtype=float)
    sizes = f" ({int(videos.min())} test videos per run)" if len(videos) else ""
    figure.suptitle(f"Retrieval against audio-video coupling of the synthetic corpus{sizes}")
    figure.savefig(out, dpi=110)
    plt.close(figure)
