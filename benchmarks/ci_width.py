"""How many test videos does a Table 2 number need? Width of a probe's 95% interval against test-set size.

The demo generator (`mvcl.demo.synthetic.generate_corpus`, with config.yaml's genres, tags and MSD fraction)
makes a large corpus of 1-second videos (their pixels are not used); a video's vector is its audible latents
(tempo, pitch centre, loudness, brightness, key, and its tags' layers; `latents.parquet`) seen through noise
(`--noise`, in units of the latents' spread) and a random linear map, so the probes land at AUCs like the
demo's instead of at 1.0. Genre labels come from the metadata, tags from `msd_tags.csv` (`tag_matrix`), exactly
as the workflow reads them. Each task's probe (the config's probe settings, 2 seeds) trains once on 400 train
and 100 validation videos; the rest form a pool of test videos. Test data never shapes a probe, so a test set of
n videos is a random subset of the pool: for each n and replicate the script bootstraps the interval of the
seed-mean metric (`evaluation.bootstrap` draws) on that subset, as Table 2 does.

    python benchmarks/ci_width.py [--videos 1400] [--noise 1.5] [--replicates 5]
                                  [--out results/benchmarks/ci_width.csv]

A few minutes on 2 cores. Writes one row per task, metric, n and replicate; prints the mean width per n.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mvcl.data.tags import tag_matrix
from mvcl.demo.synthetic import generate_corpus
from mvcl.io import save_csv
from mvcl.probe.intervals import predictions, seed_mean
from mvcl.probe.train import repeat_seeds, run_probe_seeds, summarise_repeats
from mvcl.stats import interval

REPO = Path(__file__).resolve().parents[1]
TRAIN, VAL = 400, 100
SIZES = (10, 17, 30, 60, 120, 240, 480)
LATENTS = ["bpm", "pitch_centre", "loudness_db", "brightness", "key_root"]


def corpus_vectors(config: dict, videos: int, noise: float, seed: int, workdir: Path):
    """(metadata, MSD tags, [videos, 32] vectors) of a generated corpus."""
    demo = config["demo"]
    metadata = generate_corpus(
        workdir,
        videos=videos,
        duration_s=1.0,
        fps=1,
        size=(16, 16),
        genres=demo["genres"],
        tags=demo["tags"],
        msd_fraction=demo["msd_fraction"],
        av_coupling=demo["av_coupling"],
        seed=seed,
    )
    latents = pd.read_parquet(workdir / "latents.parquet")
    sound = latents[latents["stream"] == "sound"]
    traits = sound.groupby("video_id", sort=False)[LATENTS].mean().reindex(metadata["video_id"])
    layers = (
        sound.groupby("video_id", sort=False)["tags"]
        .first()
        .reindex(metadata["video_id"])
        .str.get_dummies("|")
    )
    audible = pd.concat([traits, layers], axis=1).to_numpy(dtype=np.float64)
    audible = (audible - audible.mean(axis=0)) / np.where(audible.std(axis=0) > 0, audible.std(axis=0), 1.0)
    rng = np.random.default_rng(seed)
    seen = audible + rng.normal(scale=noise, size=audible.shape)
    vectors = seen @ rng.normal(size=(seen.shape[1], 32)) / np.sqrt(seen.shape[1])
    tags = pd.read_csv(workdir / "msd_tags.csv", dtype={"msd_id": str})
    return metadata, tags, vectors.astype(np.float32)


def widths(result: dict, task: str, replicates: int, resamples: int, seed: int) -> list[dict]:
    found = predictions(result, task)
    pool = len(found.video_ids)
    rng = np.random.default_rng(seed)
    rows = []
    metrics = ("roc_auc", "f1") + (("pr_auc",) if task == "tagging" else ())
    for n in (size for size in SIZES if size <= pool):
        for replicate in range(replicates):
            subset = rng.choice(pool, size=n, replace=False)
            for metric in metrics:
                on_videos = seed_mean(found, metric, subset)  # replicate 0: a frozen representation's probe
                ci = interval(lambda videos, on=on_videos: on(0, videos), n, resamples, seed + replicate)
                rows.append(
                    {
                        "task": task,
                        "metric": metric,
                        "n_test_videos": n,
                        "replicate": replicate,
                        "value": ci.value,
                        "ci_low": ci.low,
                        "ci_high": ci.high,
                        "width": ci.high - ci.low,
                        "undefined": ci.undefined,
                        "pool_value": result["mean"][metric],
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1400)
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "ci_width.csv"))
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    seed, resamples = config["seed"], config.get("evaluation", {}).get("bootstrap", 1000)
    probe = {**config["probe"], "repeats": 2}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        metadata, tags, vectors = corpus_vectors(config, args.videos, args.noise, seed, Path(workdir))
    ids = metadata["video_id"].to_numpy()
    rows = []
    for task in ("genre", "tagging"):
        if task == "genre":
            keep, y, names = np.ones(len(ids), dtype=bool), metadata["genre"].to_numpy(), None
        else:
            matrix = tag_matrix(metadata, tags, top_k=probe["top_tags"], min_count=probe["min_tag_count"])
            keep, y, names = np.isin(ids, matrix.video_ids), matrix.labels, matrix.tag_names
            order = pd.Series(np.arange(len(matrix.video_ids)), index=matrix.video_ids)
            y = y[order[ids[np.isin(ids, matrix.video_ids)]].to_numpy()]
        n = int(keep.sum())
        split = np.array(["train"] * TRAIN + ["val"] * VAL + ["test"] * (n - TRAIN - VAL))
        seeds = repeat_seeds(probe, seed)
        runs = run_probe_seeds(vectors[keep], y, split, task, probe, seeds, "cpu", names, ids[keep])
        result = summarise_repeats(task, runs)
        rows += widths(result, task, args.replicates, resamples, seed)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_csv(args.out, table)
    summary = table.groupby(["task", "metric", "n_test_videos"])[["value", "width", "undefined"]].mean()
    print(summary.round(3).to_string())
    print(f"{time.perf_counter() - started:.0f} s; written {args.out}")


if __name__ == "__main__":
    main()
