"""Scratch folders of the large benchmarks (scale.py, tags.py): deleted afterwards unless --keep. Torch-free, so
a parent process that measures its children stays small."""

from __future__ import annotations

import shutil
from pathlib import Path


def write_rows(out: Path, rows: list[dict]) -> None:
    """The benchmark's rows as a CSV at `out` (atomically); pandas is imported only now, after the measuring."""
    import pandas as pd

    from mvcl.io import save_csv

    save_csv(out, pd.DataFrame(rows))
    print(f"wrote {out}")


def clean_up(work: Path, keep: bool) -> None:
    """Delete a benchmark's scratch folder, or say where it was kept."""
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
