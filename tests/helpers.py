"""Helpers shared by the tests: the repository root and running the workflow on a tiny config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def segment_row(
    video_id: str, segment: int, path: Path, window: tuple[float, float], clip: tuple[float, float], split: str
) -> dict:
    """One row of segments.parquet: `window` is (start_s, end_s), `clip` is (clip_start_s, clip_end_s)."""
    (start_s, end_s), (clip_start_s, clip_end_s) = window, clip
    return dict(video_id=video_id, segment=segment, path=str(path), start_s=start_s, end_s=end_s,
                clip_start_s=clip_start_s, clip_end_s=clip_end_s, split=split)  # fmt: skip


def load_test_config(name: str) -> dict:
    """The changes of a runnable test configuration, .test/config_<name>.yaml (used over config.yaml)."""
    return yaml.safe_load((REPO / ".test" / f"config_{name}.yaml").read_text())


def write_config(workdir: Path, changes: dict) -> Path:
    """The repository's config.yaml with `changes` applied, written as workdir/config.yaml."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_update(config, changes)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, snakefile: Path = REPO / "Snakefile") -> list[str]:
    """Snakemake with the current interpreter, running `snakefile` in `workdir` (its config.yaml)."""
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir)]


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: int = 1800
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in `workdir` (its config.yaml) with the current interpreter."""
    command = [*snakemake_command(workdir), "--cores", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-8000:]}"
        )
    return result


def encode_into(container, stream, frames) -> None:
    """Encode `frames` (PyAV video or audio frames) with `stream` into `container`, then flush the encoder."""
    for frame in frames:
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def mono_frames(sound: np.ndarray, rate: int):
    """float32 mono samples as PyAV audio frames of 1,024 samples each."""
    import av

    for start in range(0, sound.size, 1024):
        frame = av.AudioFrame.from_ndarray(sound[None, start : start + 1024], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        yield frame


def save_random_r2plus1d(path: Path, seed: int) -> Path:
    """A full, seeded random r2plus1d_18 state dict (classifier included, like torchvision's file) at `path`."""
    import torch
    from torchvision.models.video import r2plus1d_18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.save(r2plus1d_18(weights=None).state_dict(), path)
    return path


def watch_page(page, url: str):
    """Open `url` in a browser tab, collecting its JavaScript errors; yields the tab, then checks there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"
