"""The torch device of a job: CUDA when asked for and present (one free GPU of several), else the CPU."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import torch

# Lock files held for the life of the process: one GPU per job on a box with several (see claim_gpu).
_GPU_LOCKS: list = []


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
