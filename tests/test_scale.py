"""benchmarks/scale.py's rehearsal: the whole downstream of the study's config, costed from measured rows."""

import importlib.util
import json
import sys

import pytest

from tests.helpers import REPO

# Widths of the encoders the study's config uses (musicnn pool, R(2+1)D, MIR descriptors, video style).
WIDTHS = {"musicnn": 1506, "r2plus1d": 512, "mir": 133, "style": 45}


@pytest.fixture
def scale(monkeypatch):
    """benchmarks/scale.py as a module (the folder is not a package and never goes on sys.path)."""
    modules = {}
    for name in ("scratch", "scale"):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, modules[name])
        spec.loader.exec_module(modules[name])
    return modules["scale"]


def row(step: str, fraction: float = 1.0, code: str = "after", **details) -> dict:
    return {
        "step": step,
        "code": code,
        "fraction": fraction,
        "seconds_full_size": details.pop("full", 0.0),
        "details": json.dumps(details),
    }


# Measured at a tenth of the size: a base epoch 10 s at full size, every segment 60 s, the Transformer 200 s; a
# retrieval job's parts as below; a genre seed-epoch 4 s at 1506-d and 1 s at 256-d, tagging half of genre's.
ROWS = [
    row("train", 0.1, epoch_seconds=1.0),
    row("train", 0.1, code="before (x)", epoch_seconds=99.0),
    row("train_clip_style", 0.1, epoch_seconds=6.0),
    row("train_temporal", 0.1, epoch_seconds=20.0),
    row("retrieval", 0.5, full=12.0),
    row(
        "retrieval_job",
        0.5,
        full=1e6,  # the row's own quadratic upper bound: not used
        parts_seconds={"ranks": 9.0, "study_protocol": 1.0, "permutation_null": 7.0, "intervals": 1.0},
        table1_comparison_seconds=1.0,
    ),
    row(
        "probe_genre",
        0.1,
        seconds_per_seed_epoch=0.4,
        width=1506,
        table2_cell_seconds=0.5,
        rq1_pair_seconds=1.0,
        cell_seconds=0.0,
    ),
    row("probe_genre_cl", 0.1, seconds_per_seed_epoch=0.1, width=256),
    row("probe_genre_cl1", 0.1, seconds_per_seed_epoch=0.3, width=256),
    row(
        "probe_tagging",
        0.1,
        seconds_per_seed_epoch=0.2,
        table2_cell_seconds=0.3,
        rq1_pair_seconds=0.6,
        cell_seconds=0.0,
    ),
]


def every_name(scale) -> dict:
    """study.yaml's settings over config.yaml with every configuration and ablation entry kept (study.yaml itself
    removes those beyond the study): the arithmetic below counts all 15 names."""
    import yaml

    from mvcl.configuration import deep_merge

    study = yaml.safe_load((REPO / "configs/study.yaml").read_text())
    study.pop("configurations"), study.pop("ablation"), study["outputs"].pop("ablation")
    return deep_merge(yaml.safe_load((REPO / "config.yaml").read_text()), study)


def test_the_rehearsal_of_study_yaml_trains_the_studys_six_configurations_only(scale):
    estimate = json.loads(scale.rehearsal(ROWS, 30, 30, widths=WIDTHS)["details"])
    trained = estimate["trained"]
    assert trained["train"] == ["base", "emb512", "deep4", "single_head", "tau03", "ae_init"]
    assert trained["train_clip_style"] == [] and trained["train_temporal"] == []
    assert set(estimate["hours_by_group"]) == {"study"}


def test_the_rehearsal_plans_the_study_config_with_its_replicates_and_every_configuration(scale):
    estimate = json.loads(scale.rehearsal(ROWS, 30, 30, config=every_name(scale), widths=WIDTHS)["details"])
    assert estimate["replicates"] == 5  # training.replicates, not a command-line guess
    trained = estimate["trained"]
    # With every configuration and ablation entry kept, all 15 are trained.
    assert trained["train_temporal"] == ["temporal"]
    assert trained["train_clip_style"] == ["clip_style", "all_segments"]
    assert {"base", "ae_init", "weightfree", "no_sigmoid", "no_batch_norm"} <= set(trained["train"])
    assert sum(map(len, trained.values())) == 15
    # 12 one-segment runs at 10 s, 2 every-segment runs at 60 s, temporal at 200 s; 5 replicates x 30 epochs;
    # ae_init's autoencoders: 20 base epochs once.
    assert estimate["seconds_by_stage"]["train"] == pytest.approx(5 * 30 * (12 * 10 + 2 * 60 + 200) + 20 * 10)
    # Per trained name: 5 replicates ranked at the retrieval step's full-size 12 s, the rest (10 s at half the
    # size) linear.
    assert estimate["seconds_by_stage"]["retrieval_table1"] == pytest.approx(15 * (5 * 12 + 20))


def test_training_and_probe_epochs_scale_their_own_stages_only(scale):
    one = json.loads(scale.rehearsal(ROWS, 30, 30, config=every_name(scale), widths=WIDTHS)["details"])["seconds_by_stage"]
    two = json.loads(scale.rehearsal(ROWS, 60, 30, config=every_name(scale), widths=WIDTHS)["details"])["seconds_by_stage"]
    three = json.loads(scale.rehearsal(ROWS, 30, 60, config=every_name(scale), widths=WIDTHS)["details"])["seconds_by_stage"]
    assert two["train"] - one["train"] == pytest.approx(5 * 30 * (12 * 10 + 2 * 60 + 200))
    assert two["probes"] == one["probes"]
    assert three["probes"] == pytest.approx(2 * one["probes"], abs=1)
    assert three["train"] == one["train"]


def test_probe_cells_count_every_seed_at_its_width(scale):
    from mvcl.plan import Plan

    plan = Plan(every_name(scale))
    cells = scale.probe_cells(plan, WIDTHS)
    genre = {path.split("/")[-1]: cell for path, cell in cells.items() if "/genre/" in path}
    assert genre["musicnn.json"] == {
        "task": "genre",
        "width": 1506,
        "seeds": 5,
        "together": 5,
        "group": "study",
    }
    assert genre["both.json"]["width"] == 2018
    assert genre["mir+style.json"]["width"] == 178 and genre["mir+style.json"]["group"] == "beyond"
    # A CL row: one seed on each of the 5 replicates, trained together; an ablation entry's 2 seeds spread
    # over 5 replicates still give every replicate one.
    assert genre["cl_agg.json"]["seeds"] == 5 and genre["cl_agg.json"]["together"] == 5  # probe_replicates
    assert genre["cl_agg@no_sigmoid.json"] == {
        "task": "genre",
        "width": 256,
        "seeds": 5,
        "together": 5,
        "group": "ablation",
    }
    assert genre["cl_agg@temporal.json"]["group"] == "beyond"
    assert len(cells) == 2 * (9 + 3 + 6)  # Table 2's 12 rows and the ablation's 6 entries, both tasks


def test_the_probe_seed_epoch_is_interpolated_in_the_first_layers_multiply_adds(scale):
    estimate = json.loads(scale.rehearsal(ROWS, 30, 30, config=every_name(scale), widths=WIDTHS)["details"])
    seed_epoch = estimate["probe_seed_epoch_seconds"]
    assert seed_epoch["genre@1506"] == pytest.approx(4.0)
    assert seed_epoch["genre@256"] == pytest.approx(1.0)  # a CL row's seeds: every replicate's together
    assert seed_epoch["tagging@1506"] == pytest.approx(2.0)
    middle = 512 * 512 + 512 * 256  # r2plus1d's first layers, between the measured widths
    fraction = (middle - (256 * 512 + 512 * 256)) / ((1506 - 256) * 512)
    assert seed_epoch["genre@512"] == pytest.approx(1.0 + 3.0 * fraction, abs=0.01)


def test_cpu_seconds_are_shared_by_the_cores_and_the_epoch_bounds_bracket_the_estimate(scale):
    one = scale.rehearsal(ROWS, 30, 30, config=every_name(scale), widths=WIDTHS)
    two = scale.rehearsal(ROWS, 30, 30, config=every_name(scale), widths=WIDTHS, cores=2)
    assert two["seconds"] == pytest.approx(one["seconds"] / 2, abs=1)
    bounds = list(json.loads(one["details"])["hours_if"].values())
    assert bounds[0] < one["seconds"] / 3600 < bounds[1]  # train 20 / probe 11 epochs, then 100 / 200
