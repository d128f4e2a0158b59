import copy

import pytest
import yaml

from mvcl.validate import ConfigError, check_config
from tests.helpers import REPO


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
    ],
)
def test_inconsistent_values_name_their_key(config, change, key):
    broken = copy.deepcopy(config)
    change(broken)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(broken)
