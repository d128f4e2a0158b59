"""The demo check of the study's question: the whole pipeline, synthetic videos to median ranks.

With no link between picture and sound (demo.av_coupling 0) cross-modal retrieval must sit at chance, as the
study found; when each segment's picture follows its sound (coupling 1) it must fall far below chance. The
test fails if decoding, the encoders, the loss, the batch sampler or the ranking is broken.
"""

from __future__ import annotations

import pytest
import yaml

from mvcl.retrieval import RetrievalRecord
from tests.helpers import load_test_config, run_snakemake, write_config

pytestmark = pytest.mark.slow

CONFIGURATIONS = ("base", "clip_style")
COUPLINGS = (0.0, 1.0)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One run of the coupling sweep's own rules (nested runs, one per coupling, several configurations) on
    the learning test's settings: every test here reads it (a nested run is the whole pipeline up to Table 1's
    retrieval of each configuration, as `snakemake results/metrics/{name}/retrieval.json` builds it)."""
    workdir = tmp_path_factory.mktemp("sweep")
    config_path = write_config(workdir, load_test_config("learning"))
    config = yaml.safe_load(config_path.read_text())
    config.pop("ablation", None)
    config["sweep"] = {
        "couplings": list(COUPLINGS),
        "videos": 48,
        "configurations": list(CONFIGURATIONS),
        "overrides": {"features": {"shard_videos": 48}},  # one feature job per encoder and run
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(workdir, "results/figures/coupling.png")
    return workdir


def median_ranks(sweep, coupling):
    """Each configuration's retrieval record of the nested run at `coupling`, flattened."""
    run = sweep / "results" / "sweep" / f"coupling_{coupling}" / "run"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["demo"]["videos"] == 48 and config["demo"]["av_coupling"] == coupling
    return {
        name: RetrievalRecord.load(run / "results" / "metrics" / name / "retrieval.json").flat()
        for name in CONFIGURATIONS
    }


@pytest.fixture(scope="module")
def uncoupled(sweep):
    return median_ranks(sweep, 0.0)


@pytest.fixture(scope="module")
def coupled(sweep):
    return median_ranks(sweep, 1.0)


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


def test_the_coupling_sweep_shows_chance_at_zero_and_alignment_at_one(sweep):
    """The sweep's own rules (nested runs, one per coupling, several configurations) pin both known answers."""
    import pandas as pd

    table = pd.read_csv(sweep / "results" / "sweep" / "coupling.csv")
    assert sorted(table["configuration"].unique()) == sorted(CONFIGURATIONS)
    assert sorted(table["av_coupling"].unique()) == list(COUPLINGS)
    assert (sweep / "results" / "figures" / "coupling.png").stat().st_size > 20_000
    for direction in ("a2v", "v2a"):
        rank, low, high, p = (
            f"median_rank_{direction}{suffix}" for suffix in ("", "_ci_low", "_ci_high", "_chance_p")
        )
        coupled, uncoupled = table[table["av_coupling"] == 1.0], table[table["av_coupling"] == 0.0]
        # coupling 1: every configuration clearly below chance, the best one far below it
        assert (coupled[high] < coupled["chance_median_rank"]).all() and (coupled[p] < 0.01).all(), coupled
        assert (coupled[rank] / coupled["chance_median_rank"]).min() <= 0.4, coupled
        # coupling 0: at chance (its interval holds chance; random pairings do as well)
        chance = uncoupled["chance_median_rank"]
        assert ((uncoupled[low] <= chance) & (chance <= uncoupled[high])).all() and (
            uncoupled[p] > 0.01
        ).all()
