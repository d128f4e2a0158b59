"""Atomic writers: an output appears under its final name only when complete, so an interrupted run
never leaves a file that looks finished (Snakemake's rerun-incomplete then redoes just that job)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd


@contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path in the destination folder; rename it to `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix
    )
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are read by others
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as temporary:
        writer(temporary)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    _write(path, lambda temporary: np.save(temporary, array))


def save_parquet(path: str | Path, table: pd.DataFrame) -> None:
    _write(path, lambda temporary: table.to_parquet(temporary, index=False))


def save_csv(path: str | Path, table: pd.DataFrame) -> None:
    _write(path, lambda temporary: table.to_csv(temporary, index=False))


def save_json(path: str | Path, data: object) -> None:
    _write(
        path, lambda temporary: temporary.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    )
