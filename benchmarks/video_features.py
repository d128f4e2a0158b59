"""Where the time of video feature extraction goes: decode alone, model alone and the whole, in one run.

On a small synthetic corpus (mvcl.data.synthetic, the demo's look), with the demo's settings unless told otherwise:
- decode: `decode_frames` of every segment's clip window (streaming seek + decode + FFmpeg scaling);
- decode+crop: the same plus cutting and resizing the views (what the background thread does per segment);
- model: R(2+1)D-18 on clips decoded beforehand, batched, after an untimed warm-up batch (random weights:
  the cost does not depend on them);
- whole: `extract_video_features` end to end, decoding in a background thread while the model runs; it
  includes building the encoder (row "encoder build" shows that cost alone).
Target: whole >= 80% of the throughput of the slower of decode+crop and model.

Stages run `--repeats` times in rotating order and the fastest wall time of each is kept, so that other
processes on a shared machine skew the comparison less; CPU seconds (all threads) are reported beside it.

    .venv/bin/python benchmarks/video_features.py [--clip-frames 30] [--videos 8] [--out results/...csv]
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from mvcl.data.decode import decode_frames
from mvcl.data.synthetic import corpus_segments
from mvcl.device import pick_device
from mvcl.features.r2plus1d import build_video_encoder
from mvcl.features.video import crop_rng, extract_video_features, segment_clips


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/video_features.csv"))
    parser.add_argument(
        "--corpus", type=Path, help="folder to generate the videos in (or reuse); default: temp"
    )
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--segments-per-video", type=int, default=4)
    parser.add_argument("--video-size", type=int, nargs=2, default=[224, 128], metavar=("W", "H"))
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--frame-size", type=int, nargs=2, default=[224, 128], metavar=("W", "H"))
    parser.add_argument("--clip-frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--train-views", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--decode-workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    settings = {
        "weights": "none",
        "allow_random": False,
        "clip_frames": args.clip_frames,
        "crop": args.crop,
        "crop_scale": [0.5, 1.0],
        "normalize": True,
        "train_views": args.train_views,
        "batch_size": args.batch_size,
        "frame_size": tuple(args.frame_size),
        "seed": 0,
        "device": device,
    }
    with tempfile.TemporaryDirectory() as temporary:
        segments = corpus_segments(
            args.corpus or Path(temporary), videos=args.videos, segments_per_video=args.segments_per_video,
            fps=args.fps, size=tuple(args.video_size),
        )  # fmt: skip
        build_s, stages = prepare_stages(segments, settings, args.decode_workers)
        best: dict[str, tuple[float, float]] = {}
        for repeat in range(args.repeats):
            names = list(stages)
            for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                wall, cpu = timed(stages[name])
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    rows = [{"stage": "encoder build", "segments": 0, "seconds": build_s, "cpu_seconds": build_s}]
    rows += [
        {"stage": name, "segments": len(segments), "seconds": wall, "cpu_seconds": cpu}
        for name, (wall, cpu) in best.items()
    ]
    table = pd.DataFrame(rows)
    table["segments_per_s"] = table["segments"] / table["seconds"]
    table = table.assign(
        clip_frames=args.clip_frames,
        crop=args.crop,
        frame_size=f"{args.frame_size[0]}x{args.frame_size[1]}",
        video_size=f"{args.video_size[0]}x{args.video_size[1]}",
        train_views=args.train_views,
        batch_size=args.batch_size,
        decode_workers=args.decode_workers,
        threads=args.threads,
        device=str(device),
        machine=platform.machine(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(
        table[["stage", "segments", "seconds", "cpu_seconds", "segments_per_s"]]
        .round(3)
        .to_string(index=False)
    )
    rate = dict(zip(table["stage"], table["segments_per_s"], strict=True))
    cpu = dict(zip(table["stage"], table["cpu_seconds"], strict=True))
    slower = min(rate["decode+crop"], rate["model"])
    print(f"whole / slower of (decode+crop, model): {rate['whole'] / slower:.0%} (target >= 80%)")
    parts = cpu["encoder build"] + cpu["decode+crop"] + cpu["model"]
    print(
        f"CPU seconds: whole {cpu['whole']:.1f}, its parts alone {parts:.1f} (overhead of overlapping them)"
    )
    print(f"wrote {args.out}")


def prepare_stages(
    segments: pd.DataFrame, settings: dict, decode_workers: int
) -> tuple[float, dict[str, Callable[[], None]]]:
    """Seconds to build the encoder, and the stages to time (their inputs prepared, untimed)."""
    rows = list(segments.itertuples())
    started = time.perf_counter()
    encoder, _ = build_video_encoder("none", allow_random=False, seed=0)
    encoder.to(settings["device"])
    build_s = time.perf_counter() - started
    batches = torch.split(torch.cat([clips(segment, settings) for segment in rows]), settings["batch_size"])
    with torch.inference_mode():
        encoder(batches[0].to(settings["device"])).cpu()  # warm-up: first-call allocations, untimed

    def decode() -> None:
        for segment in rows:
            decode_frames(
                segment.path, segment.clip_start_s, segment.clip_end_s, settings["clip_frames"],
                settings["frame_size"],
            )  # fmt: skip

    def decode_and_crop() -> None:
        for segment in rows:
            clips(segment, settings)

    def model() -> None:
        with torch.inference_mode():
            for batch in batches:
                encoder(batch.to(settings["device"])).cpu()

    def whole() -> None:
        extract_video_features(segments, **settings, progress=False, decode_workers=decode_workers)

    return build_s, {"decode": decode, "decode+crop": decode_and_crop, "model": model, "whole": whole}


def timed(stage: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one run of `stage`."""
    wall, cpu = time.perf_counter(), time.process_time()
    stage()
    return time.perf_counter() - wall, time.process_time() - cpu


def clips(segment, settings: dict) -> torch.Tensor:
    return segment_clips(
        segment.path, segment.clip_start_s, segment.clip_end_s, train=True,
        rng=crop_rng(settings["seed"], segment.video_id, segment.segment), clip_frames=settings["clip_frames"],
        crop=settings["crop"], crop_scale=tuple(settings["crop_scale"]), views=settings["train_views"],
        frame_size=settings["frame_size"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
