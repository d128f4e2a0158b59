#!/usr/bin/env bash
# Every benchmark on CUDA, in under 8 minutes, into one CSV: results/benchmarks/gpu.csv (a `benchmark`
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
# ~1-3 min: one Table 2 cell at the study's size (94,000 videos of 1506-d noise, probe.repeats seeds trained
# together as one batched model) on CUDA, and ranking a 56,400-segment test set both ways (float32 blocks with
# exact float64 decisions; numpy, so on the host's CPU).
timeout 300 "$PYTHON" - "$OUT/downstream.csv" <<'PY'
import sys
import time

import numpy as np
import pandas as pd
import yaml

from mvcl.io import save_csv
from mvcl.probe.train import repeat_seeds, run_probe_seeds, summarise_repeats
from mvcl.retrieval import median_rank

rng = np.random.default_rng(0)
probe = yaml.safe_load(open("config.yaml"))["probe"]
videos = 94_000
X = rng.standard_normal((videos, 1506), dtype=np.float32)
genre = rng.choice([f"genre{g}" for g in range(10)], videos)
split = rng.choice(["train", "val", "test"], videos, p=[0.8, 0.1, 0.1])
rows = []
started = time.perf_counter()
result = summarise_repeats("genre", run_probe_seeds(X, genre, split, "genre", probe, repeat_seeds(probe, 0), "cuda"))
seconds = time.perf_counter() - started
epochs = [run["epochs"] for run in result["runs"]]
rows.append({"step": "probe_genre", "device": "cuda", "seeds": len(epochs), "epochs": str(epochs),
             "seconds": round(seconds, 1), "seconds_per_seed": round(seconds / len(epochs), 1)})
n = 56_400
audio, video = (rng.standard_normal((n, 256), dtype=np.float32) for _ in range(2))
audio, video = (e / np.linalg.norm(e, axis=1, keepdims=True) for e in (audio, video))
started = time.perf_counter()
median_rank(audio, video, 1000, 0, np.arange(n) // 6, "other_videos")
rows.append({"step": "retrieval", "device": "cpu", "seconds": round(time.perf_counter() - started, 1)})
save_csv(sys.argv[1], pd.DataFrame(rows))
print(pd.DataFrame(rows).to_string())
PY

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
