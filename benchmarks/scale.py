"""A paper-scale rehearsal without media: 94,000 videos x 6 segments (564,000 segments).

Issue "Real collections at the study's scale".

In a temporary folder it writes a synthetic manifest, the real segments table (`mvcl.data.segments.
build_segments`) and memory-mapped float32 features of the real widths (musicnn 1506, R(2+1)D 1 view x 512;
seeded normal noise, about 4.5 GB, written in chunks), then measures, each step in its own subprocess:

- `dag`: `snakemake -n` of the whole workflow (rule all, configuration of config.yaml with demo.enabled false)
  in a work directory whose results/data/{manifest,segments}.parquet are already there, once per
  `--shard-videos` value: wall time and job count;
- `train`: one epoch of `base` (`mvcl.learn.train.train_heads`, max_epochs 1) on the memory-mapped features;
- `retrieval`: `mvcl.retrieval.median_rank` on the ~56k test segments (256-d embeddings, seeded
  noise: the cost does not depend on the values), in pools of 1000 and over the whole test set;
- `probe_genre`, `probe_tagging`: one Table 2 cell of each probe task on musicnn at video level, with
  `probe.repeats` seeds (trained together); `details` holds the seconds per seed.

`--baseline REF` runs every step a second time on the code of git revision REF (its `src/`, exported to the
scratch folder), before the current code, so a row pair gives before and after on one machine in one run
(column `code`). Every row names the processor (`cpu_model`, `cpu_capability`: torch's vector ISA, which
ATEN_CPU_CAPABILITY=avx2 lowers to emulate an AVX2-only machine, recorded with `cpu_flags`).

Last, a `rehearsal` row estimates the whole downstream at the study's scale from the current code's figures:
every trained configuration (the configurations and the ablation's entries) times `--replicates` trained for
`--train-epochs` epochs and ranked once, plus every probe cell of Table 2, RQ1 and the ablation with its seeds
(at the musicnn cell's cost per seed: the widest input, so an upper bound). The assumptions are in `details`.

Peak memory per step: `peak_rss_mb` is the process's VmHWM (it counts the pages of the memory-mapped
features it touched, which the kernel can drop), `peak_anon_mb` the largest anonymous RSS sampled every 0.2 s
(what the step really holds); snakemake's comes from wait4's ru_maxrss. A step given `--fraction F < 1` runs
on the first F of the videos and its time is extrapolated (column `extrapolation`): linearly, except
retrieval, whose ranking of the whole test set is quadratic in its size (seconds / F², an upper bound: its
pooled part is linear).

    python benchmarks/scale.py [--folder /tmp] [--keep] [--shard-videos 30 500] [--baseline REF]
        [--fraction retrieval=0.5 probe_genre=0.1 ...] [--replicates 3] [--train-epochs 20]
        [--out results/benchmarks/scale.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from scratch import clean_up, write_rows

REPO = Path(__file__).resolve().parents[1]
VIDEOS = 94_000
SEGMENTS_PER_VIDEO = 6
AUDIO_DIM, VIDEO_DIM, EMBEDDING_DIM = 1506, 512, 256
STEPS = ("train", "retrieval", "probe_genre", "probe_tagging")
CHUNK = 32_768


# --- the synthetic collection (run in a subprocess: the parent stays small) -------------------------------


def prepare(work: Path, videos: int, shard_videos: int) -> dict:
    import numpy as np
    import pandas as pd
    import yaml

    from mvcl.data.ingest import assign_split
    from mvcl.data.segments import build_segments
    from mvcl.io import save_parquet

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    rng = np.random.default_rng(0)
    video_ids = [f"v{i:06d}" for i in range(videos)]
    manifest = pd.DataFrame(
        {
            "video_id": video_ids,
            "path": [f"/nonexistent/videos/{video_id}.mp4" for video_id in video_ids],
            "genre": rng.choice([f"genre{g}" for g in range(10)], videos),
            # About 60% of the videos carry an MSD track id.
            "msd_id": np.where(rng.random(videos) < 0.6, [f"TR{i:016d}" for i in range(videos)], ""),
            "artist": "",
            "title": "",
            "duration_s": 240.0,
            "fps": 25.0,
            "width": 768,
            "height": 432,
            "audio_sample_rate": 44100,
            "split": [assign_split(video_id, config["dataset"]["split"]) for video_id in video_ids],
        }
    )
    (work / "results" / "data").mkdir(parents=True, exist_ok=True)
    metadata = work / "metadata.csv"
    manifest[["video_id", "path", "genre", "msd_id"]].to_csv(metadata, index=False)
    linked = manifest["msd_id"][manifest["msd_id"] != ""]
    tag_rows = pd.DataFrame(
        {
            "msd_id": np.repeat(linked.to_numpy(), 5),
            "tag": rng.choice([f"tag{t}" for t in range(50)], 5 * len(linked)),
        }
    ).drop_duplicates()
    tag_rows.to_csv(work / "msd_tags.csv", index=False)
    started = time.perf_counter()
    segments = build_segments(
        manifest,
        count=SEGMENTS_PER_VIDEO,
        seconds=config["segments"]["seconds"],
        clip_seconds=config["segments"]["clip_seconds"],
        shard_videos=shard_videos,
        seed=config["seed"],
    )
    segments_s = time.perf_counter() - started
    save_parquet(work / "results" / "data" / "manifest.parquet", manifest)
    pd.DataFrame(columns=["video_id", "file", "reason"]).to_csv(
        work / "results" / "data" / "rejected.csv", index=False
    )
    save_parquet(work / "results" / "data" / "segments.parquet", segments)

    features = work / "features"
    features.mkdir(exist_ok=True)
    audio = np.lib.format.open_memmap(features / "musicnn.npy", "w+", np.float32, (len(segments), AUDIO_DIM))
    video = np.lib.format.open_memmap(
        features / "r2plus1d.npy", "w+", np.float32, (len(segments), 1, VIDEO_DIM)
    )
    for start in range(0, len(segments), CHUNK):
        stop = min(start + CHUNK, len(segments))
        audio[start:stop] = rng.standard_normal((stop - start, AUDIO_DIM), dtype=np.float32)
        video[start:stop, 0] = rng.standard_normal((stop - start, VIDEO_DIM), dtype=np.float32)
        audio.flush()
        video.flush()
    del audio, video
    return {"segments": len(segments), "build_segments_s": round(segments_s, 1)}


def write_workflow_config(work: Path, shard_videos: int) -> None:
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    config["dataset"].update(
        videos_dir=str(work / "videos"),
        metadata_csv=str(work / "metadata.csv"),
        msd_tags=str(work / "msd_tags.csv"),
        new_videos=None,  # the demo's re-encoded new videos do not exist here
    )
    config["features"]["shard_videos"] = shard_videos
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def reshard(work: Path, shard_videos: int) -> None:
    """segments.parquet as the segments rule writes it for another features.shard_videos."""
    import pandas as pd

    from mvcl.io import save_parquet

    path = work / "results" / "data" / "segments.parquet"
    segments = pd.read_parquet(path)
    codes, _ = pd.factorize(segments["video_id"], sort=True)
    save_parquet(path, segments.assign(shard=(codes // shard_videos).astype("int32")))
    write_workflow_config(work, shard_videos)


# --- the measured steps ---------------------------------------------------------------------------------


class AnonymousPeak:
    """The largest RssAnon of this process, sampled in a thread (VmHWM also counts mapped file pages)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval_s,), daemon=True)

    def __enter__(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, status_kb("RssAnon"))

    def _sample(self, interval_s: float) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, status_kb("RssAnon"))
            self._stop.wait(interval_s)


def status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(f"{field}:")).split()[1])


def load_collection(work: Path, fraction: float):
    import numpy as np
    import pandas as pd

    segments = pd.read_parquet(
        work / "results" / "data" / "segments.parquet", columns=["video_id", "segment", "split"]
    )
    n = int(round(len(segments) * fraction / SEGMENTS_PER_VIDEO)) * SEGMENTS_PER_VIDEO
    audio = np.load(work / "features" / "musicnn.npy", mmap_mode="r")[:n]
    video = np.load(work / "features" / "r2plus1d.npy", mmap_mode="r")[:n]
    return audio, video, segments.iloc[:n].reset_index(drop=True)


def run_step(step: str, work: Path, fraction: float) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    import yaml

    torch.set_num_threads(os.cpu_count() or 1)
    details_cpu = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    audio, video, segments = load_collection(work, fraction)
    details: dict = {
        "segments": len(segments),
        "videos": len(segments) // SEGMENTS_PER_VIDEO,
        # Python, torch and pandas loaded, the segments table read: the floor under every step's peak.
        "rss_before_mb": round(status_kb("VmRSS") / 1024),
        "anon_before_mb": round(status_kb("RssAnon") / 1024),
    }
    with AnonymousPeak() as anonymous:
        started = time.perf_counter()
        if step == "train":
            from mvcl.configuration import resolve_configuration
            from mvcl.learn.train import train_heads

            settings = resolve_configuration(config, "base")
            settings["training"]["max_epochs"] = 1
            result = train_heads(audio, video, segments, settings, seed=0, device="cpu", log=lambda _: None)
            details["epoch_seconds"] = round(float(result.history["seconds"].iloc[0]), 1)
        elif step == "retrieval":
            from mvcl.retrieval import median_rank

            n = int((segments["split"] == "test").sum())
            rng = np.random.default_rng(0)
            embeddings = []
            for _ in range(2):
                emb = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
                embeddings.append(emb / np.linalg.norm(emb, axis=1, keepdims=True))
            metrics = median_rank(*embeddings, config["retrieval"]["pool_size"], seed=0)
            details.update(
                test_segments=n, n_pools=metrics["n_pools"], full_pool_size=metrics["full_pool_size"]
            )
        else:
            from mvcl.probe.data import video_representation
            from mvcl.probe.train import probe_task

            task = step.removeprefix("probe_")
            manifest = pd.read_parquet(work / "results" / "data" / "manifest.parquet")
            tags = pd.read_csv(work / "msd_tags.csv").assign(count=100.0) if task == "tagging" else None
            representation = video_representation("musicnn", segments, audio_features=audio)
            result = probe_task(task, representation, manifest, config["probe"], 0, "cpu", tags=tags)
            details.update(
                n_labelled=result["n_labelled"],
                seeds=len(result["runs"]),
                epochs=[run["epochs"] for run in result["runs"]],
            )
        seconds = time.perf_counter() - started
        if "seeds" in details:
            details["seconds_per_seed"] = round(seconds / details["seeds"], 1)
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(status_kb("VmHWM") / 1024),
        "peak_anon_mb": round(anonymous.peak_kb / 1024),
        "details": json.dumps(details),
        **details_cpu,
    }


# --- orchestration (stdlib only, so that the parent's memory does not count in its children's) -------------


def child(*args: str, src: Path = REPO / "src") -> dict:
    # The schema of this checkout, also for an exported baseline's code (which has no schemas/ above it).
    environment = {
        **os.environ,
        "PYTHONPATH": str(src),
        "MVCL_SCHEMA": str(REPO / "schemas" / "config.schema.yaml"),
    }
    command = [sys.executable, __file__, *args]
    output = subprocess.run(command, capture_output=True, text=True, env=environment)
    if output.returncode:
        raise RuntimeError(f"{' '.join(args)} with {src} failed:\n{output.stderr[-4000:]}")
    return json.loads(output.stdout.splitlines()[-1])


def dry_run(work: Path) -> dict:
    """`snakemake -n` of rule all: wall time, job count, and snakemake's peak RSS (wait4's ru_maxrss)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
        "--cores", "2", "-n", "--rerun-triggers", "mtime",
    ]  # fmt: skip
    log = work / "dry_run.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"snakemake -n failed:\n{text[-4000:]}")
    total = re.search(r"^total\s+(\d+)", text, re.MULTILINE)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", text.split("Job stats:")[1], re.MULTILINE))
    return {
        "seconds": round(seconds, 1),
        "jobs": int(total.group(1)),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "details": json.dumps({rule: int(n) for rule, n in counts.items() if rule != "total"}),
    }


def export_source(revision: str, folder: Path) -> Path:
    """`src/` of git revision `revision`, written under `folder` (the "before" code of a comparison)."""
    archive = folder / "baseline.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", revision, "src"], check=True, stdout=out)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "baseline", filter="data")
    return folder / "baseline" / "src"


def processor() -> dict:
    """The processor's vendor, model and vector flags (/proc/cpuinfo): speed choices depend on them."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as lines:
            for line in lines:
                name, _, value = (part.strip() for part in line.partition(":"))
                fields.setdefault(name, value)
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    flags = set(fields.get("flags", "").split())
    return {
        "cpu_vendor": fields.get("vendor_id", ""),
        "cpu_model": fields.get("model name", ""),
        "cpu_flags": " ".join(flag for flag in wanted if flag in flags),
        "cores": os.cpu_count(),
        "emulation": " ".join(
            f"{key}={os.environ[key]}"
            for key in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
            if key in os.environ
        ),
    }


def rehearsal(rows: list[dict], replicates: int, train_epochs: int) -> dict:
    """The whole downstream at the study's scale from the current code's rows (see the module docstring)."""
    import yaml

    sys.path.insert(0, str(REPO / "src"))
    from mvcl.plan import Plan

    plan = Plan(yaml.safe_load((REPO / "config.yaml").read_text()))
    after = {row["step"]: row for row in rows if row["code"] == "after"}
    trained = len(plan.trained) * replicates
    cells = {
        "table2_rq1": (set(plan.table2_inputs()) | set(plan.rq1_inputs()), plan.config["probe"]["repeats"]),
        "ablation": (
            set(plan.ablation_probes()) - set(plan.table2_inputs()),
            plan.config["ablation"]["probe_repeats"],
        ),
    }
    seconds = {
        "train": trained
        * train_epochs
        * json.loads(after["train"]["details"])["epoch_seconds"]
        / after["train"]["fraction"],
        "retrieval": trained * after["retrieval"]["seconds_full_size"],
    }
    per_seed = {
        task: after[f"probe_{task}"]["seconds_full_size"]
        / json.loads(after[f"probe_{task}"]["details"])["seeds"]
        for task in ("genre", "tagging")
    }
    for name, (paths, seeds) in cells.items():
        seconds[name] = sum(per_seed[Path(path).parent.name] * seeds for path in paths)
    details = {
        "trained_configurations": len(plan.trained),
        "replicates": replicates,
        "train_epochs_assumed": train_epochs,
        "probe_cells": {name: len(paths) for name, (paths, _) in cells.items()},
        "hours": {name: round(value / 3600, 2) for name, value in seconds.items()},
        "not_counted": "bootstrap intervals of Table 1/2 and RQ1, embedding, job start-up",
    }
    total = sum(seconds.values())
    return {
        "step": "rehearsal",
        "setting": "estimate from the rows above",
        "code": "after",
        "fraction": 1.0,
        "seconds": round(total),
        "seconds_full_size": round(total),
        "extrapolation": "sum",
        "details": json.dumps(details),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--keep", action="store_true", help="keep the synthetic collection (default: deleted)"
    )
    parser.add_argument("--videos", type=int, default=VIDEOS)
    parser.add_argument("--shard-videos", type=int, nargs="+", default=[30, 500])
    parser.add_argument("--steps", nargs="+", default=["dag", *STEPS], choices=["dag", *STEPS])
    parser.add_argument("--fraction", nargs="*", default=[], metavar="STEP=F", help="run STEP on a fraction")
    parser.add_argument("--baseline", metavar="REF", help="also run every step on git revision REF's code")
    parser.add_argument("--replicates", type=int, default=3, help="replicates per configuration (rehearsal)")
    parser.add_argument("--train-epochs", type=int, default=20, help="epochs per training run (rehearsal)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "scale.csv")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, work, value = args.child[0], Path(args.child[1]), args.child[2]
        if kind == "prepare":
            result = prepare(work, args.videos, int(value))
        elif kind == "reshard":
            reshard(work, int(value))
            result = {}
        else:
            result = run_step(kind, work, float(value))
        print(json.dumps(result))
        return

    fractions = {step: float(f) for step, f in (item.split("=") for item in args.fraction)}
    work = Path(tempfile.mkdtemp(prefix="mvcl-scale-", dir=args.folder))
    rows = []

    cpu = processor()

    def record(step: str, setting: str, fraction: float, result: dict, code: str = "after") -> None:
        seconds, power = result["seconds"], 2 if step == "retrieval" else 1
        rows.append(
            {
                "step": step,
                "setting": setting,
                "code": code,
                "fraction": fraction,
                "seconds": seconds,
                "seconds_full_size": round(seconds / fraction**power, 1),
                "extrapolation": "" if fraction == 1 else "quadratic" if power == 2 else "linear",
                "jobs": result.get("jobs", ""),
                "peak_rss_mb": result["peak_rss_mb"],
                "peak_anon_mb": result.get("peak_anon_mb", ""),
                "details": result["details"],
                "cpu_capability": result.get("cpu_capability", ""),
                **cpu,
            }
        )
        print(rows[-1], flush=True)

    try:
        started = time.perf_counter()
        prepared = child(
            "--videos", str(args.videos), "--child", "prepare", str(work), str(args.shard_videos[0])
        )
        prepared["seconds"] = round(time.perf_counter() - started, 1)
        size = sum(path.stat().st_size for path in (work / "features").iterdir())
        print(f"prepared {prepared} in {work}, features {size / 1e9:.2f} GB", flush=True)
        if "dag" in args.steps:
            for shard_videos in args.shard_videos:
                child("--child", "reshard", str(work), str(shard_videos))
                record("dag", f"shard_videos={shard_videos}", 1.0, dry_run(work))
        codes = {"after": REPO / "src"}
        if args.baseline:
            codes = {f"before ({args.baseline})": export_source(args.baseline, work), **codes}
        for step in (step for step in STEPS if step in args.steps):
            fraction = fractions.get(step, 1.0)
            setting = {"train": "base", "retrieval": "pool 1000 + whole test set"}.get(step, "musicnn")
            for code, src in codes.items():
                record(
                    step, setting, fraction, child("--child", step, str(work), str(fraction), src=src), code
                )
        if set(STEPS) <= set(args.steps):
            rows.append({**rehearsal(rows, args.replicates, args.train_epochs), **cpu})
            print(rows[-1], flush=True)
        write_rows(args.out, rows)  # pandas only now: the parent stays small while it measures
    finally:
        clean_up(work, args.keep)


if __name__ == "__main__":
    main()
