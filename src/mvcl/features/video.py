"""Frozen R(2+1)D-18 features of every segment's synchronous clip window.

Per segment: `clip_frames` frames at equal spacing over [clip_start_s, clip_end_s) (their code: 30 frames of
the 3 s window), decoded once, streaming (`mvcl.data.decode.decode_frames`), then cut into views:
- train: `train_views` random square crops, resized to `crop` (RandomResizedCrop, scale `crop_scale`);
  one view is sampled per epoch, an augmentation that costs nothing at training time;
- val/test: one centre crop, its feature copied into every view slot, so every row has the same shape.
The crops of a segment depend only on (seed, video_id, segment), never on the shard or the row order.

Decoding and cropping run in a background thread (`decode_workers` of them) while the model works on the
previous batch; PyAV and torch release the GIL. A segment that fails to decode gets a NaN row and a warning naming the file.

The frozen model runs in `precision` (`mvcl.features.precision`: float32, bf16, fp16 or int8; see
`VideoEncoder.compute_in` and `quantize_int8`). int8 is calibrated on `CALIBRATION_CLIPS` centre clips drawn
with `seed` from all segments of the run (`calibration`), the same in every shard, and kept only if its features
of `CALIBRATION_CLIPS` other clips stay within `precision.MIN_COSINE` of float32's. On a GPU, decoding is the
limit: several decode workers feed it, batches go to it as uint8 from pinned host memory with non-blocking
copies, and are normalised there.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision

from mvcl.data.decode import DecodeError, decode_frames
from mvcl.data.segments import video_rng
from mvcl.device import pick_device
from mvcl.features.batched import Batches, decode_threads, feed_decoded
from mvcl.features.precision import DTYPES, MIN_COSINE, int8_engine, resolve_precision
from mvcl.features.prefetch import ahead
from mvcl.features.r2plus1d import (
    FEATURE_DIM,
    VideoEncoder,
    build_video_encoder,
    centre_box,
    crop_clips,
    random_boxes,
)
from mvcl.io import atomic_path
from mvcl.provenance import file_stamps, fingerprint

log = logging.getLogger(__name__)

# Clips per forward pass for batch_size `auto`. A CPU needs 16: below that, on one thread, torch computes
# float32 convolutions with 1x1 spatial kernels (R(2+1)D's temporal (3, 1, 1) ones) with its own slow code
# instead of oneDNN (its `use_mkldnn` rule), several times slower per clip; more gains nothing (README, Speed).
# A GPU needs many.
CPU_BATCH = 16
GPU_BATCH = 64
# Clips that calibrate an int8 model, and as many others that check it against float32.
CALIBRATION_CLIPS = 8


def decode_workers_for(spec: int | str, device: torch.device, threads: int) -> int:
    """Decoding threads for `video_encoder.decode_workers` `spec` in a job of `threads`: auto is 1 on a CPU
    (decoding is far cheaper than the model there: README, Speed), the job's threads on a GPU."""
    return decode_threads(spec, "video_encoder.decode_workers", device, threads, on_cpu=1)


def batch_size_for(spec: int | str, device: torch.device) -> int:
    """Clips per forward pass for `video_encoder.batch_size` `spec`: auto is CPU_BATCH or GPU_BATCH."""
    if spec == "auto":
        return GPU_BATCH if device.type == "cuda" else CPU_BATCH
    return spec


def crop_rng(seed: int, video_id: str, segment: int) -> np.random.Generator:
    """The generator of one segment's crop boxes: a function of (seed, video_id, segment) only."""
    return video_rng(seed, video_id, purpose=f"video crops, segment {int(segment)}")


def segment_clips(
    path: str,
    clip_start_s: float,
    clip_end_s: float,
    *,
    train: bool,
    rng: np.random.Generator,
    clip_frames: int,
    crop: int,
    crop_scale: tuple[float, float],
    views: int,
    frame_size: tuple[int, int],
) -> torch.Tensor:
    """uint8 clips [views if train else 1, 3, clip_frames, crop, crop] of one segment's clip window."""
    frames = decode_frames(path, clip_start_s, clip_end_s, clip_frames, size=frame_size)
    height, width = frames.shape[1:3]
    if train:
        boxes = random_boxes(rng, height, width, views, crop_scale)
    else:
        boxes = [centre_box(height, width, crop_scale)]
    return crop_clips(frames, boxes, crop)


def extract_video_features(
    segments: pd.DataFrame,
    *,
    weights: str,
    allow_random: bool,
    clip_frames: int,
    crop: int,
    crop_scale: list[float],
    normalize: bool,
    train_views: int,
    batch_size: int | str,
    frame_size: tuple[int, int],
    seed: int,
    device: str | torch.device = "auto",
    progress: bool = True,
    decode_workers: int | str = 1,
    precision: str = "fp32",
    weights_url: str = "",
    calibration: pd.DataFrame | None = None,
    state: str | Path | None = None,
) -> tuple[np.ndarray, dict]:
    """float32 features [len(segments), train_views, 512] row-aligned with `segments`, and their provenance.

    `segments` needs video_id, segment, path, clip_start_s, clip_end_s and split. `frame_size` is the
    decoder's output [width, height] (segments.size); crops are cut from it. Rows of segments that fail to
    decode are NaN. The provenance record names the weights (see `build_video_encoder`) and the extraction
    settings; it does not depend on the rows, so every shard of a run gives the same record.

    `decode_workers` threads decode ahead of the model: on a CPU one keeps the model busy (decoding is far
    cheaper there, see README, Speed); on a GPU decoding is the bottleneck, so raise it.
    `auto`: 1 on a CPU, torch's thread count (the job's threads) on a GPU. `batch_size` `auto`: 16 clips on
    a CPU, 64 on a GPU. `precision`: fp32, bf16, fp16, int8 or auto (see `mvcl.features.precision`); the
    provenance record says which ran. `calibration`: the segments an int8 model is calibrated and checked on
    (all segments of the run, so that every shard computes the same features; default `segments`). `auto`
    falls back to fp32 when int8 fails its check; an explicit int8 stops. `state`: a folder where the checked
    int8 model is kept for the run's other jobs (see `_int8_or_fp32`); None calibrates in every call.
    """
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    cuda = device.type == "cuda"
    used_precision = resolve_precision(precision, device)
    decode_workers = decode_workers_for(decode_workers, device, torch.get_num_threads())
    batch_size = batch_size_for(batch_size, device)
    clip_options = {
        "clip_frames": clip_frames,
        "crop": crop,
        "crop_scale": (float(crop_scale[0]), float(crop_scale[1])),
        "views": train_views,
        "frame_size": (int(frame_size[0]), int(frame_size[1])),
    }
    features = np.full((len(segments), train_views, FEATURE_DIM), np.nan, dtype=np.float32)

    def store(targets: list[tuple[int, slice]], output: np.ndarray) -> None:
        for (row, slots), vector in zip(targets, output, strict=True):
            features[row, slots] = vector

    def on_failure(segment, error: Exception) -> None:
        log.warning("%s: segment %s of %s gets NaN features", error, segment.segment, segment.video_id)

    started = time.perf_counter()
    lookahead = max(2 * batch_size, 2 * decode_workers)
    with _decoding_ahead(segments, seed, clip_options, decode_workers, lookahead) as prepared:
        # The first batch decodes while the encoder is built.
        encoder, weights_record = build_video_encoder(
            weights, allow_random=allow_random, seed=seed, normalize=normalize, weights_url=weights_url
        )
        encoder.to(device).compute_in(DTYPES[used_precision])
        fidelity = None
        if used_precision == "int8":
            table = segments if calibration is None else calibration
            encoder, used_precision, fidelity = _int8_or_fp32(
                encoder, table, seed, clip_options, explicit=precision == "int8", state=state,
                weights=weights_record,
            )  # fmt: skip

        def encode(batch: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():
                # from pinned memory on a GPU: the copy overlaps with what is still queued there
                return encoder(batch.to(device, non_blocking=cuda)).cpu().numpy()

        batches = Batches(encode, batch_size, store, pin_memory=cuda)

        def feed(row: int, segment, segment_crops: torch.Tensor) -> None:
            # A training view fills its own slot; the one centre view of val/test fills them all.
            train = segment.split == "train"
            slots = [slice(v, v + 1) for v in range(train_views)] if train else [slice(None)]
            for clip, slot in zip(segment_crops, slots, strict=True):
                batches.add(clip, (row, slot))

        stats = feed_decoded(prepared, feed, on_failure, len(segments), progress)
        batches.flush()
    log.info(
        "video features of %d segments (%d failed) in %.1f s on %s (%s, %d decode workers, batch %d): "
        "model %.1f s, decode+crop %.1f s (background), waiting for decode %.1f s",
        *(len(segments), stats.failed, time.perf_counter() - started, device, used_precision),
        *(decode_workers, batch_size, batches.seconds, stats.decode_s, stats.wait_s),
    )
    settings = {
        "clip_frames": clip_frames,
        "crop": crop,
        "crop_scale": list(crop_scale),
        "normalize": normalize,
        "train_views": train_views,
        "frame_size": list(frame_size),
        "seed": seed,
    }
    record = {**weights_record, "extraction": settings, "precision": used_precision}
    if fidelity is not None:
        record["int8_check"] = fidelity
    return features, {**record, "torchvision": torchvision.__version__}


def calibration_clips(table: pd.DataFrame, seed: int, clip_options: dict, count: int) -> torch.Tensor:
    """uint8 centre clips of `count` segments of `table` drawn with `seed` (segments that fail to decode are
    skipped): the same clips whatever the shard, since they depend only on the table and the seed."""
    order = table.sort_values(["video_id", "segment"]).reset_index(drop=True)
    clips = []
    for row in np.random.default_rng([seed, 8]).permutation(len(order)):
        segment = order.iloc[row]
        try:
            clip = segment_clips(
                segment.path, segment.clip_start_s, segment.clip_end_s,
                train=False, rng=crop_rng(seed, segment.video_id, segment.segment), **clip_options,
            )  # fmt: skip
        except DecodeError as error:  # as extraction itself: a broken file is logged, the next segment taken
            log.warning(
                "int8 calibration skips segment %s of %s: %s", segment.segment, segment.video_id, error
            )
            continue
        clips.append(clip[0])
        if len(clips) == count:
            break
    return torch.stack(clips) if clips else torch.empty(0)


def _int8_or_fp32(
    encoder: VideoEncoder,
    table: pd.DataFrame,
    seed: int,
    clip_options: dict,
    explicit: bool,
    state: str | Path | None = None,
    weights: dict | None = None,
) -> tuple[VideoEncoder, str, dict]:
    """The int8 encoder with its check record, or (when `auto` and the check fails) the float32 one.

    Calibrating and checking cost a job ~20 CPU-s on a 2-core AVX2 machine (decoding 16 clips, observing
    activation ranges, float32 and int8 passes over the check clips): with a `state` folder the first job
    keeps the checked model there (`int8_cache_key` names it) and every other job of the run loads it, the
    same model to the bit. A cached model that failed its check is not used under `auto` either."""
    path = (
        None
        if state is None
        else Path(state) / f"r2plus1d-int8-{int8_cache_key(table, seed, clip_options, weights)}.pt"
    )
    cached = _load_cached_int8(path)
    quantized = copy.deepcopy(encoder)
    if cached is not None:
        record = cached["record"]
        example = torch.zeros(
            (1, 3, clip_options["clip_frames"], clip_options["crop"], clip_options["crop"]), dtype=torch.uint8
        )
        quantized.load_int8(cached["backbone"], example)
        log.info("int8 R(2+1)D: the checked model of %s", path)
    else:
        clips = calibration_clips(table, seed, clip_options, 2 * CALIBRATION_CLIPS)
        half = len(clips) // 2
        cosine = quantized.quantize_int8(clips[:half], clips[half:]) if half else float("nan")
        record = {
            "min_cosine": round(cosine, 6),
            "calibration_clips": half,
            "check_clips": len(clips) - half,
            "engine": int8_engine(),
        }
        if path is not None and half:
            with atomic_path(path) as temporary:  # concurrent first jobs write the same model
                torch.save({"backbone": quantized.backbone.state_dict(), "record": record}, temporary)
    cosine = record["min_cosine"]
    if cosine >= MIN_COSINE:
        log.info(
            "int8 R(2+1)D: smallest cosine with float32 %.5f over %d check clips",
            cosine,
            record["check_clips"],
        )
        return quantized, "int8", record
    problem = (
        f"features.precision: int8 R(2+1)D features keep a cosine of only {cosine:.5f} (< {MIN_COSINE}) with "
        f"float32 on {record['check_clips']} clips of this run"
    )
    if explicit:
        raise ValueError(f"{problem}: set features.precision to fp32 (or auto, which falls back to fp32)")
    log.warning("%s: computing in fp32 instead", problem)
    return encoder, "fp32", record


def int8_cache_key(table: pd.DataFrame, seed: int, clip_options: dict, weights: dict | None) -> str:
    """What a checked int8 model depends on, hashed: the float32 weights (their provenance record), the clips it
    was calibrated and checked on (the calibration table's segments, the size and modification time of each of
    their video files, the seed and the clip settings), the check's clip count, the torch version, the
    CPU capability torch runs at (AVX2, AVX512, ...) and the int8 engine. A changed or replaced video, other
    weights or another machine class all give a new key."""
    order = table.sort_values(["video_id", "segment"])
    columns = order[["video_id", "segment", "path", "clip_start_s", "clip_end_s"]].astype(str)
    facts = {
        "segments": columns.to_numpy().tolist(),
        "files": file_stamps(order["path"].unique(), missing_ok=True),  # a missing video is skipped, as in extraction
        "seed": seed,
        "clips": clip_options,
        "calibration_clips": CALIBRATION_CLIPS,
        "weights": weights,
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "engine": int8_engine(),
    }
    return fingerprint(facts)


def _load_cached_int8(path: Path | None) -> dict | None:
    """The cached {"backbone", "record"} at `path`; None when there is none or it cannot be read (then the
    job calibrates again and replaces it)."""
    if path is None or not path.exists():
        return None
    try:
        with warnings.catch_warnings():  # torch's own TypedStorage notice when it loads quantized tensors
            warnings.simplefilter("ignore", UserWarning)
            cached = torch.load(path, weights_only=True)
    except Exception as error:  # a truncated or foreign file: calibrate again
        log.warning("int8 R(2+1)D: cannot read %s (%s): calibrating again", path, error)
        return None
    return cached if isinstance(cached, dict) and {"backbone", "record"} <= cached.keys() else None


@contextmanager
def _decoding_ahead(
    segments: pd.DataFrame, seed: int, clip_options: dict, workers: int, lookahead: int
) -> Iterator[Iterator[tuple[int, object, Future]]]:
    """An iterator of (row, segment, future of (uint8 clips, seconds)) in row order.

    Decoding starts on entry and stays `lookahead` rows ahead of the consumer, so the next batch decodes
    while the model runs; it holds only the small cropped clips of those rows, never full frames. On exit
    (also after an error) decodes not yet started are dropped.
    """

    def prepare(segment) -> tuple[torch.Tensor, float]:
        started = time.perf_counter()
        rng = crop_rng(seed, segment.video_id, segment.segment)
        clips = segment_clips(
            segment.path, segment.clip_start_s, segment.clip_end_s,
            train=segment.split == "train", rng=rng, **clip_options,
        )  # fmt: skip
        return clips, time.perf_counter() - started

    with ahead(segments, prepare, workers, lookahead, "decode") as in_order:
        yield in_order
