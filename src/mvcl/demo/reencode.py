"""Re-encodes of music videos: the same song and picture in a new file, as a re-upload of a video would be.

A re-encode is a new video whose answer is known: its most similar catalog video is the one it was made
from. The demo's new videos (`dataset.new_videos`) and the cold-start tests are such re-encodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd

from mvcl.demo.synthetic import write_mp4


def reencode(source: str | Path, target: str | Path, *, crf: int = 35, sample_rate: int = 22050) -> None:
    """Decode `source` and write it again as H.264 (quality `crf`) + mono AAC at `sample_rate` Hz."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate)))
        size = (stream.codec_context.width, stream.codec_context.height)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=sample_rate)
    chunks = []
    with av.open(str(source)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(part.to_ndarray()[0] for part in resampler.resample(frame))
        chunks.extend(part.to_ndarray()[0] for part in resampler.resample(None))
    audio = np.concatenate(chunks).astype(np.float32)

    def frames() -> Iterator[np.ndarray]:
        with av.open(str(source)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    write_mp4(Path(target), frames(), audio, fps=fps, size=size, sample_rate=sample_rate, crf=crf)


def reencode_some(metadata: pd.DataFrame, out_dir: str | Path, count: int, seed: int) -> pd.DataFrame:
    """Re-encode `count` videos of `metadata` (from `read_metadata`: absolute paths; drawn at random, seeded)
    into `out_dir`/videos/ and return their metadata CSV rows: id `reupload-<id>`, the original's genre and
    artist, path relative to `out_dir`."""
    rng = np.random.default_rng([seed, 7])
    chosen = metadata.iloc[np.sort(rng.choice(len(metadata), size=min(count, len(metadata)), replace=False))]
    rows = []
    for video in chosen.itertuples():
        path = Path("videos") / f"reupload-{video.video_id}.mp4"
        reencode(video.path, Path(out_dir) / path)
        rows.append(
            {
                "video_id": f"reupload-{video.video_id}",
                "path": path.as_posix(),
                "genre": video.genre,
                "msd_id": "",
                "artist": video.artist,
                "title": f"{video.title} (re-upload of {video.video_id})",
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "path", "genre", "msd_id", "artist", "title"])
