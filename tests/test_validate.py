import copy

import pytest
import yaml

from mvcl.validate import ConfigError, check_config, check_unique_keys, load_strict
from tests.helpers import REPO, run_snakemake, write_config


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_repository_config_passes(config):
    check_config(config)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["segments"].update(clip_seconds=6), "segments.clip_seconds"),
        (lambda c: c["dataset"]["split"].update(train=0.9), "dataset.split"),
        (lambda c: c["demo"].update(duration_s=20), "demo.duration_s"),
        (lambda c: c["probe"].update(configuration="nope"), "probe.configuration"),
        (lambda c: c["dataset"].update(videos_dir="elsewhere"), "dataset.videos_dir"),
        (lambda c: c["recommend"].update(configuration="nope"), "recommend.configuration: nope not a key"),
        (lambda c: c["rq2"].update(configurations=["base", "nope"]), "rq2.configurations: nope not a key"),
    ],
)
def test_inconsistent_values_name_their_key(config, change, key):
    broken = copy.deepcopy(config)
    change(broken)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(broken)


def test_every_repository_config_file_has_unique_keys():
    files = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
    files += sorted((REPO / ".test").glob("*.yaml"))
    check_unique_keys(files)
    assert len(files) >= 4


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("resources:\n  gpu: true\nseed: 1\nresources:\n  gpu: false\n", "resources", 4, 1),
        ("training:\n  lr: 0.1\n  patience: 2\n  lr: 0.2\n", "lr", 4, 2),
        ("configurations:\n  a: {model: {layers: 2, layers: 3}}\n", "layers", 2, 2),
    ],
)
def test_a_key_defined_twice_names_the_file_and_line(tmp_path, text, key, line, first):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)  # PyYAML alone keeps the last value silently
    pattern = rf"dup\.yaml, line {line}: key '{key}' is defined twice \(first at line {first}\)"
    with pytest.raises(ConfigError, match=pattern):
        check_unique_keys([path])
    with pytest.raises(ConfigError, match=pattern):
        check_config(yaml.safe_load((REPO / "config.yaml").read_text()), [REPO / "config.yaml", path])


def test_merge_keys_may_repeat_and_are_not_duplicates(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("a: &x {lr: 1}\nb: &y {gamma: 0.5}\nc:\n  <<: *x\n  <<: *y\n  lr: 2\n")
    assert load_strict(path)["c"] == {"lr": 2, "gamma": 0.5}


@pytest.mark.slow
def test_the_workflow_refuses_a_config_file_with_a_duplicate_key(tmp_path):
    write_config(tmp_path, {})
    extra = tmp_path / "extra.yaml"
    extra.write_text("resources:\n  gpu: true\nresources:\n  gpu: false\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(extra), check=False)
    assert result.returncode != 0
    assert "extra.yaml, line 3: key 'resources' is defined twice" in result.stdout + result.stderr
