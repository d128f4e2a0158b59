"""Throughput of the weight-free encoders (mir, style): decode alone, embedding alone and the whole extraction.

On a small synthetic corpus with the demo's look (224x128 at 12 fps, 3 s clip windows), with the encoders'
default options: windows/s (mir) and clips/s (style) of `embed` on inputs decoded beforehand, of decoding
alone, and of `extract` end to end (decoding in a background thread). Median of `--repeats` rounds; the
processor is named in the output.

    .venv/bin/python benchmarks/encoders.py [--videos 8] [--repeats 3] [--out results/benchmarks/encoders.csv]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from mvcl.configuration import load_schema
from mvcl.demo.synthetic import corpus_segments
from mvcl.device import cpuinfo
from mvcl.features.encoders.contract import ExtractionContext
from mvcl.features.encoders.registry import load_encoder, resolve_encoders


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/encoders.csv"))
    args = parser.parse_args()
    threadpool_limits(1)  # numpy's BLAS on one thread, as a one-thread feature job runs it
    specs = resolve_encoders({}, load_schema())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        segments = corpus_segments(
            Path(folder), videos=args.videos, segments_per_video=6, fps=12, size=(224, 128)
        )
        context = ExtractionContext(frame_size=(224, 128), device="cpu")
        for name, unit in (("mir", "windows"), ("style", "clips")):
            encoder = load_encoder(specs[name], context)
            inputs = [encoder.decode(segment) for segment in segments.itertuples(index=False)]
            n = len(inputs)
            stages = {
                "decode": lambda encoder=encoder: [
                    encoder.decode(s) for s in segments.itertuples(index=False)
                ],
                "embed": lambda encoder=encoder, inputs=inputs: encoder.embed(inputs),
                "whole": lambda encoder=encoder: encoder.extract(segments),
            }
            for stage, work in stages.items():
                seconds = median_seconds(work, args.repeats)
                rows.append({"encoder": name, "stage": stage, "items": n, "unit": unit, "seconds": round(seconds, 3),
                             "per_s": round(n / seconds, 1), "width": encoder.width})  # fmt: skip
    table = pd.DataFrame(rows).assign(cpu=cpuinfo("model name"))
    print(table.to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
