"""Fixtures: tiny generated corpora and workflow directories."""

from __future__ import annotations

import shutil

import pytest
import torch

from tests.helpers import load_test_config, run_snakemake, write_config

# Tiny settings for workflow tests: 3 segments of 3 s in 10 s videos, small frames, a small video clip.
TINY = load_test_config("tiny")
# The data stages of the tiny workflow: the demo corpus, its manifest, segments and their figure.
TINY_DATA_TARGETS = [
    "results/data/manifest.parquet",
    "results/data/segments.parquet",
    "results/figures/segments.png",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: tests share the machine's cores with the Snakemake subprocesses they start."""
    torch.set_num_threads(1)


@pytest.fixture
def tiny_workdir(tmp_path):
    """A working directory whose config.yaml runs the workflow on a tiny synthetic corpus."""
    write_config(tmp_path, TINY)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """One run of the tiny workflow's data stages (TINY_DATA_TARGETS), shared by the tests that only read it.

    Read-only: a test that runs more of the workflow or changes a file takes `tiny_data_workdir`, a copy.
    The manifest's video paths are absolute and point here (the copies read the same videos)."""
    workdir = tmp_path_factory.mktemp("tiny_data")
    write_config(workdir, TINY)
    run_snakemake(workdir, *TINY_DATA_TARGETS)
    return workdir


@pytest.fixture
def tiny_data_workdir(tiny_data, tmp_path):
    """A copy of `tiny_data` (files, times and Snakemake's records), to run more of the workflow in."""
    workdir = tmp_path / "tiny"
    shutil.copytree(tiny_data, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return workdir
