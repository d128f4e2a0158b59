"""Where a job computes: the torch device (CUDA when asked for and present, one free GPU of several, else the
CPU), its CPU threads, and how its process keeps freed memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import os
import tempfile
from pathlib import Path

import torch

# Lock files held for the life of the process: one GPU per job on a box with several (see claim_gpu).
_GPU_LOCKS: list = []
# glibc's mallopt parameters, and the values `keep_freed_memory` sets (see there).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 512 << 20


def start_torch_job(threads: int) -> None:
    """What every job that computes with torch does first: use `threads` CPU threads (the rule's `threads:`)
    and keep freed memory in the process (`keep_freed_memory`)."""
    torch.set_num_threads(threads)
    keep_freed_memory()


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks of up to MMAP_THRESHOLD in the heap instead of unmapping them.

    By default glibc serves every allocation above a threshold (128 KB, adapting up to 32 MB) with its own
    mmap and unmaps it on free, so each large tensor a forward pass allocates is new memory the kernel must
    zero and fault in page by page. R(2+1)D-18's activations are 10-120 MB a batch: in float32 on one thread
    this cost 2.1 million page faults and 40% of the job's time in the kernel per two batches of 8 clips
    (3.5 s of 8.9 s); with these settings 25 thousand and 0.04 s, and the same numbers. A process then holds
    up to TRIM_THRESHOLD of freed memory for reuse. Returns whether the settings took (glibc only; elsewhere
    nothing changes).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


@functools.cache
def cpuinfo(key: str) -> str:
    """The first value of `key` in Linux's /proc/cpuinfo ("vendor_id", "model name"); "" where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_vendor() -> str:
    """The CPU's vendor as Linux reports it ("GenuineIntel", "AuthenticAMD"); "" where unknown (ARM, macOS)."""
    return cpuinfo("vendor_id")


def claim_gpu() -> int:
    """Index of a GPU no other mvcl job on this machine holds, so parallel jobs spread over the GPUs.

    Snakemake's `--resources gpu=N` limits how many GPU jobs run at once but does not say which GPU each
    gets; Slurm does (it sets CUDA_VISIBLE_DEVICES). Without that, each job takes the first GPU whose lock
    file (/tmp/mvcl-gpu-<i>.lock, released when the process ends) it can hold; if all are held, it shares
    GPU pid % count.
    """
    count = torch.cuda.device_count()
    if count <= 1 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return 0
    for index in range(count):
        handle = open(Path(tempfile.gettempdir()) / f"mvcl-gpu-{index}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _GPU_LOCKS.append(handle)
        return index
    return os.getpid() % count


def pick_device(spec: str) -> torch.device:
    """`auto` → CUDA when available (a free GPU of several, see claim_gpu), else CPU; `cpu`; `cuda` /
    `cuda:N` (an error when CUDA is absent)."""
    if spec in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", claim_gpu())
    if spec == "auto":
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device: {spec} but CUDA is not available here; set device: auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device: {spec} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                "pick one of them or set device: auto"
            )
    elif device.type != "cpu":
        raise ValueError(f"device: {spec}: expected auto, cpu, cuda or cuda:N")
    return device
