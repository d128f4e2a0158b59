"""Resolving named configurations over the base settings and the schema's defaults; picking the device."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from mvcl.configuration import (
    deep_merge,
    drop_removed,
    find_schema,
    load_schema,
    resolve_configuration,
    with_defaults,
)
from mvcl.device import pick_device
from tests.helpers import REPO


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_a_partial_config_is_completed_as_snakemake_validates_it(config):
    partial = {key: config[key] for key in ("dataset", "demo", "segments", "features")}
    partial["outputs"] = {"rq2": False}
    complete = with_defaults(partial)
    outputs = load_schema()["properties"]["outputs"]["properties"]
    assert complete["outputs"] == {**{key: spec["default"] for key, spec in outputs.items()}, "rq2": False}
    assert complete["rq2"]["seeds"] == 25 and complete["sweep"]["configurations"] == ["base", "clip_style"]
    assert "outputs" in partial and "rq2" not in partial  # the input is left alone
    with pytest.raises(ValueError, match=r"^rq2\.seeds: 0 is less than the minimum of 1"):
        with_defaults({**partial, "rq2": {"seeds": 0}})


def test_every_configuration_of_config_yaml_resolves_completely(config):
    schema = load_schema()
    for name in config["configurations"]:
        resolved = resolve_configuration(config, name)
        assert resolved["name"] == name
        for section in ("model", "loss", "training"):
            assert set(schema["$defs"][section]["properties"]) <= set(resolved[section]), section


def test_override_changes_only_its_keys(config):
    base, emb512 = resolve_configuration(config, "base"), resolve_configuration(config, "emb512")
    assert emb512["model"]["embedding_dim"] == 512
    assert {**emb512["model"], "embedding_dim": base["model"]["embedding_dim"]} == base["model"]
    assert emb512["loss"] == base["loss"] and emb512["training"] == base["training"]
    assert resolve_configuration(config, "tau03")["loss"]["temperature"] == 0.3


def test_a_changed_base_key_reaches_every_configuration(config):
    changed = copy.deepcopy(config)
    changed["model"]["hidden_dim"] = 128
    assert resolve_configuration(changed, "emb512")["model"]["hidden_dim"] == 128


def test_partial_config_gets_schema_defaults_and_nested_overrides_merge():
    config = {
        "training": {"lr": 0.001},
        "configurations": {"seq": {"model": {"temporal": {"enabled": True, "depth": 1}}}},
    }
    resolved = resolve_configuration(config, "seq")
    assert resolved["training"]["lr"] == 0.001 and resolved["training"]["batch_size"] == 1000
    assert resolved["model"]["temporal"] == {
        "enabled": True,
        "depth": 1,
        "width": 256,
        "heads": 4,
        "video_loss_weight": 1.0,
    }
    assert resolved["loss"]["exclude_positive"] is True


def test_resolving_leaves_the_config_unchanged(config):
    before = copy.deepcopy(config)
    resolve_configuration(config, "deep4")["model"]["layers"] = 99
    assert config == before


def test_unknown_configuration_names_the_available_ones(config):
    with pytest.raises(ValueError, match="available: base, emb512, deep4"):
        resolve_configuration(config, "nope")


def test_unknown_key_is_an_error_that_names_it():
    config = {"configurations": {"typo": {"model": {"embeding_dim": 3}}}}
    with pytest.raises(ValueError, match=r"configurations\.typo\.model\.embeding_dim"):
        resolve_configuration(config, "typo")


def test_schema_is_found_from_the_package_or_the_environment(monkeypatch, tmp_path):
    assert find_schema() == REPO / "schemas" / "config.schema.yaml"
    monkeypatch.setenv("MVCL_SCHEMA", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="MVCL_SCHEMA"):
        find_schema()


def test_auto_device_falls_back_to_cpu_and_cuda_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda:0")


def test_the_replicate_count_is_global_and_every_name_has_one_folder_per_replicate(config):
    from mvcl.plan import Plan

    changed = copy.deepcopy(config)
    changed["configurations"]["emb512"] = {"training": {"replicates": 2}}
    with pytest.raises(
        ValueError, match="configurations.emb512.training.replicates: the replicate count is global"
    ):
        resolve_configuration(changed, "emb512")
    plan = Plan({**config, "training": {**config["training"], "replicates": 3}})
    assert plan.replicate_files("tau03", "heads.pt") == [
        f"results/models/tau03/replicate_{r}/heads.pt" for r in range(3)
    ]
    assert load_schema()["$defs"]["training"]["properties"]["replicates"]["default"] == 5


def test_a_null_entry_removes_a_configuration_or_ablation_entry_that_config_yaml_defines(config):
    changes = {"configurations": {"temporal": None, "clip_style": None}, "ablation": {"entries": {"tau007": None}}}
    merged = deep_merge(config, changes)
    assert sorted(drop_removed(merged)) == [
        "ablation.entries.tau007",
        "configurations.clip_style",
        "configurations.temporal",
    ]
    assert "temporal" not in merged["configurations"] and "clip_style" not in merged["configurations"]
    assert "tau007" not in merged["ablation"]["entries"] and "no_sigmoid" in merged["ablation"]["entries"]
    assert drop_removed(merged) == []  # nothing left to remove
    assert drop_removed({"segments": {"count": 6}}) == []  # a config without the sections


def test_the_study_settings_train_the_studys_six_configurations_and_no_ablation(config):
    study = deep_merge(config, yaml.safe_load((REPO / "configs/study.yaml").read_text()))
    drop_removed(study)
    assert list(study["configurations"]) == ["base", "emb512", "deep4", "single_head", "tau03", "ae_init"]
    assert study["ablation"]["entries"] == {} and study["outputs"]["ablation"] is False
