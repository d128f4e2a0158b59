"""Segments (3 s patches) per second: mvcl's PyTorch musicnn against the original TensorFlow musicnn, in one run.

Workload: the 3 s clip windows of the segments of a small synthetic corpus (mvcl.demo.synthetic, H.264 + AAC;
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
- model, port before: the same with the timbral GEMMs of the port's previous version (strided slices of one
  [49, 14, rows] array, 64-row chunks; `timbral_before` below), so a change is measured side by side;
- model, port (1 thread): the port on one thread, to read off how it scales with `--threads`.
Both sides get `--threads` threads. Stages run `--repeats` rounds in rotating order and each row is the
median round (benchmarks/common.py; the machine may be shared); CPU seconds of the process (all threads) are
reported beside it. The port's outputs are compared with the original's on the same patches (max abs difference of
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
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import common  # the benchmarks' harness: rounds, summary, conditions, results
import numpy as np
import pandas as pd
import torch
from torch import nn

from mvcl.data.decode import decode_audio
from mvcl.demo.synthetic import corpus_segments
from mvcl.device import pick_device
from mvcl.features import musicnn
from mvcl.features.audio import extract_audio_features, layer_features, patch_features
from mvcl.features.musicnn import (
    DFT_BINS,
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
    parser.add_argument("--videos", type=int, default=30, help="default: a demo shard, 180 clips")
    parser.add_argument("--segments-per-video", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    common.add_process_options(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="the port's device: cpu, cuda, auto")
    parser.add_argument("--tf-site-packages", type=Path, help="folder with tensorflow, tf-keras, musicnn")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    common.start_process(args)
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
        samples = common.run_rotating(stages, args.repeats)
    table = common.summarise(samples, len(patches))
    table["cpu_ms_per_segment"] = 1000 * table["cpu_seconds"] / table["segments"]
    table["max_abs_diff_pool_vs_before"] = np.abs(outputs["pool"] - outputs["pool before"]).max()
    if original is not None:
        for name, difference in compare(outputs, original_outputs).items():
            table[f"max_abs_diff_{name}"] = difference
    settings = {
        "model": args.model,
        "device": args.device,
        "batch_size": args.batch_size,
        **common.conditions(args.threads, load_before),
    }
    common.write_results(table, args.out, settings)
    rates = common.rate(table)
    if "model, port before" in rates:
        print(
            f"model, port / port before: {rates['model, port (batched)'] / rates['model, port before']:.2f}x"
        )
        print(
            f"model, port on {args.threads} threads / on 1 thread: "
            f"{rates['model, port (batched)'] / rates['model, port (1 thread)']:.2f}x"
        )
    if original is not None:
        for port, baseline in (
            ("model, port (batched)", "model, original (batch 1, as its extractor)"),
            ("model, port (batched)", "model, original (batched)"),
            ("end to end, port", "end to end, original"),
        ):
            print(f"{port} / {baseline}: {rates[port] / rates[baseline]:.1f}x")
        print("max abs difference port vs original:", compare(outputs, original_outputs))


def port_stages(
    segments: pd.DataFrame, waveforms: list[np.ndarray], patches: np.ndarray, args: argparse.Namespace
) -> tuple[dict[str, Callable[[], None]], dict[str, np.ndarray]]:
    """The port's stages, and its outputs on `patches`."""
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    model = load_musicnn(args.model, device)
    front_end = MelFrontEnd().to(device)
    stacked = torch.from_numpy(np.stack(waveforms)).to(device)
    inputs = torch.from_numpy(patches).to(device)

    with torch.inference_mode():  # also the warm-up: first-call allocations, untimed
        outputs = model(inputs)
        with mock.patch.object(musicnn, "_timbral", timbral_before):
            before = layer_features(model(inputs), "pool").cpu().numpy()
    port = {
        "taggram": outputs["taggram"].cpu().numpy(),
        "pool": layer_features(outputs, "pool").cpu().numpy(),
        "penultimate": outputs["penultimate"].cpu().numpy(),
    }
    synchronize = torch.cuda.synchronize if cuda else lambda: None

    def decode() -> None:
        for segment in segments.itertuples():
            decode_audio(segment.path, segment.clip_start_s, segment.clip_end_s, SAMPLE_RATE)

    def batched_front_end() -> None:
        with torch.inference_mode():
            for batch in torch.split(stacked, args.batch_size):
                front_end(batch)[:, :PATCH_FRAMES]
        synchronize()

    def run_model() -> None:
        # as extract_audio_features runs it: on a CPU, data-parallel over the threads
        with patch_features(model, "pool", device) as encode:
            for batch in torch.split(inputs, args.batch_size):
                encode(batch)
        synchronize()

    def run_model_before() -> None:
        with mock.patch.object(musicnn, "_timbral", timbral_before):
            run_model()

    def run_model_on_one_thread() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            run_model()
        finally:
            torch.set_num_threads(threads)

    def end_to_end() -> None:
        extract_audio_features(
            segments, model=args.model, layer="pool", window="clip", sample_rate=SAMPLE_RATE,
            batch_size=args.batch_size, device=device, progress=False,
        )  # fmt: skip

    stages = {
        "decode": decode,
        "front end, original (numpy/librosa)": lambda: [musicnn_mel(waveform) for waveform in waveforms],
        "front end, port (torch, batched)": batched_front_end,
        "model, port (batched)": run_model,
        "end to end, port": end_to_end,
    }
    if not cuda:  # CPU questions: the previous CPU GEMM layout, and scaling over threads
        stages |= {"model, port before": run_model_before, "model, port (1 thread)": run_model_on_one_thread}
    return stages, port | {"pool before": before}


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
    return {name: float(np.abs(port[name] - original[name]).max()) for name in original}


def timbral_before(blocks: nn.ModuleList, padded: torch.Tensor) -> list[torch.Tensor]:
    """The timbral blocks as the port computed them before its GEMM operands were made contiguous per chunk
    (one [49, 14, rows] array sliced by 64 rows, two filter groups); equal outputs, for timing only."""
    batch, frames = padded.shape[0], padded.shape[1] - 6
    rows = batch * frames
    spectrum = torch.view_as_real(torch.fft.rfft(padded, dim=-1))
    taps = spectrum.unfold(1, 7, 1).permute(2, 3, 4, 0, 1).reshape(DFT_BINS, 14, rows)
    outputs = []
    for block in blocks:
        sign = musicnn._pooling_sign(block.bn)
        spectral, inverse = block.spectral_weights(sign)
        filters = block.conv.out_channels
        pooled = padded.new_empty(filters, rows)
        group_size = -(-filters // 2)
        for first in range(0, filters, group_size):
            group = spectral[:, :, first : first + group_size]
            width = group.shape[2]
            weights = group.reshape(DFT_BINS, 2 * width, 14)
            for start in range(0, rows, 64):
                window = taps[:, :, start : start + 64]
                n = window.shape[-1]
                correlation = torch.bmm(weights, window)
                maps = inverse @ correlation.view(2 * DFT_BINS, width * n)
                pooled[first : first + width, start : start + n] = maps.view(-1, width, n).amax(dim=0)
        conv = sign * pooled.T + block.conv.bias
        outputs.append(musicnn._relu_bn(conv, block.bn).view(batch, frames, -1))
    return outputs


if __name__ == "__main__":
    main()
