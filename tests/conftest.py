"""Fixtures: tiny generated corpora and workflow directories."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import load_test_config, write_config

# Tiny settings for workflow tests: 3 segments of 3 s in 10 s videos, small frames, a small video clip.
TINY = load_test_config("tiny")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: tests share the machine's cores with the Snakemake subprocesses they start."""
    torch.set_num_threads(1)


@pytest.fixture
def tiny_workdir(tmp_path):
    """A working directory whose config.yaml runs the workflow on a tiny synthetic corpus."""
    write_config(tmp_path, TINY)
    return tmp_path
