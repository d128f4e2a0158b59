"""Training throughput: segments per second for one epoch of `base`.

Measures, side by side in one run: the demo's features (when results/features/*.npy exist) and a synthetic
memory-mapped feature set (default 1,000,000 segments of 1506 + 512 floats, about 8 GB on disk, read through
the page cache, never loaded whole). Each measurement trains `max_epochs: 1` with every segment of the split
(`training.segments: all`), so "segments" counts training segments seen plus validation segments scored.

    python benchmarks/training.py [--segments N] [--device auto] [--out results/benchmarks/training.csv]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from mvcl.configuration import resolve_configuration
from mvcl.data.ingest import assign_split
from mvcl.device import pick_device
from mvcl.io import save_csv
from mvcl.learn.batches import TrainingRun
from mvcl.learn.train import train_heads

REPO = Path(__file__).resolve().parents[1]
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def base_settings() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    settings = resolve_configuration(config, "base")
    settings["training"].update(max_epochs=1, segments="all")
    return settings


def synthetic(
    folder: Path, n_segments: int, per_video: int = 6
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Memory-mapped random features written in chunks, and a segments table of n_segments / per_video videos."""
    audio = np.lib.format.open_memmap(folder / "audio.npy", "w+", np.float32, (n_segments, 1506))
    video = np.lib.format.open_memmap(folder / "video.npy", "w+", np.float32, (n_segments, 1, 512))
    rng = np.random.default_rng(0)
    for start in range(0, n_segments, 65536):
        stop = min(start + 65536, n_segments)
        audio[start:stop] = rng.standard_normal((stop - start, 1506), dtype=np.float32)
        video[start:stop, 0] = rng.standard_normal((stop - start, 512), dtype=np.float32)
    audio.flush()
    video.flush()
    video_ids = np.repeat([f"v{i:07d}" for i in range(-(-n_segments // per_video))], per_video)[:n_segments]
    split_of = {vid: assign_split(vid, FRACTIONS) for vid in np.unique(video_ids)}
    segments = pd.DataFrame(
        {"video_id": video_ids, "segment": np.tile(np.arange(per_video), len(split_of))[:n_segments]}
    )
    segments["split"] = segments["video_id"].map(split_of)
    del audio, video
    return (
        np.load(folder / "audio.npy", mmap_mode="r"),
        np.load(folder / "video.npy", mmap_mode="r"),
        segments,
    )


def measure(name: str, audio, video, segments: pd.DataFrame, device: torch.device) -> dict:
    start = time.perf_counter()
    run = TrainingRun(audio, video, segments, base_settings(), seed=0, device=device, log=lambda _: None)
    result = train_heads(run)
    seconds = time.perf_counter() - start
    epoch = float(result.history["seconds"].iloc[0])
    counted = int(segments["split"].isin(["train", "val"]).sum())
    return {
        "features": name,
        "segments": len(segments),
        "train_val_segments": counted,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epoch_seconds": round(epoch, 3),
        "total_seconds": round(seconds, 3),
        "segments_per_second": round(counted / epoch, 1),
        # The study's scale: ~550k videos x 6 segments, 90% of them in train + val.
        "projected_epoch_seconds_at_3.3M": round(550_000 * 6 * 0.9 / (counted / epoch), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="results/benchmarks/training.csv")
    args = parser.parse_args()
    device = pick_device(args.device)
    rows = []
    demo = Path("results/features")
    if (demo / "musicnn.npy").exists() and (demo / "r2plus1d.npy").exists():
        segments = pd.read_parquet("results/data/segments.parquet", columns=["video_id", "segment", "split"])
        rows.append(
            measure(
                "demo",
                np.load(demo / "musicnn.npy", mmap_mode="r"),
                np.load(demo / "r2plus1d.npy", mmap_mode="r"),
                segments,
                device,
            )
        )
        print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory(
        dir=Path(args.out).parent if Path(args.out).parent.exists() else None
    ) as folder:
        audio, video, segments = synthetic(Path(folder), args.segments)
        rows.append(measure(f"synthetic memmap ({args.segments:,} segments)", audio, video, segments, device))
        print(rows[-1], flush=True)
    save_csv(args.out, pd.DataFrame(rows))


if __name__ == "__main__":
    main()
