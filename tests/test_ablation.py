"""The one-factor ablation, the loss-floor record, Table 2's rows beyond the study, and their rules."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mvcl.beyond.ablation import ablation_table
from mvcl.configuration import resolve_configuration
from mvcl.learn.bounds import batch_bounds, loss_floor_record
from mvcl.plan import ablation_overrides, describe_override
from mvcl.report.figures.ablation import plot_ablation
from mvcl.report.figures.probes import plot_probes
from mvcl.report.names import representation_name
from mvcl.report.table2 import table2, table2_markdown
from tests.helpers import REPO, snakemake_command

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
# The six factors of the shipped ablation, each switched by one entry of config.yaml's `ablation`.
FACTORS = {
    "model.output_activation",
    "loss.learnable_temperature",
    "loss.temperature",
    "loss.exclude_positive",
    "training.segments",
    "model.batch_norm",
}


def leaves(settings: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resolve_entry(config: dict, name: str) -> dict:
    overrides = {
        **config["configurations"],
        **ablation_overrides(config["configurations"], config["ablation"]["entries"]),
    }
    return resolve_configuration({**config, "configurations": overrides}, name)


# --- ablation entries -----------------------------------------------------------------------------------------


def test_every_shipped_ablation_entry_changes_exactly_one_factor_of_base():
    base = leaves(resolve_configuration(CONFIG, "base"))
    changed = {}
    for name in CONFIG["ablation"]["entries"]:
        entry = leaves(resolve_entry(CONFIG, name))
        differences = {key for key in base if key != "name" and entry[key] != base[key]}
        assert len(differences) == 1, f"ablation.{name} changes {sorted(differences)}"
        changed[name] = differences.pop()
    assert set(changed.values()) == FACTORS


def test_an_entry_keeps_what_base_and_the_base_settings_changed():
    config = {
        "model": {"hidden_dim": 64},
        "configurations": {"base": {"loss": {"temperature": 0.5}}, "other": {}},
        "ablation": {"entries": {"no_sigmoid": {"model": {"output_activation": "none"}}}},
    }
    resolved = resolve_entry(config, "no_sigmoid")
    assert resolved["model"]["hidden_dim"] == 64  # base settings
    assert resolved["loss"]["temperature"] == 0.5  # base's own override
    assert resolved["model"]["output_activation"] == "none"  # the entry
    assert resolved["name"] == "no_sigmoid"


def test_an_entry_named_like_a_configuration_or_without_base_is_an_error():
    with pytest.raises(ValueError, match="tau03 also named in configurations"):
        ablation_overrides({"base": {}, "tau03": {}}, {"tau03": {"loss": {"temperature": 0.3}}})
    with pytest.raises(ValueError, match="configuration 'base'"):
        ablation_overrides({"clip": {}}, {"x": {}})
    assert ablation_overrides({"clip": {}}, {}) == {}


def test_an_override_is_described_by_its_leaves():
    override = {"model": {"temporal": {"enabled": True}, "batch_norm": False}, "loss": {"temperature": 0.07}}
    assert describe_override(override) == (
        "model.temporal.enabled=true, model.batch_norm=false, loss.temperature=0.07"
    )
    assert describe_override({}) == ""


# --- loss floor -----------------------------------------------------------------------------------------------


def test_the_studys_batch_leaves_two_of_fourteen_nats_and_clip_style_all_of_them():
    """docs/design.md: a 1000-batch with sigmoid cosines at τ = 1 cannot fall below about 11.8 against 13.8 at chance."""
    pairs, chance, floor = batch_bounds(resolve_configuration(CONFIG, "base"), segments_per_video=6)
    assert (pairs, round(chance, 1), round(floor, 1)) == (1000, 13.8, 11.8)
    pairs, chance, floor = batch_bounds(resolve_configuration(CONFIG, "clip_style"), segments_per_video=6)
    assert pairs == 1000 and floor < 0.01 * chance


def test_a_temporal_batch_is_whole_videos_and_adds_the_video_loss():
    cfg = resolve_configuration(CONFIG, "temporal")
    cfg["training"]["batch_size"] = 1000
    pairs, chance, floor = batch_bounds(cfg, segments_per_video=6)
    assert pairs == 166 * 6  # 1000 // 6 whole videos
    assert chance == pytest.approx(math.log(996) + math.log(166))  # mean of directions, video weight 1


def history(val_loss, val_chance=4.0, val_floor=2.0):
    epochs = len(val_loss)
    return pd.DataFrame(
        {
            "epoch": range(epochs),
            "train_loss": val_loss,
            "val_loss": val_loss,
            "temperature": [1.0] * epochs,
            "val_chance": [val_chance] * epochs,
            "val_floor": [val_floor] * epochs,
        }
    )


def test_loss_floor_record_sets_the_best_loss_between_floor_and_chance():
    record = loss_floor_record(history([3.9, 3.5, 3.6]), resolve_configuration(CONFIG, "base"), 6)
    assert record["loss_best_epoch"] == 1 and record["loss_epochs"] == 3
    assert record["loss_val_best"] == 3.5
    assert (record["loss_val_chance"], record["loss_val_floor"], record["loss_headroom"]) == (4.0, 2.0, 2.0)
    assert record["loss_headroom_used"] == pytest.approx(0.25)
    assert record["loss_batch_pairs"] == 1000
    assert all(key.startswith("loss_") for key in record)  # no clash with diagnostics.json's columns


def test_loss_floor_record_needs_the_bounds_in_the_history():
    with pytest.raises(ValueError, match="val_floor"):
        loss_floor_record(history([3.0]).drop(columns="val_floor"), resolve_configuration(CONFIG, "base"), 6)


# --- the table and the figure ---------------------------------------------------------------------------------


def retrieval(median):
    return {
        "median_rank_a2v": median,
        "median_rank_a2v_ci_low": median - 3,
        "median_rank_a2v_ci_high": median + 4,
        "median_rank_v2a": median + 1,
        "median_rank_v2a_ci_low": median - 2,
        "median_rank_v2a_ci_high": median + 5,
        "chance_median_rank": 36.5,
        "n_replicates": 5,
        "replicates_learned": 3,
        "recall@10_a2v": 0.5,
        "recall@10_v2a": 0.4,
        "full_median_rank_a2v": median,
        "full_median_rank_v2a": median,
        "full_chance_median_rank": 36.5,
    }


def probe(auc):
    return {"mean": {"roc_auc": auc, "f1": 0.5}, "std": {"roc_auc": 0.01, "f1": 0.02}, "repeats": 5}


def floor_record(best):
    return {
        "loss_val_best": best,
        "loss_val_chance": 8.0,
        "loss_val_floor": 6.0 if best > 6 else -20.0,
        "loss_headroom_used": 0.1,
        "loss_temperature": 1.0,
    }


@pytest.fixture
def ablation_rows():
    names = ["base", "no_sigmoid", "tau007"]
    return ablation_table(
        names,
        {"base": "the study's choices", "no_sigmoid": "model.output_activation=none"},
        {"base": retrieval(30.0), "no_sigmoid": retrieval(20.0), "tau007": retrieval(5.0)},
        {(name, task): probe(0.6 + 0.1 * i) for i, name in enumerate(names) for task in ("genre", "tagging")},
        {"base": floor_record(7.8), "no_sigmoid": floor_record(7.5), "tau007": floor_record(3.0)},
        ["genre", "tagging"],
    )


def test_ablation_table_has_one_row_per_entry_with_ranks_aucs_and_loss_bounds(ablation_rows):
    assert ablation_rows["name"].tolist() == ["base", "no_sigmoid", "tau007"]
    assert ablation_rows["change"].tolist() == ["the study's choices", "model.output_activation=none", ""]
    assert ablation_rows["median_rank_a2v"].tolist() == [30.0, 20.0, 5.0]
    assert ablation_rows["median_rank_a2v_ci_high"].tolist() == [34.0, 24.0, 9.0]
    assert ablation_rows["replicates_learned"].tolist() == [3, 3, 3]
    assert {"genre_auc_ci_low", "tagging_auc_ci_high"} <= set(ablation_rows)
    assert ablation_rows["genre_auc"].tolist() == pytest.approx([0.6, 0.7, 0.8])
    assert ablation_rows["tagging_repeats"].tolist() == [5, 5, 5]
    assert {"loss_val_best", "loss_val_floor", "loss_val_chance", "loss_temperature"} <= set(ablation_rows)


def test_ablation_figure_is_drawn(ablation_rows, tmp_path):
    plot_ablation(ablation_rows, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").stat().st_size > 20_000


def test_table2_adds_the_rows_of_other_configurations_after_the_studys():
    results = {}
    for task in ("genre", "tagging"):
        for key in ("cl_agg@temporal", "musicnn", "cl_agg", "cl_a@clip_style", "cl_agg@clip_style", "both"):
            results[(task, key)] = {**probe(0.7), "n_train": 90, "n_test": 12}
    table = table2(results)
    genre = table[table["task"] == "genre"]
    assert genre["representation"].tolist() == [
        "musicnn",
        "both",
        "cl_agg",
        "cl_agg@temporal",
        "cl_a@clip_style",
        "cl_agg@clip_style",
    ]
    assert genre["configuration"].tolist() == ["", "", "", "temporal", "clip_style", "clip_style"]
    markdown = table2_markdown(table, {}, "base")
    assert "| CL aggregated (clip_style) |" in markdown and "| CL aggregated |" in markdown
    assert representation_name("cl_v@temporal") == "CL video (temporal)"
    plot_probes(table, "/dev/null")  # the probe figure keeps the study's rows and ignores the others


# --- the rules ------------------------------------------------------------------------------------------------


def write_inputs(folder, videos=40, per_video=3, seed=0):
    """Everything the training side reads: segments, manifest (genre), coupled features, provenance."""
    rng = np.random.default_rng(seed)
    n = videos * per_video
    audio = rng.normal(size=(n, 40))
    video = audio @ rng.normal(size=(40, 16)) / math.sqrt(40) + 0.5 * rng.normal(size=(n, 16))
    order = np.arange(videos)
    split = np.where(order < 0.6 * videos, "train", np.where(order < 0.8 * videos, "val", "test"))
    video_ids = [f"v{i:03d}" for i in range(videos)]
    segments = pd.DataFrame(
        {
            "video_id": np.repeat(video_ids, per_video),
            "segment": np.tile(np.arange(per_video), videos),
            "split": np.repeat(split, per_video),
            "shard": 0,
        }
    )
    manifest = pd.DataFrame({"video_id": video_ids, "genre": [f"g{i % 3}" for i in range(videos)]})
    results = folder / "results"
    for sub in ("data", "features"):
        (results / sub).mkdir(parents=True)
    segments.to_parquet(results / "data/segments.parquet")
    manifest.to_parquet(results / "data/manifest.parquet")
    np.save(results / "features/musicnn.npy", audio.astype(np.float32))
    np.save(results / "features/r2plus1d.npy", video.astype(np.float32))
    (results / "provenance.json").write_text(json.dumps({"audio": {"name": "synthetic"}, "video": {}}))


@pytest.mark.slow
def test_ablation_temporal_and_table2_rules_on_the_shipped_configurations(tmp_path):
    """The training-side rules on synthetic features with config.yaml's clip_style, temporal and one ablation
    entry; every trained model keeps a changed base setting (overrides kept as written, as configurations).
    Table 2's extra rows are planned (dry run) and built by the same probe rule the ablation uses."""
    write_inputs(tmp_path)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["model"]["hidden_dim"] = 32  # a base setting every configuration and entry must keep
    shipped = config["configurations"]
    config["configurations"] = {name: shipped[name] for name in ("base", "clip_style", "temporal")}
    config["configurations"]["temporal"]["model"]["temporal"].update(width=16, heads=2)
    config["ablation"]["entries"] = {"tau007": config["ablation"]["entries"]["tau007"]}
    config["training"].update(max_epochs=3, batch_size=64)
    config["probe"].update(repeats=1, max_epochs=20, hidden=[16, 8])
    config["dataset"]["msd_tags"] = ""  # genre only
    config["segments"]["count"] = 3
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    stages = ("common", "train", "retrieval", "probe", "ablation")
    (tmp_path / "Snakefile").write_text(
        "from snakemake.utils import validate\n\n\n"
        'configfile: "config.yaml"\n\n\n'
        f'validate(config, "{REPO}/schemas/config.schema.yaml")\n\n\n'
        + "".join(f'include: "{REPO}/rules/{stage}.smk"\n' for stage in stages)
    )
    command = snakemake_command(tmp_path, tmp_path / "Snakefile")

    def run(*args):
        result = subprocess.run(
            [*command, "--cores", "2", *args], capture_output=True, text=True, timeout=1200
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
        return result.stdout + result.stderr

    planned = run("-n", "results/table2.csv")  # Table 2 plans exactly what it needs: no ablation entry
    for name in ("clip_style", "temporal"):
        assert f"results/probes/genre/cl_agg@{name}.json" in planned
    assert "tau007" not in planned and "ablation_table" not in planned
    run(
        "results/figures/ablation.png",
        "results/table1.csv",
        "results/metrics/temporal/loss_floor.json",
        "results/probes/genre/cl_agg@temporal.json",
    )

    results = tmp_path / "results"
    ablation = pd.read_csv(results / "ablation.csv").set_index("name")
    assert ablation.index.tolist() == ["base", "tau007"]
    assert ablation.loc["tau007", "change"] == "loss.temperature=0.07"
    assert ablation["genre_auc"].between(0, 1).all() and "tagging_auc" not in ablation
    # probe seeds spread over the 5 replicates, at least one each (base: probe.repeats 1, tau007: 2)
    assert ablation["genre_repeats"].tolist() == [5, 5]
    assert (ablation["genre_auc_ci_low"] <= ablation["genre_auc"]).all() and (
        ablation["n_replicates"] == 5
    ).all()
    assert (ablation["median_rank_a2v_ci_low"] <= ablation["median_rank_a2v"]).all()
    assert (ablation["loss_val_best"] >= ablation["loss_val_floor"]).all()
    assert (results / "figures/ablation.png").stat().st_size > 20_000
    for name in ("base", "tau007", "clip_style", "temporal"):
        settings = torch.load(results / "models" / name / "replicate_0/heads.pt", weights_only=True)["config"]
        assert settings["model"]["hidden_dim"] == 32
        assert settings["loss"]["temperature"] == (1.0 if name == "base" else 0.07)
    temporal = pd.read_csv(results / "models/temporal/replicate_0/history.csv")["val_loss"]
    assert temporal.iloc[-1] < temporal.iloc[0]  # the temporal model learns through the rules
    floor = json.loads((results / "metrics/temporal/loss_floor.json").read_text())
    assert floor["loss_val_best"] == pytest.approx(temporal.min())
    assert floor["loss_batch_pairs"] == 192  # its own batch_size 192 // 3 segments = 64 whole videos
    assert json.loads((results / "probes/genre/cl_agg@temporal.json").read_text())["task"] == "genre"
    table1 = pd.read_csv(results / "table1.csv")
    assert table1["configuration"].tolist() == ["base", "clip_style", "temporal", "chance"]
    assert "| base (study) |" in (results / "table1.md").read_text()
