"""A job's log and its resource record (mvcl.logs): the kernel's counts, written at exit, also for a failed job."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from mvcl.logs import usage_path
from mvcl.plan import log_path
from tests.helpers import REPO

JOB = textwrap.dedent(
    """
    import multiprocessing, sys, time
    from mvcl.logs import log_to

    def burn(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    if __name__ == "__main__":
        log = log_to("results/logs/probe/cl_agg@base.log")
        log.info("working")
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # a child's CPU counts too
            pool.apply(burn, (0.6,))
        burn(0.3)
        time.sleep(0.4)
        if sys.argv[1:] == ["fail"]:
            raise RuntimeError("a failed job")
    """
)


def test_a_jobs_usage_sits_beside_its_log_under_the_benchmarks_folder():
    assert usage_path(log_path("train", "base")) == "results/benchmarks/rules/train/base.tsv"
    assert usage_path(log_path("table1")) == "results/benchmarks/rules/table1/job.tsv"
    assert usage_path(log_path("audio_features", "musicnn", "shard_0")) == (
        "results/benchmarks/rules/audio_features/musicnn/shard_0.tsv"
    )
    assert usage_path("elsewhere/train.log") is None and usage_path("results/logs.log") is None


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_a_job_records_its_wall_and_cpu_time_with_its_childrens_and_its_peak_memory(tmp_path, outcome):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    (tmp_path / "results/logs/probe").mkdir(parents=True)
    env = {"PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, str(script), outcome], cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == (0 if outcome == "ok" else 1)
    record = pd.read_csv(tmp_path / "results/benchmarks/rules/probe/cl_agg@base.tsv", sep="\t")
    assert list(record.columns) == ["s", "h:m:s", "max_rss", "cpu_time", "user_s", "system_s"]
    row = record.iloc[0]
    assert row["cpu_time"] >= 0.9  # 0.3 here and 0.6 in the child
    assert row["s"] >= 0.4 + 0.3  # from the process's start: the sleep, the burn, the child's start and burn
    assert row["cpu_time"] == pytest.approx(row["user_s"] + row["system_s"], abs=0.011)
    assert 5 < row["max_rss"] < 10_000  # MB
    assert "working" in (tmp_path / "results/logs/probe/cl_agg@base.log").read_text()
