"""Logging for workflow scripts: everything a job says goes to its Snakemake log file, and what the job used
(wall and CPU time, peak memory) to its resource record."""

from __future__ import annotations

import atexit
import logging
import os
import resource
import sys
import time
import warnings
from pathlib import Path, PurePosixPath

# Logs (mvcl.plan.log_path) and the resource records beside them, relative to the working directory.
LOGS = PurePosixPath("results", "logs")
USAGE = PurePosixPath("results", "benchmarks", "rules")


def log_to(path: str) -> logging.Logger:
    """Send logging, warnings and stderr of this process to `path`; return the `mvcl` logger. A job's log
    under results/logs/ also makes the job write its resource record at exit (`record_usage`)."""
    stream = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    usage = usage_path(path)
    if usage is not None:
        record_usage(usage)
    return logging.getLogger("mvcl")


def usage_path(log: str) -> str | None:
    """Where the job whose log file is `log` records its resource use: results/logs/<rule>[/<parts>].log ->
    results/benchmarks/rules/<rule>/<parts, or job>.tsv (what benchmarks/demo.py aggregates); None for a log
    file elsewhere."""
    path = PurePosixPath(log)
    if path.suffix != ".log" or not path.is_relative_to(LOGS):
        return None
    parts = path.relative_to(LOGS).with_suffix("").parts
    return str(USAGE.joinpath(*parts, *(["job"] if len(parts) == 1 else []))) + ".tsv"


def record_usage(path: str) -> None:
    """At exit, write this process's resource use to `path`: a one-row table in the columns of Snakemake's
    `benchmark:` files that it has (s, h:m:s, max_rss in MB, cpu_time), with user_s and system_s.

    The kernel's own counts (getrusage of the process and of the children it waited for, e.g. a pool's
    workers; wall time since the process started), so they are exact, and free. The rules have no
    `benchmark:` directive: Snakemake's sampler read every job's /proc/<pid>/smaps twice a second from the
    scheduler process (~8 ms of kernel time a read for a torch job, ~25 CPU-seconds of a demo run that the
    jobs then lacked), and missed the end of every job.
    """
    started = _process_start()
    atexit.register(_write_usage, Path(path), started)


def _write_usage(path: Path, started: float) -> None:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = mine.ru_utime + children.ru_utime, mine.ru_stime + children.ru_stime
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    peak = max(mine.ru_maxrss, children.ru_maxrss) / (2**20 if sys.platform == "darwin" else 2**10)
    seconds = _now() - started
    whole = int(seconds)
    row = {
        "s": f"{seconds:.4f}",
        "h:m:s": f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}",
        "max_rss": f"{peak:.2f}",
        "cpu_time": f"{user + system:.2f}",
        "user_s": f"{user:.2f}",
        "system_s": f"{system:.2f}",
    }
    # atomically, by hand: mvcl.io.atomic_path's module imports pandas, which cannot be imported at
    # interpreter exit (a job that never imported it would lose its record)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text("\t".join(row) + "\n" + "\t".join(row.values()) + "\n")
    os.replace(temporary, path)


def _process_start() -> float:
    """When this process started, in `_now`'s seconds (Linux: from /proc); elsewhere now, which leaves out
    the interpreter's start-up and imports."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime: clock ticks after boot
    except (OSError, ValueError, IndexError):
        return _now()


def _now() -> float:
    """Seconds after boot on Linux (/proc/uptime, the clock of /proc's start times); elsewhere the wall clock."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return time.time()
