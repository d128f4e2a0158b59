"""Trained heads on disk: weights with the resolved configuration that produced them."""

from __future__ import annotations

from pathlib import Path

import torch

from mvcl.io import atomic_path
from mvcl.learn.model import ContrastiveModel
from mvcl.provenance import file_stamps, fingerprint


def save_heads(
    path: str | Path, model: ContrastiveModel, resolved_cfg: dict, extra: dict | None = None
) -> None:
    """Write weights, the resolved configuration and the feature sizes to `path` (atomically)."""
    checkpoint = {
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "config": resolved_cfg,
        "audio_dim": model.audio_dim,
        "video_dim": model.video_dim,
        "segments_per_video": model.segments_per_video,
        "extra": extra or {},
    }
    with atomic_path(path) as temporary:
        torch.save(checkpoint, temporary)


def load_heads(path: str | Path, device: torch.device | str = "cpu") -> tuple[ContrastiveModel, dict]:
    """The model saved by `save_heads` (eval mode, on `device`) and the whole checkpoint dict."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    cfg = checkpoint["config"]
    model = ContrastiveModel(
        checkpoint["audio_dim"],
        checkpoint["video_dim"],
        cfg["model"],
        cfg["loss"],
        checkpoint["segments_per_video"],
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint


def state_folder(
    root: str | Path, inputs: list[str], settings: dict, seed: int, device: torch.device | str
) -> Path:
    """`root`/<hash>: where a train job keeps its replicates' per-epoch state, named by what determines them.

    The hash covers each input's path, size and modification time, the resolved settings, the master seed
    and the device type, so a rerun of the same job finds its state and a changed job never resumes from
    another's.
    """
    key = {
        "inputs": file_stamps(inputs),
        "settings": settings,
        "seed": seed,
        "device": torch.device(device).type,
    }
    return Path(root) / fingerprint(key)
