# Two entry points: `make run` (set up, then the whole demo workflow) and `make test` (set up, then the tests).
# `make test-fast` runs only the tests not marked slow (no Snakemake run, no model trained end to end).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mvcl-installed
# Snakemake jobs (and Slurm job steps) find the environment's tools first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test test-fast lint clean

setup: $(STAMP)

# torch/torchvision are pinned in envs/requirements.txt; pip takes them from the local wheel cache where one
# exists. musicnn ships the pretrained checkpoints; its declared deps (TensorFlow 1) are not needed.
$(STAMP): envs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps musicnn==0.1.0
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	$(BIN)/snakemake --cores all

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check src tests workflow_scripts benchmarks
	$(BIN)/snakemake --lint

clean:
	rm -rf results/* .snakemake
