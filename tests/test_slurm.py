"""`snakemake --profile slurm`, typed from the repository root, against a real Slurm on this host.

The Slurm tests start a single-node Slurm with tests/slurm/start_local_slurm.sh (root; installs slurm-wlm
and munge with apt-get when missing) and stop it afterwards. Each finished job leaves a line in the
cluster's jobcomp.log, named after the Snakemake run: that is how a test knows a job went through Slurm.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO

SLURM_TESTS = REPO / "tests" / "slurm"
TOY_SNAKEFILE = SLURM_TESTS / "workflow" / "Snakefile"
TOY_RESULTS = [
    "results/numbers.json",
    "results/squares/0.json",
    "results/squares/1.json",
    "results/total.json",
]
STATE_DIR = Path(os.environ.get("MVCL_SLURM_STATE_DIR", "/tmp/mvcl-slurm"))
FAKE_GPUS = 2


@dataclass(frozen=True)
class LocalSlurm:
    state_dir: Path
    env: dict[str, str]

    def finished_jobs(self, run_id: str) -> list[dict[str, str]]:
        """jobcomp.log records of the jobs that Snakemake run `run_id` submitted (job name = run id)."""
        records = [
            dict(re.findall(r"(\w+)=(\S*)", line))
            for line in (self.state_dir / "jobcomp.log").read_text().splitlines()
        ]
        return [record for record in records if record.get("Name") == run_id]


def snakemake(
    *args: str, env: dict[str, str] | None = None, timeout_s: int = 300
) -> subprocess.CompletedProcess:
    """Run `snakemake ARGS` from the repository root, as a user types it, and return the finished process.

    Snakemake's Slurm executor ignores SIGTERM while it waits for jobs, and waits forever when it cannot read
    their states; `timeout -s INT` ends it the way Ctrl-C does (cancelling its jobs), -k 30 kills it after.
    """
    command = ["timeout", "-s", "INT", "-k", "30", str(timeout_s), sys.executable, "-m", "snakemake", *args]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s + 60
    )
    output = result.stdout + result.stderr
    assert result.returncode != 124, f"snakemake {' '.join(args)} ran past {timeout_s} s:\n{output[-8000:]}"
    assert result.returncode == 0, (
        f"snakemake {' '.join(args)} failed ({result.returncode}):\n{output[-8000:]}"
    )
    return result


def toy_on_slurm(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """The toy workflow through `--profile slurm` in `workdir`."""
    return snakemake(
        "--profile", "slurm", "--snakefile", str(TOY_SNAKEFILE), "--directory", str(workdir), *args, env=env
    )


def slurm_run_id(result: subprocess.CompletedProcess) -> str:
    match = re.search(r"SLURM run ID: (\S+)", result.stdout + result.stderr)
    assert match, "snakemake did not report a SLURM run ID: did it use the slurm executor?"
    return match.group(1)


def submitted_job_count(result: subprocess.CompletedProcess) -> int:
    return len(re.findall(r"has been submitted with SLURM jobid", result.stdout + result.stderr))


def rule_logs(workdir: Path) -> dict[str, dict[str, str]]:
    """KEY=value lines that each toy rule writes to its log, by log path."""
    return {
        str(path.relative_to(workdir / "logs")): dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
        )
        for path in sorted((workdir / "logs").rglob("*.log"))
    }


def without_workdir(table: pd.DataFrame, workdir: Path) -> pd.DataFrame:
    """The table with `workdir/` cut from its text columns (absolute paths differ between two runs)."""
    text = table.select_dtypes(include=["object", "string"]).columns
    return table.assign(
        **{column: table[column].str.replace(f"{workdir}/", "", regex=False) for column in text}
    )


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the Slurm tests")
    pytest.skip(reason)


def _slurmctld_running() -> bool:
    pid_file = STATE_DIR / "slurmctld.pid"
    if not pid_file.is_file():
        return False
    comm = Path("/proc", pid_file.read_text().strip(), "comm")
    return comm.is_file() and comm.read_text().strip() == "slurmctld"


@pytest.fixture(scope="session")
def local_slurm():
    """A single-node Slurm with two fake GPUs; stopped at the end unless it was running before."""
    if os.geteuid() != 0:
        _unavailable("starting a local Slurm needs root (apt-get, slurmd runs as root)")
    was_running = _slurmctld_running()
    env = {**os.environ, "MVCL_SLURM_STATE_DIR": str(STATE_DIR)}
    started = subprocess.run(
        [str(SLURM_TESTS / "start_local_slurm.sh"), "--gpus", str(FAKE_GPUS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if started.returncode != 0:
        if "apt-get" in started.stderr:
            _unavailable(f"cannot install Slurm: {started.stderr.strip().splitlines()[-1]}")
        pytest.fail(f"start_local_slurm.sh failed:\n{started.stderr}")
    env["SLURM_CONF"] = str(STATE_DIR / "slurm.conf")
    # GPUs a job sees must come from Slurm, not from the shell that runs the tests.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    yield LocalSlurm(STATE_DIR, env)
    if not was_running:
        subprocess.run([str(SLURM_TESTS / "stop_local_slurm.sh")], env=env, check=True, timeout=120)


def test_profile_slurm_resolves_from_the_repository_root(tmp_path):
    result = snakemake(
        "--profile", "slurm", "--dry-run", "--snakefile", str(TOY_SNAKEFILE), "--directory", str(tmp_path)
    )
    output = result.stdout + result.stderr
    assert re.search(r"Using profiles? slurm\b", output)
    # Only profiles/slurm sets a default slurm_partition: the jobs carry it, so that profile was read.
    assert "slurm_partition=" in output


@pytest.mark.skipif(not (REPO / "Snakefile").is_file(), reason="the workflow's Snakefile is not written yet")
def test_profile_slurm_plans_the_workflow_from_the_repository_root(tiny_workdir):
    result = snakemake("--profile", "slurm", "--dry-run", "--directory", str(tiny_workdir))
    assert "slurm_partition=" in result.stdout + result.stderr


def test_profile_reads_job_states_without_accounting():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert "slurm_account" not in profile["default-resources"], "validating an account needs slurmdbd"
    # Below 3x the first status check the plugin silently switches to sacct, which has no data here.
    script = (SLURM_TESTS / "start_local_slurm.sh").read_text()
    min_job_age = int(re.search(r"^MIN_JOB_AGE=(\d+)", script, re.MULTILINE).group(1))
    assert min_job_age >= 3 * profile["slurm-init-seconds-before-status-checks"]


def test_workflow_profile_does_not_override_the_slurm_profile():
    """Snakemake applies profiles/default on top of --profile slurm, so where both set a key, it wins."""
    workflow_profile = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text()) or {}
    slurm_profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    # Global resource limits cap every job's request under Slurm too: `gpu: 0` strips every GPU request.
    assert "resources" not in workflow_profile, "profiles/default: pass --resources gpu=N on the command line"
    for key in workflow_profile.keys() & slurm_profile.keys():
        assert workflow_profile[key] == slurm_profile[key], (
            f"profiles/default overrides the slurm profile's {key}"
        )


@pytest.mark.slow
@pytest.mark.slurm
def test_toy_workflow_runs_as_slurm_jobs_and_matches_a_local_run(local_slurm, tmp_path):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    result = toy_on_slurm(on_slurm, local_slurm.env)
    snakemake("--cores", "2", "--snakefile", str(TOY_SNAKEFILE), "--directory", str(local))

    jobs = local_slurm.finished_jobs(slurm_run_id(result))
    assert len(jobs) == 4 == submitted_job_count(result), "numbers, two squares and total: each a Slurm job"
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    job_ids = {job["JobId"] for job in jobs}
    for log, fields in rule_logs(on_slurm).items():
        assert fields["SLURM_JOB_ID"] in job_ids, f"{log} was not written inside one of this run's Slurm jobs"
        assert Path(fields["python"]).resolve() == Path(sys.executable).resolve(), f"{log}: another Python"
    for name in TOY_RESULTS:
        assert (on_slurm / name).read_text() == (local / name).read_text(), name
    assert json.loads((on_slurm / "results/total.json").read_text()) == {"count": 100, "sum": 328350}


@pytest.mark.slow
@pytest.mark.slurm
def test_gpu_resource_becomes_a_slurm_gpu_request(local_slurm, tmp_path):
    result = toy_on_slurm(tmp_path, local_slurm.env, "--config", "gpu=1")
    assert len(local_slurm.finished_jobs(slurm_run_id(result))) == 4
    logs = rule_logs(tmp_path)
    # Slurm sets CUDA_VISIBLE_DEVICES only in a job that was given GPUs.
    gpus = {
        log: fields.get("CUDA_VISIBLE_DEVICES", "")
        for log, fields in logs.items()
        if log.startswith("square")
    }
    assert len(gpus) == 2 and all(gpus.values()), f"shard jobs were given no GPU: {gpus}"


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.skipif(not (REPO / "Snakefile").is_file(), reason="the workflow's Snakefile is not written yet")
def test_workflow_segments_through_slurm_equal_a_local_run(local_slurm, tiny_workdir, tiny_data):
    """The local run is the session's shared one (conftest.tiny_data: the same tiny config.yaml)."""
    target = "results/data/segments.parquet"
    local = tiny_data
    assert (local / "config.yaml").read_text() == (tiny_workdir / "config.yaml").read_text()

    result = snakemake(
        "--profile", "slurm", "--directory", str(tiny_workdir), target, env=local_slurm.env, timeout_s=900
    )

    jobs = local_slurm.finished_jobs(slurm_run_id(result))
    assert jobs and len(jobs) == submitted_job_count(result)
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    pd.testing.assert_frame_equal(
        without_workdir(pd.read_parquet(tiny_workdir / target), tiny_workdir),
        without_workdir(pd.read_parquet(local / target), local),
    )
