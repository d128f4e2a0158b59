"""Where the time of video feature extraction goes: decode alone, model alone and the whole, in one run.

On a small synthetic corpus (mvcl.demo.synthetic, the demo's look), with the demo's settings unless told otherwise,
at every `--precisions` (fp32 and bf16 by default, int8 on request; see mvcl.features.precision):
- decode: `decode_frames` of every segment's clip window (streaming seek + decode + FFmpeg scaling);
- decode+crop: the same plus cutting and resizing the views (what the background thread does per segment);
- model <precision>: R(2+1)D-18 on clips decoded beforehand, batched, after an untimed warm-up batch (random
  weights: the cost does not depend on them), as the workflow runs it (`VideoEncoder.compute_in`: weights
  cast once, channels-last); `model <precision> (autocast)`: the float32 model under torch.autocast instead;
- model int8-<engine> (`--int8-engines onednn fbgemm`): the int8 model packed for each torch engine, side by
  side (the workflow uses `precision.int8_engine`'s);
- whole <precision>: `extract_video_features` end to end, decoding in background threads while the model
  runs; it includes building the encoder (row "encoder build" shows that cost alone).
Target: whole >= 80% of the throughput of the slower of decode+crop and model, at every precision.
Fidelity: the per-clip cosine of each precision's features with fp32's on the same clips (>= 0.999).

Stages run `--repeats` rounds in rotating order and each row is the median round (benchmarks/common.py); CPU
seconds (all threads) are reported beside it.

    .venv/bin/python benchmarks/video_features.py [--clip-frames 30] [--videos 8] [--out results/...csv]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import (
    add_process_options,
    conditions,
    rate,
    run_rotating,
    start_process,
    summarise,
    write_results,
)

from mvcl.data.decode import decode_frames
from mvcl.demo.synthetic import corpus_segments
from mvcl.device import pick_device
from mvcl.features.precision import DTYPES, PRECISIONS, resolve_precision
from mvcl.features.r2plus1d import build_video_encoder
from mvcl.features.video import (
    CALIBRATION_CLIPS,
    batch_size_for,
    crop_rng,
    decode_workers_for,
    extract_video_features,
    segment_clips,
)


def count_or_auto(value: str) -> int | str:
    return value if value == "auto" else int(value)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/video_features.csv"))
    parser.add_argument(
        "--corpus", type=Path, help="folder to generate the videos in (or reuse); default: temp"
    )
    parser.add_argument("--videos", type=int, default=8, help="default 8 x 4 = 32 clips: two CPU batches")
    parser.add_argument("--segments-per-video", type=int, default=4)
    parser.add_argument("--video-size", type=int, nargs=2, default=[224, 128], metavar=("W", "H"))
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--frame-size", type=int, nargs=2, default=[224, 128], metavar=("W", "H"))
    parser.add_argument("--clip-frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--train-views", type=int, default=1)
    parser.add_argument(
        "--batch-size",
        type=count_or_auto,
        default="auto",
        help="clips per forward pass, or auto (the default)",
    )
    parser.add_argument(
        "--decode-workers", type=count_or_auto, default="auto", help="decoding threads, or auto"
    )
    add_process_options(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=PRECISIONS)
    parser.add_argument(
        "--int8-engines", nargs="*", default=[], choices=["onednn", "fbgemm"],
        help="also time the int8 model on each of these torch engines, side by side (stages 'model int8-<engine>')",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    load_before = os.getloadavg()[0]
    start_process(args)
    device = pick_device(args.device)
    batch_size = batch_size_for(args.batch_size, device)  # as extract_video_features resolves them
    decode_workers = decode_workers_for(args.decode_workers, device, args.threads)
    precisions = list(dict.fromkeys(resolve_precision(name, device) for name in args.precisions))
    settings = {
        "weights": "none",
        "allow_random": False,
        "clip_frames": args.clip_frames,
        "crop": args.crop,
        "crop_scale": [0.5, 1.0],
        "normalize": True,
        "train_views": args.train_views,
        "batch_size": batch_size,
        "frame_size": tuple(args.frame_size),
        "seed": 0,
        "device": device,
    }
    with tempfile.TemporaryDirectory() as temporary:
        segments = corpus_segments(
            args.corpus or Path(temporary), videos=args.videos, segments_per_video=args.segments_per_video,
            fps=args.fps, size=tuple(args.video_size),
        )  # fmt: skip
        build_s, stages, features = prepare_stages(
            segments, settings, decode_workers, precisions, args.int8_engines
        )
        samples = run_rotating(stages, args.repeats)
    table = pd.concat(
        [
            pd.DataFrame([{"stage": "encoder build", "segments": 0, "rounds": 1, "seconds": build_s}]),
            summarise(samples, len(segments)),
        ],
        ignore_index=True,
    )
    cosines = {name: per_clip_cosine(features["fp32"], value) for name, value in features.items()}
    table["min_cosine_with_fp32"] = [
        cosines.get(stage.rsplit(" ", 1)[-1], np.nan) if stage.startswith("model") else np.nan
        for stage in table["stage"]
    ]
    write_results(
        table,
        args.out,
        {
            "clip_frames": args.clip_frames,
            "crop": args.crop,
            "frame_size": f"{args.frame_size[0]}x{args.frame_size[1]}",
            "video_size": f"{args.video_size[0]}x{args.video_size[1]}",
            "train_views": args.train_views,
            "batch_size": batch_size,
            "decode_workers": decode_workers,
            "device": str(device),
            **conditions(args.threads, load_before),
        },
    )
    rates = rate(table)
    for precision in precisions:
        slower = min(rates["decode+crop"], rates[f"model {precision}"])
        print(
            f"{precision}: whole / slower of (decode+crop, model): {rates[f'whole {precision}'] / slower:.0%} "
            "(target >= 80%)"
        )
        if precision != "fp32":
            speedup = rates[f"model {precision}"] / rates["model fp32"]
            print(
                f"{precision}: model {speedup:.2f}x fp32, min per-clip cosine with fp32 {cosines[precision]:.5f}"
            )


def per_clip_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    """The smallest cosine similarity between matching rows of two [clips, 512] feature arrays."""
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1)
    return float(((reference * other).sum(axis=1) / norms).min())


def prepare_stages(
    segments: pd.DataFrame, settings: dict, decode_workers: int, precisions: list[str], engines: list[str]
) -> tuple[float, dict[str, Callable[[], None]], dict[str, np.ndarray]]:
    """Seconds to build the encoder, the stages to time (their inputs prepared, untimed), and the model's
    features of every clip at each precision (fp32 always, for the fidelity check) and for int8 on each of
    `engines` ("int8-<engine>": the same quantisation packed for that torch engine)."""
    rows = list(segments.itertuples())
    device = settings["device"]
    cuda = device.type == "cuda"
    started = time.perf_counter()
    encoder, _ = build_video_encoder("none", allow_random=False, seed=0)
    encoder.to(device)
    build_s = time.perf_counter() - started
    clip_batches = torch.split(
        torch.cat([clips(segment, settings) for segment in rows]), settings["batch_size"]
    )
    if cuda:
        clip_batches = [batch.pin_memory() for batch in clip_batches]
    # the same weights in every precision, as extract_video_features runs them (VideoEncoder.compute_in)
    encoders = {
        precision: copy.deepcopy(encoder).compute_in(DTYPES[precision])
        for precision in dict.fromkeys(["fp32", *precisions])
    }
    # int8 (the workflow's engine) and int8-<engine>: calibrated on the first clips, as the workflow does on
    # CALIBRATION_CLIPS
    int8_models = {"int8": None} if "int8" in encoders else {}
    for engine in engines:
        encoders[f"int8-{engine}"] = copy.deepcopy(encoder)
        int8_models[f"int8-{engine}"] = engine
    if int8_models:
        every_clip = torch.cat(clip_batches)
        for name, engine in int8_models.items():
            encoders[name].quantize_int8(
                every_clip[:CALIBRATION_CLIPS], every_clip[CALIBRATION_CLIPS:], engine=engine
            )

    def encode(precision: str, autocast: bool = False) -> np.ndarray:
        # autocast: the float32 model under torch.autocast, the previous way of running reduced precision
        model = encoders["fp32" if autocast else precision]
        context = torch.autocast(device.type, DTYPES[precision]) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), context:
            outputs = [model(batch.to(device, non_blocking=cuda)).float() for batch in clip_batches]
            return torch.cat(outputs).cpu().numpy()  # one synchronisation at the end

    features = {precision: encode(precision) for precision in encoders}  # also the warm-up

    def decode() -> None:
        for segment in rows:
            decode_frames(
                segment.path, segment.clip_start_s, segment.clip_end_s, settings["clip_frames"],
                settings["frame_size"],
            )  # fmt: skip

    def decode_and_crop() -> None:
        for segment in rows:
            clips(segment, settings)

    stages: dict[str, Callable[[], None]] = {"decode": decode, "decode+crop": decode_and_crop}
    for engine in engines:
        stages[f"model int8-{engine}"] = lambda engine=engine: encode(f"int8-{engine}")
    for precision in precisions:
        stages[f"model {precision}"] = lambda precision=precision: encode(precision)
        if precision not in ("fp32", "int8"):
            stages[f"model {precision} (autocast)"] = lambda precision=precision: encode(precision, True)
        stages[f"whole {precision}"] = lambda precision=precision: extract_video_features(
            segments, **settings, progress=False, decode_workers=decode_workers, precision=precision
        )
    return build_s, stages, features


def clips(segment, settings: dict) -> torch.Tensor:
    return segment_clips(
        segment.path, segment.clip_start_s, segment.clip_end_s, train=True,
        rng=crop_rng(settings["seed"], segment.video_id, segment.segment), clip_frames=settings["clip_frames"],
        crop=settings["crop"], crop_scale=tuple(settings["crop_scale"]), views=settings["train_views"],
        frame_size=settings["frame_size"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
