"""Seeds: independent numpy streams from one seed, and a forked torch RNG so seeding leaves the caller's alone."""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import torch


def seed_streams(seed: int, n: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(n)


def torch_seed(stream: np.random.SeedSequence) -> int:
    return int(stream.generate_state(1, dtype=np.uint64)[0] >> 1)


def fork_rng(device: torch.device) -> AbstractContextManager:
    """Fork torch's RNG (CPU, and the CUDA device in use) so seeding it leaves the caller's state alone."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(
        devices=[device.index if device.index is not None else torch.cuda.current_device()]
    )
