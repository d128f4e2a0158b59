"""Scratch folders of the large benchmarks (scale.py, tags.py): deleted afterwards unless --keep; and the
emulated instruction set every benchmark records. Torch-free, so a parent process that measures its children
stays small."""

from __future__ import annotations

import os
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


# What lowers a newer x86 processor to an AVX2-only one for measuring (README, Speed): torch's own kernels,
# oneDNN, MKL and fbgemm each read their own variable; set all four, or some kernels keep their AVX-512 code
# (fbgemm's int8 convolutions ran 0.14 CPU-s a clip with VNNI against 0.25 in AVX2 on the same machine).
EMULATION_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "FBGEMM_ENABLE_INSTRUCTIONS",
)


def emulation() -> str:
    """The instruction-set limits this process runs under ("" when none), as `KEY=value` pairs."""
    return " ".join(f"{key}={os.environ[key]}" for key in EMULATION_VARIABLES if key in os.environ)
