"""Segments (3 s patches) per second: mvcl's PyTorch musicnn against the original TensorFlow musicnn, in one run.

Workload: the 3 s clip windows of the segments of a small synthetic corpus (mvcl.data.synthetic, H.264 + AAC;
one patch each, as the workflow's default `window: clip`). Stages, each over all clips:
- decode: `decode_audio` of every clip window to 16 kHz (shared by both sides);
- front end, original: musicnn's numpy/librosa log-mel (`musicnn_mel`, the original's computation);
- front end, port: `MelFrontEnd` (torch, batched);
- model, original: the original TF graph (`musicnn.models.define_model`, checkpoint restored explicitly),
  one patch per `session.run` as its extractor does (configuration.BATCH_SIZE = 1), and batched;
- model, port: `load_musicnn(...)` on the same patches, batched, run as `extract_audio_features` runs it
  (`patch_features`: on a CPU, data-parallel over the threads, one intra-op thread each);
- end to end, original: decode + original front end + original model (batch 1), in sequence;
- end to end, port: `extract_audio_features`, decoding in a background thread while the model runs.
Both sides get `--threads` threads. Stages run `--repeats` times in rotating order and the fastest wall
time of each is kept (the machine may be shared); CPU seconds of the process (all threads) are reported
beside it. The port's outputs are compared with the original's on the same patches (max abs difference of
taggram, pools and penultimate), so "identical outputs" is checked in the same run.

TensorFlow is not a project dependency: the original side runs when `import tensorflow` works (TF 2.x with
tf-keras; TF_USE_LEGACY_KERAS=1 is set here), else it is skipped with a message. `--tf-site-packages` adds
a folder after the project's packages, e.g. the throwaway environment of
tests/fixtures/musicnn/make_reference.py (it has the same numpy):

    .venv/bin/python benchmarks/musicnn.py [out.csv] --tf-site-packages /tmp/tfenv/lib/python3.11/site-packages
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mvcl.data.decode import decode_audio
from mvcl.data.synthetic import corpus_segments
from mvcl.features.audio import extract_audio_features, layer_features, patch_features
from mvcl.features.musicnn import (
    NUM_TAGS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    MelFrontEnd,
    checkpoint_prefix,
    load_musicnn,
    mel_patches,
    musicnn_mel,
)

# This file is named musicnn.py: keep its folder off the import path, or it would shadow the musicnn package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]



def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, nargs="?", default=Path("results/benchmarks/musicnn.csv"))
    parser.add_argument(
        "--corpus", type=Path, help="folder to generate the videos in (or reuse); default: temp"
    )
    parser.add_argument("--model", default="MTT_musicnn", choices=["MTT_musicnn", "MSD_musicnn"])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--segments-per-video", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tf-site-packages", type=Path, help="folder with tensorflow, tf-keras, musicnn")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if args.tf_site_packages:
        sys.path.append(str(args.tf_site_packages))
    with tempfile.TemporaryDirectory() as temporary:
        segments = corpus_segments(
            args.corpus or Path(temporary), videos=args.videos, segments_per_video=args.segments_per_video,
            fps=4, size=(64, 48),
        )  # fmt: skip
        waveforms = [
            decode_audio(s.path, s.clip_start_s, s.clip_end_s, SAMPLE_RATE) for s in segments.itertuples()
        ]
        patches = np.concatenate([mel_patches(musicnn_mel(waveform)) for waveform in waveforms])
        stages, outputs = port_stages(segments, waveforms, patches, args)
        original = original_stages(segments, patches, args)
        if original is None:
            print(
                "TensorFlow is not importable here: the original's side is skipped (see this file's docstring)"
            )
        else:
            original_stage_map, original_outputs = original
            stages.update(original_stage_map)
        best = run_rotating(stages, args.repeats)
    rows = [
        {"stage": name, "segments": len(patches), "seconds": wall, "cpu_seconds": cpu}
        for name, (wall, cpu) in best.items()
    ]
    table = pd.DataFrame(rows)
    table["segments_per_s"] = table["segments"] / table["seconds"]
    table["cpu_ms_per_segment"] = 1000 * table["cpu_seconds"] / table["segments"]
    if original is not None:
        for name, difference in compare(outputs, original_outputs).items():
            table[f"max_abs_diff_{name}"] = difference
    table = table.assign(
        model=args.model,
        batch_size=args.batch_size,
        threads=args.threads,
        load_average=f"{os.getloadavg()[0]:.2f}",
        processor=platform.processor() or platform.machine(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(
        table[["stage", "segments", "seconds", "cpu_seconds", "segments_per_s"]]
        .round(3)
        .to_string(index=False)
    )
    rate = dict(zip(table["stage"], table["segments_per_s"], strict=True))
    if original is not None:
        for port, baseline in (
            ("model, port (batched)", "model, original (batch 1, as its extractor)"),
            ("model, port (batched)", "model, original (batched)"),
            ("end to end, port", "end to end, original"),
        ):
            print(f"{port} / {baseline}: {rate[port] / rate[baseline]:.1f}x")
        print("max abs difference port vs original:", compare(outputs, original_outputs))
    print(f"wrote {args.out}")


def port_stages(
    segments: pd.DataFrame, waveforms: list[np.ndarray], patches: np.ndarray, args: argparse.Namespace
) -> tuple[dict[str, Callable[[], None]], dict[str, np.ndarray]]:
    """The port's stages, and its outputs on `patches`."""
    model = load_musicnn(args.model)
    front_end = MelFrontEnd()
    stacked = torch.from_numpy(np.stack(waveforms))
    inputs = torch.from_numpy(patches)

    with torch.inference_mode():  # also the warm-up: first-call allocations, untimed
        outputs = model(inputs)
    port = {
        "taggram": outputs["taggram"].numpy(),
        "pool": layer_features(outputs, "pool").numpy(),
        "penultimate": outputs["penultimate"].numpy(),
    }

    def decode() -> None:
        for segment in segments.itertuples():
            decode_audio(segment.path, segment.clip_start_s, segment.clip_end_s, SAMPLE_RATE)

    def batched_front_end() -> None:
        with torch.inference_mode():
            for batch in torch.split(stacked, args.batch_size):
                front_end(batch)[:, :PATCH_FRAMES]

    def run_model() -> None:
        # as extract_audio_features runs it: on a CPU, data-parallel over the threads
        with patch_features(model, "pool", torch.device("cpu")) as encode:
            for batch in torch.split(inputs, args.batch_size):
                encode(batch)

    def end_to_end() -> None:
        extract_audio_features(
            segments, model=args.model, layer="pool", window="clip", sample_rate=SAMPLE_RATE,
            batch_size=args.batch_size, device="cpu", progress=False,
        )  # fmt: skip

    stages = {
        "decode": decode,
        "front end, original (numpy/librosa)": lambda: [musicnn_mel(waveform) for waveform in waveforms],
        "front end, port (torch, batched)": batched_front_end,
        "model, port (batched)": run_model,
        "end to end, port": end_to_end,
    }
    return stages, port


def original_stages(
    segments: pd.DataFrame, patches: np.ndarray, args: argparse.Namespace
) -> tuple[dict[str, Callable[[], None]], dict[str, np.ndarray]] | None:
    """The original TF musicnn's stages and outputs on `patches`; None when TensorFlow is not importable."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        return None
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, patches.shape[2]])
        is_training = tf.compat.v1.placeholder(tf.bool)
        with tf.name_scope("model"):
            logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
                x, is_training, args.model, NUM_TAGS
            )
        fetches = [tf.nn.sigmoid(logits), mean_pool, max_pool, penultimate]
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads
        )
        session = tf.compat.v1.Session(graph=graph, config=config)
        # Restored explicitly: the original extractor swallows restore errors and runs on random weights.
        tf.compat.v1.train.Saver().restore(session, str(checkpoint_prefix(args.model)) + "/")

    def run(batch_size: int) -> list[np.ndarray]:
        parts = [
            session.run(fetches, {x: patches[i : i + batch_size], is_training: False})
            for i in range(0, len(patches), batch_size)
        ]
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    taggram, mean, maximum, dense = run(1)
    outputs = {
        "taggram": taggram,
        "pool": np.concatenate([maximum, mean], axis=1),
        "penultimate": dense,
    }

    def end_to_end() -> None:
        # decode each window, its log-mel (numpy/librosa), its patch through the graph, one at a time
        for segment in segments.itertuples():
            waveform = decode_audio(segment.path, segment.clip_start_s, segment.clip_end_s, SAMPLE_RATE)
            session.run(fetches, {x: mel_patches(musicnn_mel(waveform)), is_training: False})

    stages = {
        "model, original (batch 1, as its extractor)": lambda: run(1),
        "model, original (batched)": lambda: run(args.batch_size),
        "end to end, original": end_to_end,
    }
    return stages, outputs


def compare(port: dict[str, np.ndarray], original: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.abs(port[name] - original[name]).max()) for name in port}


def run_rotating(stages: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float]]:
    """Fastest (wall, CPU) seconds of each stage over `repeats` rounds, the order rotating each round."""
    best: dict[str, tuple[float, float]] = {}
    names = list(stages)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            stages[name]()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"  {name}: {wall:.2f} s", file=sys.stderr, flush=True)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    return best


if __name__ == "__main__":
    main()
