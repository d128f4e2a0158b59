#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda environment (--use-conda).
set -euo pipefail
# musicnn declares TensorFlow 1 and numpy<1.17 as dependencies; mvcl only reads its checkpoint files.
python -m pip install --no-deps musicnn==0.1.0
# The mvcl library itself, from the workflow's source tree (this file lives in <repo>/envs/).
python -m pip install --no-deps "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
