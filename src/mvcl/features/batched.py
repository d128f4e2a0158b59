"""The loop both frozen encoders run: decoded segments in row order feed fixed-size model batches.

Decoding runs ahead in background threads (`mvcl.features.prefetch.ahead`); each decoded segment turns into
one or more model inputs (musicnn: its 3 s log-mel patches; R(2+1)D: its crop views), which wait with the
place their output goes until a full batch runs through the model. A segment that fails to decode is
counted and logged, and its row keeps its NaN.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from mvcl.data.decode import DecodeError


class Batches:
    """Inputs queued with their targets; every `batch_size` of them go through `encode` together.

    `encode` maps a stacked batch [B, ...] to outputs [B, D] (numpy); `store(targets, outputs)` puts them
    where they belong. Batches are always the oldest `batch_size` inputs, whatever the segments they came from.
    With `pin_memory` (for a CUDA model) the batch is stacked into page-locked memory, so that its copy to
    the GPU can be non-blocking.
    """

    def __init__(
        self,
        encode: Callable[[torch.Tensor], np.ndarray],
        batch_size: int,
        store: Callable[[list, np.ndarray], None],
        pin_memory: bool = False,
    ) -> None:
        self.encode, self.batch_size, self.store = encode, batch_size, store
        self.pin_memory = pin_memory
        self.inputs: deque[torch.Tensor] = deque()
        self.targets: deque[object] = deque()
        self.seconds = 0.0  # time spent in the model (and storing its outputs)

    def add(self, item: torch.Tensor, target: object) -> None:
        self.inputs.append(item)
        self.targets.append(target)
        if len(self.inputs) >= self.batch_size:
            self._run(self.batch_size)

    def flush(self) -> None:
        if self.inputs:
            self._run(len(self.inputs))

    def _run(self, count: int) -> None:
        started = time.perf_counter()
        items = [self.inputs.popleft() for _ in range(count)]
        if self.pin_memory:
            batch = torch.empty((count, *items[0].shape), dtype=items[0].dtype, pin_memory=True)
            torch.stack(items, out=batch)
        else:
            batch = torch.stack(items)
        targets = [self.targets.popleft() for _ in range(count)]
        self.store(targets, self.encode(batch))
        self.seconds += time.perf_counter() - started


def decode_threads(spec: int | str, key: str, device: torch.device, threads: int, on_cpu: int) -> int:
    """Decoding threads for config key `key` (`spec`: a count, or auto) in a job of `threads`: auto is
    `on_cpu` on a CPU (each encoder's own share) and `threads` on a GPU, where the model is cheap and decoding
    is the bottleneck."""
    if spec != "auto":
        if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
            raise ValueError(f"{key} must be auto or an integer >= 1, got {spec!r}")
        return spec
    return threads if device.type == "cuda" else on_cpu


@dataclass
class ExtractionStats:
    failed: int = 0  # segments that could not be decoded
    decode_s: float = 0.0  # background decoding time
    wait_s: float = 0.0  # time the model waited for decoded segments


def feed_decoded(
    decoded: Iterator[tuple[int, object, Future]],
    feed: Callable[[int, object, object], None],
    on_failure: Callable[[object, Exception], None],
    total: int,
    progress: bool,
    errors: tuple[type[Exception], ...] = (DecodeError,),
) -> ExtractionStats:
    """Hand every decoded (row, segment, value) to `feed` in row order; `on_failure` for those that failed.

    `decoded` yields futures of (value, decode seconds), as the extractors' `_decoding_ahead` make them.
    """
    stats = ExtractionStats()
    with tqdm(total=total, unit="segment", disable=not progress, mininterval=5) as bar:
        for row, segment, future in decoded:
            waited = time.perf_counter()
            try:
                value, seconds = future.result()
            except errors as error:
                stats.failed += 1
                on_failure(segment, error)
            else:
                stats.wait_s += time.perf_counter() - waited
                stats.decode_s += seconds
                feed(row, segment, value)
            bar.update()
    return stats
