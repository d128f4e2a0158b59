"""The workflow's vocabulary (mvcl.plan): resolved once, paths built and parsed in one place, torch-free."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from mvcl.plan import PROBE_REPRESENTATIONS, Plan, parse_probe_key, probe_key
from tests.helpers import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_probe_keys_round_trip():
    for representation in PROBE_REPRESENTATIONS:
        assert parse_probe_key(probe_key(representation)) == (representation, "")
    assert probe_key("cl_agg", "clip_style") == "cl_agg@clip_style"
    assert parse_probe_key("cl_agg@clip_style") == ("cl_agg", "clip_style")


def test_probe_paths_of_the_probed_configuration_carry_no_name():
    plan = Plan(CONFIG)
    assert plan.probe_path("genre", "cl_agg", "base") == "results/probes/genre/cl_agg.json"
    assert plan.probe_path("genre", "cl_agg", "temporal") == "results/probes/genre/cl_agg@temporal.json"


def test_ablation_entries_are_changes_of_base():
    config = copy.deepcopy(CONFIG)
    config["model"] = {"hidden_dim": 64}
    config["ablation"]["entries"] = {"wide": {"model": {"embedding_dim": 512}}}
    plan = Plan(config)
    assert plan.ablation_rows == ["base", "wide"]
    resolved = plan.resolved("wide")
    assert resolved["model"]["embedding_dim"] == 512
    assert resolved["model"]["hidden_dim"] == 64  # the base setting, not the schema's default of 512


def test_an_override_value_of_the_wrong_type_names_its_key():
    config = copy.deepcopy(CONFIG)
    config["configurations"]["emb512"] = {"model": {"embedding_dim": "large"}}
    with pytest.raises(ValueError, match=r"configurations\.emb512\.model\.embedding_dim"):
        Plan(config).resolved("emb512")


def test_outputs_switch_optional_groups_of_rule_all():
    everything = Plan(CONFIG).final_targets()
    assert "results/ablation.csv" in everything and "results/neighbours.html" in everything
    assert "results/figures/coupling.png" not in everything
    config = copy.deepcopy(CONFIG)
    config["outputs"] = {"qualitative": False, "diagnostics": False, "ablation": False, "coupling_sweep": True}
    targets = Plan(config).final_targets()
    assert "results/neighbours.html" not in targets and "results/diagnostics.csv" not in targets
    assert "results/ablation.csv" not in targets
    assert "results/figures/coupling.png" in targets
    assert "results/table1.csv" in targets and "results/table2.csv" in targets


def test_tagging_needs_msd_tags():
    config = copy.deepcopy(CONFIG)
    config["dataset"]["msd_tags"] = None
    assert Plan(config).probe_tasks == ["genre"]
    assert all("/tagging/" not in path for path in Plan(config).table2_inputs())
    assert Plan(config).probe_files("cl_agg@tau03") == ["results/probes/genre/cl_agg@tau03.json"]


def test_one_probe_job_writes_every_table2_cell_of_its_representation():
    plan = Plan(CONFIG)
    written = {path for key in plan.probe_representations for path in plan.probe_files(key)}
    study = {path for path in plan.table2_inputs() if "@" not in path}
    # the study's six rows and the weight-free pair's three frozen rows (configuration weightfree)
    assert set(PROBE_REPRESENTATIONS) <= set(plan.probe_representations)
    assert written == study and len(written) == len(plan.probe_representations) * len(plan.probe_tasks) == 18


def test_validation_leaves_overrides_as_written(tmp_path):
    """Snakemake's validate fills schema defaults into what it validates; overrides must stay as written."""
    script = (
        "import yaml, snakemake.utils as u\n"
        f"c = yaml.safe_load(open({str(REPO / 'config.yaml')!r}))\n"
        "written = {k: dict(v or {}) for k, v in c['configurations'].items()}\n"
        f"u.validate(c, {str(REPO / 'schemas/config.schema.yaml')!r})\n"
        "assert c['configurations'] == written, c['configurations']\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_reading_the_workflow_never_imports_torch(tiny_workdir):
    """A dry run (the scheduler's view of the workflow) imports no torch: -X importtime lists every import."""
    command = [
        sys.executable, "-X", "importtime", "-m", "snakemake", "-s", str(REPO / "Snakefile"),
        "--directory", str(tiny_workdir), "-n", "--cores", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "snakemake" in imported and "mvcl.plan" in imported  # the listing works
    assert not [name for name in imported if name == "torch" or name.startswith("torch.")]


# The workflow scripts whose jobs compute with torch; every other job starts without it (~1.5 s each).
TORCH_SCRIPTS = {"autoencoder", "probe", "recommend", "train"}


@pytest.mark.slow  # a Python process per script (~30 s)
def test_only_the_scripts_that_compute_with_torch_import_it():
    scripts = sorted((REPO / "workflow_scripts").glob("*.py"))
    assert TORCH_SCRIPTS <= {script.stem for script in scripts}
    importing = []
    for script in scripts:
        # the script's own imports (its body needs the `snakemake` object of a job)
        imports = [
            line for line in script.read_text().splitlines() if re.match(r"(import|from) \S+", line)
        ]
        code = "\n".join([*imports, "import sys", "print('torch' in sys.modules)"])
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        if run.stdout.strip() == "True":
            importing.append(script.stem)
    assert set(importing) == TORCH_SCRIPTS
