"""The coupling sweep's plan: which configurations it trains, on which corpus and splits, and its table."""

from __future__ import annotations

import copy

import pytest
import yaml

from mvcl.plan import Plan
from mvcl.qualitative.diagnostics import read_coupling_sweep
from mvcl.validate import check_config
from tests.helpers import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_sweep_runs_train_every_sweep_configuration_on_the_sized_corpus():
    plan = Plan(CONFIG)
    assert plan.sweep_configurations == ["base", "clip_style"]
    settings = plan.sweep_config(1.0)
    assert list(settings["configurations"]) == ["base", "clip_style"]
    assert settings["demo"]["av_coupling"] == 1.0 and settings["demo"]["videos"] == CONFIG["sweep"]["videos"]
    split = CONFIG["sweep"]["overrides"]["dataset"]["split"]
    assert {key: settings["dataset"]["split"][key] for key in split} == split
    assert settings["training"]["segments"] == "all"
    assert settings["demo"]["duration_s"] > settings["segments"]["count"] * settings["segments"]["seconds"]
    assert settings["ablation"] == {} and not any(settings["outputs"].values())
    assert CONFIG["training"]["segments"] == "one"  # the run's own config is left alone


def test_a_sweep_run_names_only_its_own_configurations():
    config = copy.deepcopy(CONFIG)
    config["recommend"]["configuration"], config["rq2"]["configurations"] = "temporal", ["temporal"]
    check_config(config)
    check_config(Plan(config).sweep_config(0.5))  # the nested run trains base and clip_style only


def test_sweep_configurations_must_be_configurations_and_the_older_single_key_is_refused():
    config = copy.deepcopy(CONFIG)
    config["sweep"]["configuration"] = "tau03"
    with pytest.raises(ValueError, match="sweep: Additional properties are not allowed .'configuration'"):
        Plan(config)
    config["sweep"] = {**CONFIG["sweep"], "configurations": ["base", "nope"]}
    with pytest.raises(ValueError, match="sweep.configurations: nope not a key of configurations"):
        Plan(config).sweep_config(0.0)


def test_sweep_table_has_one_row_per_configuration_and_coupling_with_intervals():
    record = {"median_rank_a2v": 3.0, "median_rank_v2a": 4.0, "chance_median_rank": 50.5}
    with_ci = {**record, "median_rank_a2v_ci_low": 2.0, "median_rank_a2v_ci_high": 5.0, "n_videos": 30}
    table = read_coupling_sweep(
        {
            ("clip_style", 1.0): with_ci,
            ("base", 0.0): record,
            ("base", 1.0): record,
            ("clip_style", 0.0): record,
        }
    )
    assert table[["configuration", "av_coupling"]].values.tolist() == [
        ["clip_style", 0.0],
        ["clip_style", 1.0],
        ["base", 0.0],
        ["base", 1.0],
    ]
    assert table["median_rank_a2v_ci_high"].tolist()[1] == 5.0
    assert table["median_rank_v2a_ci_low"].isna().all()
