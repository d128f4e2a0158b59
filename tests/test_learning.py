"""The demo check of the study's question: the whole pipeline, synthetic videos to median ranks.

With no link between picture and sound (demo.av_coupling 0) cross-modal retrieval must sit at chance, as the
study found; when each segment's picture follows its sound (coupling 1) it must fall far below chance. The
test fails if decoding, the encoders, the loss, the batch sampler or the ranking is broken.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import deep_update, load_test_config, run_snakemake, write_config

pytestmark = pytest.mark.slow

CONFIGURATIONS = ("base", "clip_style")


def median_ranks(workdir, coupling):
    changes = deep_update(load_test_config("learning"), {"demo": {"av_coupling": coupling}})
    config_path = write_config(workdir, changes)
    config = yaml.safe_load(config_path.read_text())
    config["configurations"] = {name: config["configurations"][name] for name in CONFIGURATIONS}
    config.pop("ablation", None)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [f"results/metrics/{name}/retrieval.json" for name in CONFIGURATIONS]
    run_snakemake(workdir, *targets)
    return {
        name: json.loads((workdir / target).read_text())
        for name, target in zip(CONFIGURATIONS, targets, strict=True)
    }


@pytest.fixture(scope="module")
def uncoupled(tmp_path_factory):
    return median_ranks(tmp_path_factory.mktemp("coupling0"), 0.0)


@pytest.fixture(scope="module")
def coupled(tmp_path_factory):
    return median_ranks(tmp_path_factory.mktemp("coupling1"), 1.0)


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_without_coupling_retrieval_sits_at_chance(uncoupled, configuration):
    metrics = uncoupled[configuration]
    chance = metrics["chance_median_rank"]
    for direction in ("a2v", "v2a"):
        assert 0.7 * chance <= metrics[f"median_rank_{direction}"] <= 1.3 * chance, metrics


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_with_coupling_retrieval_falls_far_below_chance(coupled, configuration):
    metrics = coupled[configuration]
    chance = metrics["chance_median_rank"]
    for direction in ("a2v", "v2a"):
        assert metrics[f"median_rank_{direction}"] <= 0.4 * chance, metrics
