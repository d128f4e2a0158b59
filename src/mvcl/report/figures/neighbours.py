"""Contact sheets of nearest neighbours: one row per seed, the seed then its neighbours, each cell a picture.

A video cell is a strip of thumbnails, one at the middle of each of the video's segment clips (what the
encoders saw, spread across the track). A segment cell is a few frames across the segment above a small
log-mel spectrogram of its audio. Cell titles give id, genre and cosine similarity to the seed; a
neighbour's title is green when it shares the seed's genre and red when it does not.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import av
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from PIL import Image

from mvcl.data.decode import decode_audio, decode_frames

THUMB_HEIGHT = 54  # pixels of one thumbnail
STRIP_THUMBS = 6  # most thumbnails in a video strip (the study's 6 segments)
SEGMENT_FRAMES = 4  # frames shown across a segment
SPECTROGRAM_HEIGHT = 44  # pixels of a segment's spectrogram
SPECTROGRAM_RATE = 16000  # Hz, as musicnn hears it
_GAP = 2  # white pixels between thumbnails
_SAME_GENRE, _OTHER_GENRE, _NO_GENRE = "tab:green", "tab:red", "0.2"


def plot_neighbour_sheet(
    table: pd.DataFrame, segments: pd.DataFrame, out: str | Path, *, level: str, title: str
) -> None:
    """Draw a neighbour table (`mvcl.qualitative.neighbours.TABLE_COLUMNS`) of `level` videos or segments as a PNG."""
    seeds = sorted(table["seed"].unique())
    columns = int(table["rank"].max()) + 1
    cells = {(row.seed, row.rank): _cell_image(row, segments, level) for row in table.itertuples()}
    height, width = next(iter(cells.values())).shape[:2]
    column_inches = 3.0
    cell_inches = column_inches * height / width
    title_inches = 0.42  # two lines of cell title
    row_inches = cell_inches + title_inches
    header_inches = 1.1  # figure title and column headers
    total_inches = row_inches * len(seeds) + header_inches
    figure, axes = plt.subplots(
        len(seeds),
        columns,
        figsize=(column_inches * columns, total_inches),
        squeeze=False,
        gridspec_kw={"hspace": title_inches / cell_inches, "wspace": 0.06},
    )
    figure.subplots_adjust(
        top=1 - header_inches / total_inches, bottom=0.05 / total_inches, left=0.01, right=0.99
    )
    for axis in axes.flat:
        axis.axis("off")
    by_cell = table.set_index(["seed", "rank"])
    for row_number, seed in enumerate(seeds):
        seed_genre = by_cell.loc[(seed, 0), "genre"]
        for rank in range(columns):
            if (seed, rank) not in cells:
                continue
            item = by_cell.loc[(seed, rank)]
            axis = axes[row_number, rank]
            axis.imshow(cells[(seed, rank)])
            axis.set_title(
                _cell_title(item, seed, rank, level),
                fontsize=7.5,
                color=_title_colour(item, seed_genre, rank),
            )
    for rank in range(columns):
        axes[0, rank].annotate(
            "seed" if rank == 0 else f"neighbour {rank}",
            xy=(0.5, 1.0),
            xytext=(0, 26),
            xycoords="axes fraction",
            textcoords="offset points",
            ha="center",
            fontsize=10,
            fontweight="bold",
        )
    figure.suptitle(title, fontsize=11, y=1 - 0.1 / total_inches, va="top")
    figure.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(figure)


def _cell_title(item: pd.Series, seed: int, rank: int, level: str) -> str:
    name = f"{item['video_id']}"
    if level == "segments":
        name += f" s{int(item['segment']) + 1} ({item['start_s']:.1f}-{item['end_s']:.1f} s)"
    genre = item["genre"] or "no genre"
    if rank == 0:
        return f"seed {seed}: {name}\n{genre}"
    return f"{name}\n{genre} · cos {item['similarity']:.3f}"


def _title_colour(item: pd.Series, seed_genre: str, rank: int) -> str:
    if rank == 0 or not seed_genre:
        return _NO_GENRE
    return _SAME_GENRE if item["same_genre"] else _OTHER_GENRE


def _cell_image(row: tuple, segments: pd.DataFrame, level: str) -> np.ndarray:
    size = _thumbnail_size(row.path)
    if level == "videos":
        clips = segments[segments["video_id"] == row.video_id].sort_values("segment")
        middles = ((clips["clip_start_s"] + clips["clip_end_s"]) / 2).to_numpy()
        if len(middles) > STRIP_THUMBS:
            middles = middles[np.linspace(0, len(middles) - 1, STRIP_THUMBS).round().astype(int)]
        return _strip([_frame_at(row.path, float(t), size) for t in middles])
    frames = _segment_frames(row.path, row.start_s, row.end_s, size)
    strip = _strip(list(frames))
    spectrogram = spectrogram_image(
        decode_audio(row.path, row.start_s, row.end_s, SPECTROGRAM_RATE),
        SPECTROGRAM_RATE,
        (strip.shape[1], SPECTROGRAM_HEIGHT),
    )
    gap = np.full((_GAP, strip.shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([strip, gap, spectrogram], axis=0)


@cache
def _thumbnail_size(path: str) -> tuple[int, int]:
    """(width, height) of a thumbnail with the video's aspect ratio, even sides (the scaler's yuv420p)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    return max(2, round(THUMB_HEIGHT * width / height / 2) * 2), THUMB_HEIGHT


@cache
def _frame_at(path: str, time_s: float, size: tuple[int, int]) -> np.ndarray:
    return decode_frames(path, time_s, time_s + 0.01, 1, size)[0]


@cache
def _segment_frames(path: str, start_s: float, end_s: float, size: tuple[int, int]) -> np.ndarray:
    # Sample the middles of SEGMENT_FRAMES equal parts, so neither the first nor the last frame sits on a cut.
    offset = (end_s - start_s) / SEGMENT_FRAMES / 2
    return decode_frames(path, start_s + offset, end_s + offset, SEGMENT_FRAMES, size)


def _strip(images: list[np.ndarray]) -> np.ndarray:
    gap = np.full((images[0].shape[0], _GAP, 3), 255, dtype=np.uint8)
    parts = [part for image in images for part in (image, gap)][:-1]
    return np.concatenate(parts, axis=1)


def spectrogram_image(waveform: np.ndarray, sample_rate: int, size: tuple[int, int]) -> np.ndarray:
    """A log-power spectrogram on a mel-spaced frequency axis, as uint8 RGB of `size` (width, height).

    80 dB range, low frequencies at the bottom. It is for the eye only, so a plain numpy STFT: librosa's
    first mel call costs seconds of JIT compilation in every process.
    """
    n_fft, hop, bands = 512, 256, 48
    padded = np.pad(waveform.astype(np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2  # [time, frequency]
    frequencies = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    top_mel = 2595 * np.log10(1 + frequencies[-1] / 700)
    centres = 700 * (10 ** (np.linspace(0, top_mel, bands) / 2595) - 1)  # mel-spaced band centres, Hz
    banded = np.stack([np.interp(centres, frequencies, frame) for frame in power], axis=1)  # [bands, time]
    decibels = 10 * np.log10(np.maximum(banded, 1e-12) / max(float(banded.max()), 1e-12))
    scaled = np.clip((decibels + 80.0) / 80.0, 0.0, 1.0)[::-1]
    rgb = (colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
