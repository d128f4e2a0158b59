"""Fixtures: tiny generated corpora and workflow directories."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import write_config

# Tiny settings for workflow tests: 3 segments of 3 s in 10 s videos, small frames, a small video clip.
TINY = {
    "demo": {
        "videos": 8,
        "duration_s": 10.5,
        "fps": 8,
        "size": [64, 48],
        "genres": 2,
        "tags": 4,
        "msd_fraction": 0.75,
    },
    "segments": {"count": 3, "seconds": 3, "clip_seconds": 3, "frames": 8, "size": [64, 48]},
    "features": {"shard_videos": 4, "threads": 1},
    "video_encoder": {"weights": "none", "clip_frames": 4, "crop": 32, "train_views": 2, "batch_size": 8},
    "audio_encoder": {"batch_size": 16},
    "device": "cpu",
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests share two cores with each other (xdist) and with Snakemake subprocesses."""
    torch.set_num_threads(1)


@pytest.fixture
def tiny_workdir(tmp_path):
    """A working directory whose config.yaml runs the workflow on a tiny synthetic corpus."""
    write_config(tmp_path, TINY)
    return tmp_path
