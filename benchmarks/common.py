"""What every benchmark does around its stages: time them side by side, summarise, write one CSV, print it.

Stages run `repeats` rounds in rotating order, so that load from other processes on a shared machine falls on
every stage alike; each stage's row reports the median of its rounds (and the fastest and slowest), never the
best alone. The load average before and after is written beside the numbers: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scratch import emulation

from mvcl.device import cpuinfo, keep_freed_memory
from mvcl.io import save_csv

Samples = dict[str, list[tuple[float, float]]]  # stage -> (wall, CPU) seconds of each round


def add_process_options(parser: argparse.ArgumentParser) -> None:
    """--threads, and --default-malloc to measure without the workflow jobs' malloc setting."""
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--default-malloc", action="store_true",
        help="leave glibc's malloc at its defaults (the jobs' setting is mvcl.device.keep_freed_memory)",
    )  # fmt: skip


def start_process(args: argparse.Namespace) -> None:
    """Set up this process as the workflow's torch jobs do (mvcl.device.start_torch_job), per the options."""
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        keep_freed_memory()


def run_rotating(stages: dict[str, Callable[[], object]], repeats: int) -> Samples:
    """(wall, CPU) seconds of every stage in each of `repeats` rounds, the order rotating each round.

    CPU seconds are those of the whole process (all threads), so they include background decoding.
    """
    samples: Samples = {name: [] for name in stages}
    names = list(stages)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            stages[name]()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"  round {repeat + 1}: {name}: {wall:.2f} s", file=sys.stderr, flush=True)
            samples[name].append((wall, cpu))
    return samples


def summarise(samples: Samples, items: dict[str, int] | int, unit: str = "segments") -> pd.DataFrame:
    """One row per stage: `unit` handled per round, median/min/max wall seconds, median CPU seconds, rate.

    `items` is the number of `unit` each stage handles per round (one number for all, or per stage).
    """
    rows = []
    for name, rounds in samples.items():
        walls = np.array([wall for wall, _ in rounds])
        count = items[name] if isinstance(items, dict) else items
        rows.append(
            {
                "stage": name,
                unit: count,
                "rounds": len(rounds),
                "seconds": float(np.median(walls)),
                "seconds_min": float(walls.min()),
                "seconds_max": float(walls.max()),
                "cpu_seconds": float(np.median([cpu for _, cpu in rounds])),
            }
        )
    table = pd.DataFrame(rows)
    table[f"{unit}_per_s"] = table[unit] / table["seconds"]
    return table


def conditions(threads: int, load_before: float) -> dict[str, object]:
    """The machine's state beside the numbers: threads, load averages before/after, processor (vendor and
    model), the instruction set torch runs at and any limits set to emulate an older one, torch."""
    return {
        "threads": threads,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "processor": platform.processor() or platform.machine(),
        "cpu_vendor": cpuinfo("vendor_id"),  # speed choices depend on it (musicnn.cpu_gemm_plan)
        "cpu_model": cpuinfo("model name"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "emulation": emulation(),
        "torch": torch.__version__,
    }


def write_results(
    table: pd.DataFrame, out: Path, settings: dict[str, object], unit: str = "segments"
) -> None:
    """Save `table` with the run's settings as constant columns to `out` (atomically), and print it."""
    table = table.assign(**settings)
    save_csv(out, table)
    shown = ["stage", unit, "rounds", "seconds", "seconds_min", "seconds_max", "cpu_seconds", f"{unit}_per_s"]
    print(table[[column for column in shown if column in table]].round(3).to_string(index=False))
    print(
        f"load average {settings.get('load_average_before')} before, {settings.get('load_average_after')} after"
    )
    print(f"wrote {out}")


def rate(table: pd.DataFrame, unit: str = "segments") -> dict[str, float]:
    """Stage -> `unit` per second (of the median round)."""
    return dict(zip(table["stage"], table[f"{unit}_per_s"], strict=True))
