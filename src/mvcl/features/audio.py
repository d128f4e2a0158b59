"""Frozen musicnn features of every segment, row-aligned with segments.parquet.

Per segment, the window (`clip`: the synchronous [clip_start_s, clip_end_s), their code's 3 s; `segment`: the
whole [start_s, end_s)) is decoded once at 16 kHz (`mvcl.data.decode.decode_audio`), turned into musicnn's log-mel
(`MelFrontEnd`, batched, on the model's device) and cut into 3 s patches (187 frames). A window's feature is
the mean over its patches of the chosen layer:
- `pool`: max_pool then mean_pool of the 753 front-end + mid-end maps, 2 x 753 = 1506-d, in the order
  [max | mean]. That is the order of their code (a PyTorch musicnn: `torch.cat([mp, avgp], dim=1)` on
  [B, 753, 1] maps); TF musicnn's own back end flattens the same pair interleaved (max0, mean0, max1, ...),
  which only matters to its dense layer, and the model keeps that order internally. Heads see the same
  information either way; [max | mean] keeps `feature[:753]` readable as the max pool.
- `penultimate`: the 200-d batch-normalised dense layer (256-d flattened pool5 for the vgg models).
- `taggram`: the 50 tag probabilities.
A 3 s clip is exactly one patch, as in their code. A longer window is covered by ceil((frames - 1) / 187)
evenly spaced patches (overlapping where needed), so a 5 s segment is heard whole; the original extractor
instead drops the tail shorter than a patch. A window shorter than 3 s is repeated to 3 s, as musicnn's
training padded short clips ("repeat-pad").

Decoding and the log-mel front end run in a background thread while the model works on the previous batch
(PyAV and torch release the GIL); a segment that fails to decode gets a NaN row and a warning naming the file
and the reason.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from mvcl.data.decode import DecodeError, decode_audio
from mvcl.device import pick_device
from mvcl.features.batched import Batches, decode_threads, feed_decoded
from mvcl.features.musicnn import (
    MUSICNN_MODELS,
    NUM_TAGS,
    PATCH_FRAMES,
    PATCH_SECONDS,
    SAMPLE_RATE,
    VGG_MODELS,
    MelFrontEnd,
    load_musicnn,
)
from mvcl.features.prefetch import ahead

log = logging.getLogger(__name__)

LAYERS = ("pool", "penultimate", "taggram")
WINDOWS = ("clip", "segment")
POOLED_FEATURES = 753  # front end (561) + mid end (3 x 64) maps that max_pool and mean_pool summarise


def feature_dim(layer: str, model: str = "MTT_musicnn") -> int:
    """Length of one segment's feature for `layer` (pool 1506, penultimate 200, taggram 50)."""
    if model not in MUSICNN_MODELS + VGG_MODELS:
        raise ValueError(
            f"audio_encoder.model: {model!r} is not one of {', '.join(MUSICNN_MODELS + VGG_MODELS)}"
        )
    if layer == "pool":
        if model in VGG_MODELS:
            raise ValueError(
                f"audio_encoder.layer: pool needs a musicnn model (max/mean pools of its 753 maps); {model} "
                "has none: choose layer penultimate or taggram, or model MTT_musicnn / MSD_musicnn"
            )
        return 2 * POOLED_FEATURES
    if layer == "penultimate":
        return 256 if model in VGG_MODELS else 200
    if layer == "taggram":
        return NUM_TAGS
    raise ValueError(f"audio_encoder.layer: {layer!r} is not one of {', '.join(LAYERS)}")


def layer_features(outputs: dict[str, torch.Tensor], layer: str) -> torch.Tensor:
    """Per-patch features [patches, feature_dim(layer)] from the model's outputs."""
    if layer == "pool":
        return torch.cat([outputs["max_pool"], outputs["mean_pool"]], dim=1)
    return outputs[layer]


def patch_starts(frames: int) -> list[int]:
    """First frames of the 187-frame patches that cover a window of `frames` log-mel frames.

    librosa's centred frames number 1 + samples // 256, so a 3 s window has 188 frames and one patch. Longer
    windows get ceil((frames - 1) / 187) patches, evenly spaced from the first frame to the last full one.
    """
    count = max(1, math.ceil((frames - 1) / PATCH_FRAMES))
    last = frames - 1 - PATCH_FRAMES
    if count == 1 or last <= 0:
        return [0]
    return [round(i * last / (count - 1)) for i in range(count)]


def decode_workers_for(spec: int | str, device: torch.device, threads: int) -> int:
    """Decoding threads for `audio_encoder.decode_workers` `spec` (a count, or auto) in a job of `threads`.

    auto: half the threads (at least 1) on a CPU, where decoding a window of real music videos' audio costs
    about what a model worker spends on its patch, so one decoder would cap a many-threaded job (the
    figures: README, Speed). On a GPU, as many decoders as threads.
    """
    return decode_threads(spec, "audio_encoder.decode_workers", device, threads, on_cpu=max(1, threads // 2))


def repeat_to_patch(waveform: np.ndarray) -> np.ndarray:
    """`waveform` repeated to at least 3 s (one patch); longer waveforms are returned unchanged."""
    needed = round(PATCH_SECONDS * SAMPLE_RATE)
    if len(waveform) >= needed:
        return waveform
    if len(waveform) == 0:
        raise DecodeError("empty audio window")
    return np.resize(waveform, needed)


def extract_audio_features(
    segments: pd.DataFrame,
    *,
    model: str,
    layer: str,
    window: str,
    sample_rate: int,
    batch_size: int,
    device: str | torch.device = "auto",
    progress: bool = True,
    decode_workers: int | str = "auto",
) -> np.ndarray:
    """float32 features [len(segments), feature_dim(layer, model)] row-aligned with `segments`.

    `segments` needs video_id, segment, path (absolute), start_s, end_s, clip_start_s, clip_end_s. `model`,
    `layer`, `window` and `batch_size` (patches per forward pass) are the config's audio_encoder keys;
    `sample_rate` must be musicnn's 16 kHz. Rows of segments that fail to decode are NaN.

    On a CPU the model uses torch's intra-op thread count as data-parallel workers (see `patch_features`).
    `decode_workers` threads decode ahead of the model (`decode_workers_for`; `auto` by default).
    """
    if window not in WINDOWS:
        raise ValueError(f"audio_encoder.window: {window!r} is not one of {', '.join(WINDOWS)}")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"segments.sample_rate is {sample_rate} Hz, but musicnn was trained on {SAMPLE_RATE} Hz audio: "
            f"set segments.sample_rate: {SAMPLE_RATE}"
        )
    if batch_size < 1:
        raise ValueError(f"audio_encoder.batch_size must be at least 1, got {batch_size}")
    dim = feature_dim(layer, model)
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    decode_workers = decode_workers_for(decode_workers, device, torch.get_num_threads())
    bounds = ("clip_start_s", "clip_end_s") if window == "clip" else ("start_s", "end_s")

    features = np.full((len(segments), dim), np.nan, dtype=np.float32)
    sums = np.zeros((len(segments), dim), dtype=np.float64)  # per-row sums of patch features
    counts = np.zeros(len(segments), dtype=np.int64)

    def store(rows: list[int], output: np.ndarray) -> None:
        np.add.at(sums, rows, output)
        np.add.at(counts, rows, 1)

    def on_failure(segment, error: Exception) -> None:
        reason = str(error) if str(segment.path) in str(error) else f"{segment.path}: {error}"
        log.warning(
            "segment %s of %s gets NaN audio features (%s window): %s",
            segment.segment, segment.video_id, window, reason,
        )  # fmt: skip

    started = time.perf_counter()
    lookahead = max(2 * batch_size, 2 * decode_workers)
    front_end = MelFrontEnd().to(device)
    with _decoding_ahead(segments, bounds, front_end, decode_workers, lookahead) as decoded:
        # The first windows decode while the model loads.
        encoder = load_musicnn(model, device)
        with patch_features(encoder, layer, device) as encode:
            batches = Batches(lambda batch: encode(batch).double().cpu().numpy(), batch_size, store)

            def feed(row: int, segment, mel: torch.Tensor) -> None:
                for start in patch_starts(mel.shape[0]):
                    batches.add(mel[start : start + PATCH_FRAMES], row)

            stats = feed_decoded(decoded, feed, on_failure, len(segments), progress, (DecodeError, OSError))
            batches.flush()
    done = counts > 0
    features[done] = (sums[done] / counts[done, None]).astype(np.float32)
    log.info(
        "musicnn %s %s features (%d-d, %s window) of %d segments (%d failed) in %.1f s on %s: model %.1f s, "
        "decode + log-mel %.1f s (background), waiting for them %.1f s",
        *(model, layer, dim, window, len(segments), stats.failed, time.perf_counter() - started, device),
        *(batches.seconds, stats.decode_s, stats.wait_s),
    )
    return features


@contextmanager
def patch_features(
    encoder: torch.nn.Module, layer: str, device: torch.device
) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """A function from log-mel patches [n, 187, 96] to their `layer` features [n, D], in inference mode.

    On a CPU with N > 1 intra-op threads, it splits each batch over N worker threads that run one intra-op
    thread each (torch's thread count is set to 1 inside the block and restored after): the model's many
    small GEMMs waste CPU time on OpenMP synchronisation when threaded inside each operation, and collapse
    when other processes share the cores; data-parallel workers do neither (README, Speed).
    """
    workers = torch.get_num_threads() if device.type == "cpu" else 1

    def encode(patches: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return layer_features(encoder(patches), layer)

    if workers == 1:
        yield encode
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="musicnn")

    def encode_in_parallel(patches: torch.Tensor) -> torch.Tensor:
        parts = [part for part in torch.tensor_split(patches, workers) if len(part)]
        return torch.cat(list(pool.map(encode, parts)))

    torch.set_num_threads(1)
    try:
        yield encode_in_parallel
    finally:
        torch.set_num_threads(workers)
        pool.shutdown(wait=True)


@contextmanager
def _decoding_ahead(
    segments: pd.DataFrame, bounds: tuple[str, str], front_end: MelFrontEnd, workers: int, lookahead: int
) -> Iterator[Iterator[tuple[int, object, Future]]]:
    """An iterator of (row, segment, future of (log-mel [frames, 96], seconds)) in row order.

    Each segment's window is decoded to 16 kHz and turned into its log-mel by `front_end` in the background,
    so that the model's workers never wait for a front end; decoding starts on entry and stays `lookahead`
    rows ahead of the consumer; on exit (also after an error) decodes not yet started are dropped.
    """
    start_column, end_column = bounds
    device = front_end.filterbank.device

    def decode(segment) -> tuple[torch.Tensor, float]:
        started = time.perf_counter()
        start_s, end_s = getattr(segment, start_column), getattr(segment, end_column)
        waveform = repeat_to_patch(decode_audio(segment.path, start_s, end_s, SAMPLE_RATE))
        with torch.inference_mode():
            mel = front_end(torch.from_numpy(waveform).to(device)[None])[0]
        return mel, time.perf_counter() - started

    with ahead(segments, decode, workers, lookahead, "decode-audio") as in_order:
        yield in_order
