"""Table 2's intervals over test videos and RQ1's paired comparisons, from the probes' stored predictions."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from mvcl.plan import Plan
from mvcl.probe.data import ProbeWarning
from mvcl.probe.intervals import Predictions, compare, metric_intervals, predictions, seed_mean
from mvcl.probe.metrics import (
    _average_ranks,
    genre_metrics,
    metric_on_draws,
    metric_on_videos,
    tagging_metrics,
)
from mvcl.probe.replicates import merge_replicates, replicate_repeats
from mvcl.probe.train import repeat_seeds, run_probe_seeds, summarise_repeats
from mvcl.report.figures.probes import plot_probes
from mvcl.report.rq1 import rq1, rq1_markdown, rq1_sentence
from mvcl.report.table2 import table2, table2_markdown, table2_notes
from mvcl.retrieval import ReplicateRetrieval, RetrievalRecord
from mvcl.stats import two_level_interval
from tests.helpers import run_snakemake
from tests.test_plan import CONFIG
from tests.test_probe import SMALL, synthetic_videos

PROVENANCE = {"encoders": {}}


def probed(task: str, seed: int = 0, n: int = 240, noise: float = 0.0, repeats: int = 2) -> dict:
    """A probe result as workflow_scripts/probe.py writes it (through JSON)."""
    X, genre, tags, split = synthetic_videos(seed=0, n=n)
    X = X + np.random.default_rng(seed + 100).normal(scale=noise, size=X.shape).astype(np.float32)
    ids = [f"v{i}" for i in range(n)]
    cfg = {**SMALL, "repeats": repeats, "max_epochs": 30}
    y = genre if task == "genre" else tags
    runs = run_probe_seeds(X, y, split, task, cfg, repeat_seeds(cfg, seed), "cpu", video_ids=ids)
    return json.loads(json.dumps(summarise_repeats(task, runs)))


# --- metrics on a subset of test videos ------------------------------------------------------------------


def test_metric_on_videos_matches_the_probe_metrics_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(30):
        y = (rng.random((15, 4)) < 0.4).astype(int)
        scores = np.round(rng.random((15, 4)), 1)  # many ties
        thresholds = rng.random(4)
        expected = tagging_metrics(y, scores, thresholds, list("abcd"))
        for metric in ("roc_auc", "f1", "pr_auc"):
            value = metric_on_videos("tagging", metric, y, scores, thresholds)
            assert value == pytest.approx(expected[metric], nan_ok=True)
        classes = rng.integers(0, 3, 15)
        proba = np.round(rng.dirichlet(np.ones(3), 15), 1)
        expected = genre_metrics(classes, proba, list("abc"))
        for metric in ("roc_auc", "f1"):
            assert metric_on_videos("genre", metric, classes, proba) == pytest.approx(expected[metric])


def test_metric_on_videos_matches_scikit_learn_directly():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    s = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.6], [0.6, 0.1], [0.2, 0.3]])
    assert metric_on_videos("tagging", "roc_auc", y, s) == pytest.approx(roc_auc_score(y, s, average="macro"))
    assert metric_on_videos("tagging", "pr_auc", y, s) == pytest.approx(average_precision_score(y, s))
    t = np.array([0.5, 0.5])
    assert metric_on_videos("tagging", "f1", y, s, t) == pytest.approx(f1_score(y, s >= t, average="macro"))


def test_a_single_class_draw_is_undefined():
    assert math.isnan(metric_on_videos("genre", "roc_auc", np.zeros(4, int), np.full((4, 2), 0.5)))
    assert math.isnan(metric_on_videos("tagging", "roc_auc", np.ones((4, 2)), np.full((4, 2), 0.5)))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the last bit, NaN where NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def test_average_ranks_are_scipys_with_ties_and_nan():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 40):
        scores = np.round(rng.random((n, 5)), 1)  # many ties
        scores[:, 4] = -0.0
        scores[0, 4] = 0.0  # -0 and 0 tie
        if n > 2:
            scores[1, 3] = np.nan  # rankdata propagates it down the column
        assert _same(_average_ranks(scores), rankdata(scores, axis=0))


def _random_probe(rng: np.random.Generator, task: str, n: int, labels: int):
    """(targets, scores with ties, thresholds, kept) of one seed's predictions."""
    if task == "genre":
        targets = rng.integers(0, labels, n)
        scores = np.round(rng.dirichlet(np.ones(labels), n), int(rng.integers(1, 4)))
    else:
        targets = (rng.random((n, labels)) < rng.uniform(0.05, 0.6)).astype(int)
        scores = np.round(rng.random((n, labels)), int(rng.integers(1, 4)))
    return targets, scores, rng.random(labels), rng.random(labels) < 0.85


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_metric_on_draws_is_metric_on_videos_on_every_draw_bit_for_bit(task):
    """The bootstrap's fast path (all draws at once, from counts) gives metric_on_videos' floats exactly, on
    draws with repeated videos, ties, single-class draws, labels left out, and 1 to 30 labels (numpy's
    pairwise sums start at 8 values)."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        n, labels = int(rng.integers(2, 40)), int(rng.integers(2 if task == "genre" else 1, 31))
        targets, scores, thresholds, kept = _random_probe(rng, task, n, labels)
        videos = rng.integers(n, size=(25, int(rng.integers(1, n + 3))))  # draws of any size
        counts = np.stack([np.bincount(draw, minlength=n) for draw in videos])
        for metric in ("roc_auc", "f1", "pr_auc"):
            fast = metric_on_draws(task, metric, targets, scores, counts, thresholds, kept)
            one_by_one = [
                metric_on_videos(task, metric, targets[draw], scores[draw], thresholds, kept) for draw in videos
            ]
            assert _same(fast, one_by_one), (trial, metric)


def test_a_seed_means_draws_at_once_are_its_draws_one_by_one():
    """SeedMean.on_draws (what mvcl.stats' bootstrap calls) equals calling it per draw, over replicates with
    several seeds, on a subset of the videos (RQ1's shared ones), and falls back to the loop on a NaN score."""
    rng = np.random.default_rng(11)
    for task in ("genre", "tagging"):
        targets, scores, thresholds, kept = _random_probe(rng, task, 30, 6)
        seeds = np.stack([np.clip(scores + rng.normal(0, 0.05, scores.shape).round(2), 0, 1) for _ in range(5)])
        found = Predictions(task, np.array([f"v{i}" for i in range(30)]), targets, seeds,
                            None if task == "genre" else np.tile(thresholds, (5, 1)), list("abcdef"), kept,
                            np.array([0, 1, 1, 2, 2]))  # fmt: skip
        positions = np.arange(3, 30)
        draws = rng.integers(len(positions), size=(60, len(positions)))
        for metric in ("roc_auc", "f1", "pr_auc"):
            mean = seed_mean(found, metric, positions)
            for replicate in range(3):
                expected = [mean(replicate, draw) for draw in draws]
                assert _same(mean.on_draws(replicate, draws), expected)
        seeds[1, 5, 0] = np.nan
        mean = seed_mean(found, "roc_auc", positions)
        assert _same(mean.on_draws(1, draws), [mean(1, draw) for draw in draws])


def test_table2s_intervals_are_those_of_the_plain_bootstrap_loop():
    """metric_intervals and compare through the fast path equal mvcl.stats' loop over single draws."""
    merged = merge_replicates([probed("tagging", seed=r, noise=0.5 * r, repeats=1) for r in range(2)])
    found = predictions(merged, "x")
    for metric in ("roc_auc", "f1", "pr_auc"):
        fast = metric_intervals(merged, "x", resamples=100, seed=4)[metric]
        mean = seed_mean(found, metric)
        loop = two_level_interval(lambda r, v, m=mean: m(r, v), found.replicates, len(found.video_ids), 100, 4,
                                  center=np.mean)  # fmt: skip
        assert fast == loop


def test_the_table_jobs_import_neither_scikit_learn_nor_scipy_stats():
    """Importing them cost the table2, rq1 and ablation_table jobs a second or more each; only the probes need them."""
    modules = "mvcl.report.table2, mvcl.report.rq1, mvcl.beyond.ablation"
    code = f"import sys, {modules}; print([m for m in ('sklearn', 'scipy.stats') if m in sys.modules])"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


# --- Table 2's intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_each_figure_gets_an_interval_around_its_seed_mean(task):
    result = probed(task)
    found = predictions(result, "x")
    assert found.scores.shape[:2] == (2, result["n_test_videos"])  # every seed, every test video
    intervals = metric_intervals(result, "x", resamples=200, seed=0)
    for metric in ("roc_auc", "f1") + (("pr_auc",) if task == "tagging" else ()):
        ci = intervals[metric]
        assert ci.value == pytest.approx(result["mean"][metric])  # the mean over seeds of the stored metric
        assert ci.low < ci.value < ci.high and ci.n_videos == result["n_test_videos"]
        assert ci.resamples + ci.undefined == 200
    assert math.isnan(intervals["pr_auc"].value) if task == "genre" else True


def test_the_interval_resamples_videos_not_seeds():
    """The seed-mean on a draw is the mean over seeds of each seed's metric on the same drawn videos."""
    result = probed("genre")
    found = predictions(result, "x")
    draw = np.array([0, 0, 3, 5, 7, 9, 11, 2])
    expected = np.mean(
        [metric_on_videos("genre", "roc_auc", found.targets[draw], scores[draw]) for scores in found.scores]
    )
    assert seed_mean(found, "roc_auc")(0, draw) == pytest.approx(expected)


def test_draws_with_a_single_class_are_left_out_and_counted():
    result = {
        "task": "genre",
        "labels": ["a", "b"],
        "untrained": [],
        "predictions": {
            "video_ids": ["v1", "v2", "v3"],
            "targets": [0, 0, 1],
            "scores": [[[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]],
            "thresholds": [None],
        },
    }
    ci = metric_intervals(result, "x", resamples=300, seed=1)["roc_auc"]
    # P(all three drawn videos of one class) = (2/3)^3 + (1/3)^3 = 1/3
    assert 60 < ci.undefined < 140 and ci.resamples == 300 - ci.undefined


def test_the_interval_leaves_out_the_classes_the_probe_never_trained_on():
    # issue 22's toy case: a and b ranked perfectly, c without training videos (0.833 with c, 1.000 without)
    result = {
        "task": "genre",
        "labels": ["a", "b", "c"],
        "untrained": ["c"],
        "predictions": {
            "video_ids": [f"v{i}" for i in range(6)],
            "targets": [0, 0, 1, 1, 2, 2],
            "scores": [
                [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]] + [[0.45, 0.45, 0.1]] * 2
            ],
            "thresholds": [None],
        },
    }
    ci = metric_intervals(result, "x", resamples=50, seed=0)["roc_auc"]
    assert ci.value == 1.0 and ci.low == 1.0
    assert metric_intervals({**result, "untrained": []}, "x", resamples=50, seed=0)[
        "roc_auc"
    ].value == pytest.approx(5 / 6)


def test_table2_footnote_lists_left_out_labels_and_f1_fallbacks():
    X, genre, tags, split = synthetic_videos(seed=0, n=240)
    genre, tags = genre.copy(), tags.copy()
    genre[np.flatnonzero(split == "test")[:2]] = "polka"  # only in the test split
    tags[split == "val", 1] = 0  # tag1: no positive validation video, so its threshold falls back to 0.5
    results = {}
    for task, labels in (("genre", genre), ("tagging", tags)):
        with pytest.warns(ProbeWarning):
            cfg = {**SMALL, "repeats": 1, "max_epochs": 5}
            result = summarise_repeats(task, run_probe_seeds(X, labels, split, task, cfg, [0], "cpu"))
        results[(task, "musicnn")] = json.loads(json.dumps(result))
    table = table2(results, resamples=20, seed=0)
    genre_row = table.set_index("task").loc["genre"]
    assert genre_row["excluded_labels"] == "polka (no training video)"
    assert table.set_index("task").loc["tagging", "f1_threshold_fallbacks"] == 1
    markdown = table2_markdown(table, PROVENANCE, "base")
    assert "left out of the macro averages: polka (no training video)" in markdown
    assert "1 of 3 tags had no positive validation video" in markdown and "(tag1)" in markdown


def test_an_old_result_without_predictions_gets_no_interval_and_cannot_be_compared():
    assert math.isnan(metric_intervals({"task": "genre", "labels": []}, "genre/musicnn")["roc_auc"].low)
    with pytest.raises(ValueError, match="genre/musicnn holds no test predictions.*delete it and rerun"):
        compare({"task": "genre"}, probed("genre"), ("genre/musicnn", "genre/both"))


def test_table2_reports_intervals_beside_figures_and_std_apart():
    results = {("genre", "musicnn"): probed("genre"), ("genre", "cl_agg"): probed("genre", seed=1, noise=1.0)}
    table = table2(results, resamples=100, seed=0)
    for column in ("auc", "f1", "pr_auc"):
        assert {f"{column}_ci_low", f"{column}_ci_high", f"{column}_std", f"{column}_ci_undefined"} <= set(
            table.columns
        )
    row = table.iloc[0]
    assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"] and row["auc_std"] >= 0
    markdown = table2_markdown(table, PROVENANCE, "base")
    assert f"{row['auc']:.2f} [{row['auc_ci_low']:.2f}, {row['auc_ci_high']:.2f}]" in markdown
    assert f"{int(row['n_test_videos'])} test videos" in markdown and "100 draws" in markdown


def test_small_collections_are_told_so():
    result = probed("genre", n=80)  # about 20 test videos
    table = table2({("genre", "musicnn"): result}, resamples=50, seed=0)
    notes = table2_notes(table)
    assert any(f"only {result['n_test_videos']} test videos" in note for note in notes)
    assert "Small collection" in table2_markdown(table, PROVENANCE, "base")
    big = table2({("genre", "musicnn"): probed("genre", n=600, repeats=1)}, resamples=20, seed=0)
    assert table2_notes(big) == []
    rare = json.loads(json.dumps(result))
    rare["labels"][0] = "polka"
    targets = np.asarray(rare["predictions"]["targets"])
    rare["predictions"]["targets"] = np.where(targets == 0, 1, targets).tolist()  # no polka left in test
    notes = table2_notes(table2({("genre", "musicnn"): rare}, resamples=20, seed=0))
    assert any("polka (0) has fewer than 2 test videos" in note for note in notes)


# --- RQ1 -------------------------------------------------------------------------------------------------


def test_a_cl_row_over_replicates_carries_the_training_variance():
    replicates = [probed("genre", seed=r, noise=2.0 * r, repeats=1) for r in range(3)]
    merged = merge_replicates(replicates)
    assert merged["replicate_of_seed"] == [0, 1, 2] and merged["repeats"] == 3
    aucs = [result["mean"]["roc_auc"] for result in replicates]
    assert merged["mean"]["roc_auc"] == pytest.approx(np.mean(aucs))
    over = metric_intervals(merged, "x", resamples=200, seed=0)["roc_auc"]
    one = metric_intervals(replicates[0], "x", resamples=200, seed=0)["roc_auc"]
    assert over.n_replicates == 3 and one.n_replicates == 1
    assert over.value == pytest.approx(np.mean(aucs))
    assert over.high - over.low > one.high - one.low  # the replicates' spread is in the interval
    assert over.low <= min(aucs) + 0.02 and replicate_repeats(5, 3) == 2 and replicate_repeats(2, 5) == 1
    comparison, cl, frozen = compare(merged, replicates[0], ("cl", "frozen"), resamples=100, seed=0)
    assert comparison.difference.n_replicates == 1 and cl == pytest.approx(np.mean(aucs))


def test_rq1_says_when_a_cl_rows_heads_did_not_learn():
    result = probed("genre")
    untrained = RetrievalRecord(
        "base", "other_videos", 10, 5, 10, 1, 5.5, 10, 5.5, 5, 100, 100, {}, {"a2v": 0.6, "v2a": 0.4},
        [ReplicateRetrieval(r, r, {}, {"a2v": 0.6, "v2a": 0.4}) for r in range(3)],
    )  # fmt: skip
    table = rq1({("genre", "cl_agg"): result, ("genre", "both"): result}, [("genre", "cl_agg", "both")],
                resamples=50, seed=0, heads={"": untrained})  # fmt: skip
    row = table.iloc[0]
    assert row["heads_learned"] == 0 and row["heads_replicates"] == 3
    assert "did not learn (0 of 3 training replicates" in row["sentence"]
    assert "| 0/3 |" in rq1_markdown(table, PROVENANCE)
    assert "each of its configuration's 3 training replicates" in rq1_markdown(table, PROVENANCE)


def test_a_representation_against_itself_differs_by_nothing():
    result = probed("genre")
    comparison, a, b = compare(result, result, ("x", "x"), resamples=100, seed=0)
    assert comparison.difference.value == 0 and comparison.difference.low == comparison.difference.high == 0
    assert comparison.p_value == 1.0 and a == b


def test_paired_comparison_intersects_the_test_videos():
    result, baseline = probed("genre"), probed("genre", seed=1, noise=2.0)
    dropped = json.loads(json.dumps(baseline))
    for key in ("video_ids", "targets"):
        dropped["predictions"][key] = dropped["predictions"][key][1:]
    dropped["predictions"]["scores"] = [scores[1:] for scores in dropped["predictions"]["scores"]]
    comparison, a, _ = compare(result, dropped, ("a", "b"), resamples=50, seed=0)
    assert comparison.difference.n_videos == result["n_test_videos"] - 1
    found = predictions(result, "a")
    assert a == pytest.approx(
        seed_mean(found, "roc_auc", np.arange(1, len(found.video_ids)))(
            0, np.arange(len(found.video_ids) - 1)
        )
    )


def test_a_clear_loss_is_called_worse_with_its_interval():
    good, bad = probed("genre"), probed("genre", seed=1, noise=3.0)
    pairs = [("genre", "cl_agg", "both")]
    table = rq1({("genre", "cl_agg"): bad, ("genre", "both"): good}, pairs, resamples=200, seed=0)
    row = table.iloc[0]
    assert row["difference"] < 0 and row["ci_high"] < 0 and row["p_value"] < 0.05
    assert row["sentence"].startswith("CL aggregated is worse than the concatenated features at genre")
    assert f"by {-row['difference']:.2f} [{-row['ci_high']:.2f}, {-row['ci_low']:.2f}]" in row["sentence"]
    assert f"{row['n_test_videos']} test videos)." in row["sentence"]
    assert row["sentence"] in rq1_markdown(table, PROVENANCE)


def test_an_interval_over_zero_is_not_called_a_difference():
    row = {"representation": "cl_a@clip_style", "baseline": "musicnn", "task": "tagging", "difference": 0.02,
           "ci_low": -0.05, "ci_high": 0.09, "p_value": 0.6, "n_test_videos": 17}  # fmt: skip
    sentence = rq1_sentence(row)
    assert sentence.startswith("CL audio (clip_style) and the musicnn features do not differ clearly")
    assert "+0.02 [-0.05, +0.09]" in sentence and "(p = 0.600, 17 test videos)" in sentence


def test_rq1_pairs_each_cl_row_with_its_frozen_counterpart():
    plan = Plan(CONFIG)
    pairs = plan.rq1_pairs()
    for task in plan.probe_tasks:
        assert (task, "cl_a", "musicnn") in pairs and (task, "cl_v", "r2plus1d") in pairs
        assert (task, "cl_agg", "both") in pairs
        for configuration in plan.table2_configurations:
            # against the concatenated frozen features of the encoders it was trained on
            pair = plan.encoder_pair(configuration)
            expected = "both" if pair == ("musicnn", "r2plus1d") else "+".join(pair)
            assert (task, f"cl_agg@{configuration}", expected) in pairs
        assert (task, "cl_agg@weightfree", "mir+style") in pairs
    assert set(plan.rq1_inputs()) <= set(plan.table2_inputs())
    assert "results/rq1.csv" in plan.final_targets()


def test_the_probe_figure_has_an_rq1_panel(tmp_path):
    results = {("genre", key): probed("genre", seed=i, noise=i) for i, key in enumerate(["both", "cl_agg"])}
    table = table2(results, resamples=50, seed=0)
    answer = rq1(results, [("genre", "cl_agg", "both")], resamples=50, seed=0)
    plot_probes(table, tmp_path / "without.png")
    plot_probes(table, tmp_path / "with.png", answer)
    width = {name: plt.imread(tmp_path / f"{name}.png").shape[1] for name in ("without", "with")}
    assert width["with"] > width["without"] * 1.4  # a third panel beside ROC-AUC and F1


def test_the_probe_figure_is_a_grid_of_one_row_per_task_readable_at_its_size(tmp_path):
    tasks = ("genre", "tagging")
    keys = ["both", "cl_agg"]
    results = {(task, key): probed(task, seed=i, noise=i) for task in tasks for i, key in enumerate(keys)}
    table = table2(results, resamples=50, seed=0)
    answer = rq1(results, [(task, "cl_agg", "both") for task in tasks], resamples=50, seed=0)
    plot_probes(table, tmp_path / "probes.png", answer)
    height, width = plt.imread(tmp_path / "probes.png").shape[:2]
    assert width <= 1800 and height > 0.4 * width  # two rows of three panels, not six in one row


@pytest.mark.slow
def test_rq1_builds_only_the_probes_it_compares(tiny_workdir):
    printed = run_snakemake(tiny_workdir, "results/rq1.csv", "-n").stdout
    stats = printed[printed.index("Job stats") : printed.index("total")]
    jobs = {line.split()[0] for line in stats.splitlines()[3:] if line.strip()}
    assert {"rq1", "probe", "probe_configuration", "train", "retrieval"} <= jobs  # retrieval: did heads learn
    assert not jobs & {"table2", "table1", "figure_probes"}
