#!/usr/bin/env bash
# Every benchmark on CUDA, in under 5 minutes, into one CSV: results/benchmarks/gpu.csv (a `benchmark`
# column names the source; the per-benchmark CSVs stay beside it under results/benchmarks/gpu/).
#
# On a GPU the limit of feature extraction is decoding: video runs bf16 with 64-clip batches and one decode
# worker per CPU thread (`auto`), batches copied from pinned memory without blocking; musicnn stays float32.
#
#   bash benchmarks/gpu.sh            # from the repository root, after `make setup` (or with PYTHON=...)
#   THREADS=16 bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-$(nproc)}
OUT=results/benchmarks/gpu
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
"$PYTHON" -c 'import torch, sys; torch.cuda.is_available() or sys.exit("gpu.sh: CUDA is not available here")'
"$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0), "torch", torch.__version__)'

started=$SECONDS
# ~1-2 min: decode, model and the whole rule at fp32 and bf16, the demo's clips (8 frames) and the study's (30).
timeout 150 "$PYTHON" benchmarks/video_features.py --device cuda --threads "$THREADS" --batch-size auto \
    --decode-workers auto --videos 8 --segments-per-video 6 --clip-frames 30 --repeats 3 \
    --precisions fp32 bf16 --out "$OUT/video_features.csv"
# ~30 s: the port on CUDA (TensorFlow's side runs only where it is importable).
timeout 60 "$PYTHON" benchmarks/musicnn.py "$OUT/musicnn.csv" --device cuda --threads "$THREADS" \
    --videos 8 --segments-per-video 6 --batch-size 256 --repeats 3
# ~1-2 min: one training epoch at the study's size, 550,000 memory-mapped synthetic segments (~4.4 GB on disk).
timeout 150 "$PYTHON" benchmarks/training.py --device cuda --segments 550000 --out "$OUT/training.csv"

"$PYTHON" - "$OUT" <<'PY'
import sys
from pathlib import Path

import pandas as pd

from mvcl.io import save_csv

folder = Path(sys.argv[1])
tables = [pd.read_csv(path).assign(benchmark=path.stem) for path in sorted(folder.glob("*.csv"))]
save_csv(folder.parent / "gpu.csv", pd.concat(tables, ignore_index=True))
print(f"wrote {folder.parent / 'gpu.csv'} ({sum(map(len, tables))} rows from {len(tables)} benchmarks)")
PY
echo "gpu.sh: $((SECONDS - started)) s"
