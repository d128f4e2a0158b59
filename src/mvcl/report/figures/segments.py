"""The study's Figure 2: a track split into equal parts, one sampled segment (and its clip) in each."""

from __future__ import annotations

from pathlib import Path

import av
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from mvcl.data.decode import decode_audio, decode_frames

# The waveform only needs to look right, not be analysed: a low rate keeps a whole track small.
_PLOT_RATE = 4000


def plot_segments(segments: pd.DataFrame, video_id: str, duration_s: float, out: str | Path) -> None:
    """Waveform of `video_id` with its parts, segments and clip windows, and a thumbnail of each segment."""
    rows = segments[segments["video_id"] == video_id].sort_values("segment")
    if rows.empty:
        raise ValueError(f"video {video_id} has no segments")
    path = rows["path"].iloc[0]
    count = len(rows)
    waveform = decode_audio(path, 0.0, float(np.floor(duration_s * 10) / 10), _PLOT_RATE)
    times = np.arange(waveform.size) / _PLOT_RATE

    figure = plt.figure(figsize=(max(8, 2 * count), 4.8), constrained_layout=True)
    grid = figure.add_gridspec(2, count, height_ratios=[1.3, 1])
    axis = figure.add_subplot(grid[0, :])
    axis.plot(times, waveform, color="0.35", linewidth=0.4)
    for part in range(1, count):
        axis.axvline(part * duration_s / count, color="black", linestyle="--", linewidth=0.8)
    for row in rows.itertuples():
        axis.axvspan(row.start_s, row.end_s, color="tab:blue", alpha=0.2)
        axis.axvspan(row.clip_start_s, row.clip_end_s, color="tab:orange", alpha=0.35)
        axis.text(
            (row.start_s + row.end_s) / 2, axis.get_ylim()[1] * 0.85, f"s{row.segment + 1}", ha="center"
        )
    axis.set_xlim(0, duration_s)
    axis.set_xlabel("time (s)")
    axis.set_yticks([])
    axis.set_title(
        f"{video_id}: {count} parts (dashed), one segment in each (blue) and its encoder clip (orange)"
    )
    axis.legend(
        handles=[
            Patch(color="tab:blue", alpha=0.2, label="segment"),
            Patch(color="tab:orange", alpha=0.35, label="clip"),
        ],
        loc="lower right",
        fontsize=8,
    )
    for column, row in enumerate(rows.itertuples()):
        middle = (row.clip_start_s + row.clip_end_s) / 2
        frame = decode_frames(path, middle, middle + 0.01, 1, _thumbnail_size(path))[0]
        thumbnail = figure.add_subplot(grid[1, column])
        thumbnail.imshow(frame)
        thumbnail.set_title(f"s{row.segment + 1}: {row.start_s:.1f}-{row.end_s:.1f} s", fontsize=8)
        thumbnail.axis("off")
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _thumbnail_size(path: str) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    scale = 200 / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
