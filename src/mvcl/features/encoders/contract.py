"""The encoder contract: a segment's window of audio, or clip of frames, in; one vector out.

After the HEAR 2021 API (`load_model`, then `get_scene_embeddings(audio[n, samples]) -> [n, D]`, with the
sample rate and the embedding size as attributes of the model): an encoder says what input it needs
(`sample_rate`; `frames` and `frame_size`), how wide its output is (`width`) and where its weights came from
(`provenance`), and embeds a batch of inputs. `Encoder.extract` runs it over the rows of segments.parquet:
each row's window is decoded (PyAV, in background threads, `mvcl.features.prefetch.ahead`), `batch_size`
decoded windows go through `embed` together, and a row whose window fails to decode, or that the encoder
cannot embed, becomes a NaN row with a warning naming the file: never a crash of the shard.

The study's encoders (`mvcl.features.encoders.study`) override `extract` with their own batched pipelines,
so their features stay exactly what they were.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mvcl.data.decode import DecodeError, decode_audio, decode_frames
from mvcl.features.encoders.registry import EncoderSpec
from mvcl.features.prefetch import ahead

log = logging.getLogger(__name__)

WINDOWS = {"clip": ("clip_start_s", "clip_end_s"), "segment": ("start_s", "end_s")}


@dataclass(frozen=True)
class ExtractionContext:
    """What a job knows beside the encoder's own options: the run's settings that shape its input."""

    sample_rate: int = 16000  # segments.sample_rate (the study's encoders decode at it)
    frame_size: tuple[int, int] = (768, 432)  # segments.size, [width, height] of decoded frames
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # features.precision (R(2+1)D)
    threads: int = 1  # the job's CPU threads
    calibration: str | None = None  # the catalog's segments.parquet, which an int8 R(2+1)D calibrates on
    state: str | None = None  # a folder the run's feature jobs share (the checked int8 R(2+1)D model)
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_size", tuple(self.frame_size))


class Encoder(ABC):
    """One named encoder of a run (`spec`), ready to extract features of segments."""

    modality: str

    def __init__(self, spec: EncoderSpec, context: ExtractionContext | None = None) -> None:
        self.spec = spec
        self.options = spec.options
        self.context = context or ExtractionContext()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    @abstractmethod
    def width(self) -> int:
        """Length of one segment's vector."""

    def provenance(self) -> dict:
        """What made the features: the encoder's name, kind and options (subclasses add weights, versions)."""
        return {"encoder": self.spec.name, "kind": self.spec.kind, "options": self.spec.options}

    @abstractmethod
    def extract(self, segments: pd.DataFrame) -> tuple[np.ndarray, dict]:
        """float32 features row-aligned with `segments`, and their provenance record."""


class WindowEncoder(Encoder):
    """An encoder whose `embed` maps a batch of decoded windows to [n, width]; `extract` is the common loop."""

    batch_size = 16
    decode_workers = 1
    window = "clip"

    @abstractmethod
    def decode(self, segment) -> np.ndarray:
        """The encoder's input for one segment row (raises DecodeError when the window cannot be read)."""

    @abstractmethod
    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        """float32 [len(inputs), width]; a row the encoder cannot embed is NaN (it says why in a warning)."""

    def bounds(self, segment) -> tuple[float, float]:
        start, end = WINDOWS[self.window]
        return getattr(segment, start), getattr(segment, end)

    def extract(self, segments: pd.DataFrame) -> tuple[np.ndarray, dict]:
        started = time.perf_counter()
        features = np.full((len(segments), self.width), np.nan, dtype=np.float32)
        rows: list[int] = []
        inputs: list[np.ndarray] = []
        failed, model_s = 0, 0.0

        def run() -> None:
            nonlocal model_s
            began = time.perf_counter()
            features[rows] = _checked(self.embed(inputs), len(inputs), self.width, self.name)
            model_s += time.perf_counter() - began
            rows.clear()
            inputs.clear()

        lookahead = max(2 * self.batch_size, 2 * self.decode_workers)
        # numpy's BLAS at the job's threads: a pool per core spins on cores other jobs hold (3-10x slower)
        with (
            threadpool_limits(self.context.threads),
            ahead(segments, self.decode, self.decode_workers, lookahead, f"decode-{self.name}") as decoded,
        ):
            for row, segment, future in decoded:
                try:
                    value = future.result()
                except (DecodeError, OSError) as error:
                    failed += 1
                    reason = str(error) if str(segment.path) in str(error) else f"{segment.path}: {error}"
                    log.warning("segment %s of %s gets NaN %s features: %s",
                                segment.segment, segment.video_id, self.name, reason)  # fmt: skip
                    continue
                rows.append(row)
                inputs.append(value)
                if len(inputs) >= self.batch_size:
                    run()
            if inputs:
                run()
        log.info(
            "%s features (%d-d) of %d segments (%d failed) in %.1f s, of which embedding %.1f s",
            self.name, self.width, len(segments), failed, time.perf_counter() - started, model_s,
        )  # fmt: skip
        return features, self.provenance()


class AudioWindowEncoder(WindowEncoder):
    """Window of audio -> vector: each row's window decoded to mono float32 at `sample_rate`."""

    modality = "audio"

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The rate (Hz) the encoder hears at; windows are decoded (resampled) to it."""

    def decode(self, segment) -> np.ndarray:
        start_s, end_s = self.bounds(segment)
        waveform = decode_audio(segment.path, start_s, end_s, self.sample_rate)
        if len(waveform) == 0:
            raise DecodeError(f"{segment.path}: empty audio window [{start_s}, {end_s})")
        return waveform


class VideoClipEncoder(WindowEncoder):
    """Clip of frames -> vector: `frames` RGB frames [frames, height, width, 3] (uint8) over the clip window."""

    modality = "video"

    @property
    @abstractmethod
    def frames(self) -> int:
        """Frames per clip, at equal spacing over the window."""

    @property
    def frame_size(self) -> tuple[int, int]:
        """[width, height] the frames are decoded to: the run's segments.size unless the encoder says."""
        size = self.options.get("size")
        return tuple(size) if size else tuple(self.context.frame_size)

    def decode(self, segment) -> np.ndarray:
        start_s, end_s = self.bounds(segment)
        return decode_frames(segment.path, start_s, end_s, self.frames, size=self.frame_size)


def _checked(output: np.ndarray, rows: int, width: int, name: str) -> np.ndarray:
    output = np.asarray(output, dtype=np.float32)
    if output.shape != (rows, width):
        raise ValueError(
            f"encoder {name} returned {output.shape} for {rows} inputs; expected ({rows}, {width})"
        )
    return output


def per_input(
    embed_one: Callable[[np.ndarray], np.ndarray], inputs: list[np.ndarray], name: str, width: int
) -> np.ndarray:
    """Embed inputs one by one; an input `embed_one` rejects (ValueError) becomes a NaN row with a warning."""
    rows = []
    for index, item in enumerate(inputs):
        try:
            rows.append(np.asarray(embed_one(item), dtype=np.float32))
        except ValueError as error:
            log.warning("%s cannot embed input %d of its batch, a NaN row: %s", name, index, error)
            rows.append(None)
    return np.stack([row if row is not None else np.full(width, np.nan, np.float32) for row in rows])
