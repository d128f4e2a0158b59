"""The demo workflow from an empty results/: wall time, CPU time, peak memory and the time of every rule.

Runs `snakemake --cores all` (or `--cores N`) with this repository's Snakefile and config.yaml in a fresh
working directory (a temporary one unless `--workdir`), as a new clone would, with this checkout's `mvcl`
first on PYTHONPATH. `--configfile` (repeatable) applies changes over config.yaml, as Snakemake's own option
does, e.g. `.test/config_tiny.yaml` to try this script in minutes.

Measured: wall seconds of the whole run; CPU seconds (user + system) and the peak resident memory of the
Snakemake process tree, from getrusage(RUSAGE_CHILDREN) (the peak is that of its largest single process,
which is what a machine must hold when jobs do not overlap), with its kernel share (system_s), page faults
(minor: memory the kernel had to map in, e.g. each large allocation that malloc returned to the system
and asked for again) and involuntary context switches (threads fighting over the cores); and per rule, from the
resource records that every job writes at exit under results/benchmarks/rules/<rule>/<wildcards>.tsv
(`mvcl.logs.record_usage`: the kernel's counts, exact): jobs, summed and longest wall seconds, summed CPU
seconds and the largest max_rss. One CSV, a `scope` column telling the workflow row from the rule rows:

    .venv/bin/python benchmarks/demo.py [--out results/benchmarks/demo.csv] [--configfile .test/config_tiny.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from common import conditions

from mvcl.io import save_csv

REPO = Path(__file__).resolve().parents[1]
RULE_BENCHMARKS = Path("results", "benchmarks", "rules")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/demo.csv"))
    parser.add_argument(
        "--configfile", "--config-file", type=Path, action="append", default=[],
        help="changes over config.yaml (repeatable), as snakemake --configfile",
    )  # fmt: skip
    parser.add_argument("--cores", default="all")
    parser.add_argument(
        "targets", nargs="*", help="targets to build instead of rule all (to try this script)"
    )
    parser.add_argument("--workdir", type=Path, help="an empty folder to run in (kept); default: temporary")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        if any(args.workdir.iterdir()):
            sys.exit(f"--workdir {args.workdir} is not empty: the demo must start from an empty results/")
        table = run_demo(args.workdir, args)
    else:
        with tempfile.TemporaryDirectory(prefix="mvcl-demo-") as temporary:
            table = run_demo(Path(temporary), args)
    save_csv(args.out, table)
    workflow = table.iloc[0]
    print(table.drop(columns=["scope"]).round(2).to_string(index=False))
    print(
        f"demo: {workflow['wall_s']:.0f} s wall, {workflow['cpu_s']:.0f} s CPU, peak RSS "
        f"{workflow['max_rss_mb']:.0f} MB, load average {workflow['load_average_before']} before"
    )
    print(f"wrote {args.out}")


def run_demo(workdir: Path, args: argparse.Namespace) -> pd.DataFrame:
    """Run the workflow in `workdir` and return the workflow row followed by one row per rule."""
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += [*args.targets, "--cores", str(args.cores)]  # targets first: --configfile takes several
    for path in args.configfile:
        command += ["--configfile", str(path.resolve())]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    load_before = os.getloadavg()[0]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"snakemake failed ({result.returncode}) in {workdir}:\n{result.stderr[-5000:]}")
    rules = rule_times(workdir / RULE_BENCHMARKS)
    workflow = {
        "scope": "workflow",
        "rule": "all",
        "jobs": int(rules["jobs"].sum()) if len(rules) else None,
        "wall_s": wall,
        "cpu_s": (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime),
        "system_s": usage.ru_stime - usage_before.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "minor_faults": usage.ru_minflt - usage_before.ru_minflt,
        "major_faults": usage.ru_majflt - usage_before.ru_majflt,
        "involuntary_switches": usage.ru_nivcsw - usage_before.ru_nivcsw,
    }
    table = pd.concat([pd.DataFrame([workflow]), rules], ignore_index=True)
    cores = os.cpu_count() if args.cores == "all" else int(args.cores)
    config = ",".join(str(path) for path in args.configfile) or "config.yaml"
    return table.assign(cores=cores, configfile=config, **conditions(cores, load_before))


def rule_times(folder: Path) -> pd.DataFrame:
    """Per rule, from the jobs' resource records <folder>/<rule>/**/*.tsv (Snakemake's benchmark format): jobs,
    wall and CPU seconds, memory.

    Columns: scope (`rule`), rule, jobs, wall_s (sum over its jobs), longest_job_s, cpu_s, max_rss_mb;
    rules in order of their summed wall time, longest first. No files: an empty table.
    """
    rows = []
    for path in sorted(folder.glob("*/**/*.tsv")):
        record = pd.read_csv(path, sep="\t")
        for _, job in record.iterrows():
            rows.append(
                {
                    "rule": path.relative_to(folder).parts[0],
                    "s": float(job["s"]),
                    "cpu_time": pd.to_numeric(job.get("cpu_time"), errors="coerce"),
                    "max_rss": pd.to_numeric(job.get("max_rss"), errors="coerce"),
                }
            )
    columns = ["scope", "rule", "jobs", "wall_s", "longest_job_s", "cpu_s", "max_rss_mb"]
    if not rows:
        return pd.DataFrame(columns=columns)
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(
        jobs=("s", "size"),
        wall_s=("s", "sum"),
        longest_job_s=("s", "max"),
        cpu_s=("cpu_time", "sum"),
        max_rss_mb=("max_rss", "max"),
    )
    table = table.sort_values("wall_s", ascending=False).reset_index().assign(scope="rule")
    return table[columns]


if __name__ == "__main__":
    main()
