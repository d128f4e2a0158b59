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
  `probe.repeats` seeds (trained together); `details` holds the seconds per seed and per seed-epoch, and the
  seconds of the report's bootstrap on that cell (Table 2's intervals, an RQ1 pair);
- for the rehearsal only (current code): `train_clip_style`, `train_temporal` (an epoch of every segment, and
  of whole videos through the Transformer), `retrieval_job` (one configuration's retrieval job on every
  replicate: ranks, the study's protocol, the permutation null, the intervals, and Table 1's paired
  comparison; each part timed and extrapolated by its own law) and `probe_genre_cl` (a 256-d CL cell).

`--baseline REF` runs every step a second time on the code of git revision REF (its `src/`, exported to the
scratch folder), before the current code, so a row pair gives before and after on one machine in one run
(column `code`). Every row names the processor (`cpu_model`, `cpu_capability`: torch's vector ISA, which
ATEN_CPU_CAPABILITY=avx2 lowers to emulate an AVX2-only machine; `emulation` records every limit set, see
scratch.EMULATION_VARIABLES).

Last, a `rehearsal` row estimates the whole downstream at the study's scale from the current code's figures
(`rehearsal`): what `--configfile configs/study.yaml` runs, i.e. every configuration and ablation entry it
inherits from config.yaml, `training.replicates` each, trained for `--train-epochs` and probed for
`--probe-epochs` (30 and 30: README "Speed" says why), ranked with their permutation nulls, Table 1, Table 2
with every seed of every cell at its input width, RQ1 and the ablation table. `details` holds the assumptions,
hours by group (the study's six configurations, those beyond it, the ablation) and by stage, and the total at
the epoch bounds (`hours_if`). `--rehearse CSV` recomputes only that row from a CSV's measured rows.

Peak memory per step: `peak_rss_mb` is the process's VmHWM (it counts the pages of the memory-mapped
features it touched, which the kernel can drop), `peak_anon_mb` the largest anonymous RSS sampled every 0.2 s
(what the step really holds); snakemake's comes from wait4's ru_maxrss. A step given `--fraction F < 1` runs
on the first F of the videos and its time is extrapolated (column `extrapolation`): linearly, except
retrieval, whose ranking of the whole test set is quadratic in its size (seconds / F², an upper bound: its
pooled part is linear).

    python benchmarks/scale.py [--folder /tmp] [--keep] [--shard-videos 30 500] [--baseline REF]
        [--fraction retrieval=0.5 probe_genre=0.1 ...] [--train-epochs 30] [--probe-epochs 30]
        [--out results/benchmarks/scale.csv] [--rehearse results/benchmarks/scale.csv]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from scratch import clean_up, emulation, write_rows

REPO = Path(__file__).resolve().parents[1]
VIDEOS = 94_000
SEGMENTS_PER_VIDEO = 6
AUDIO_DIM, VIDEO_DIM, EMBEDDING_DIM = 1506, 512, 256
# The targets, measured on the current code and (with --baseline) on the baseline's.
TARGET_STEPS = ("train", "retrieval", "probe_genre", "probe_tagging")
# What the rehearsal also needs, on the current code only: an epoch of each kind of training (one segment per
# video, every segment, whole videos through a Transformer), a whole retrieval job (every replicate ranked,
# the permutation null, the two-level intervals and Table 1's paired comparison) and a probe cell of a CL row
# (256-d), the narrow end of the probe's cost, with its seeds trained together and with one seed (a CL row's
# seed on one training replicate trains alone).
EXTRA_STEPS = ("train_clip_style", "train_temporal", "retrieval_job", "probe_genre_cl", "probe_genre_cl1")
STEPS = (*TARGET_STEPS, *EXTRA_STEPS)
# The configuration each kind of training step runs (config.yaml's).
TRAIN_STEPS = {"train": "base", "train_clip_style": "clip_style", "train_temporal": "temporal"}
STUDY_CONFIG = REPO / "configs" / "study.yaml"
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

# What a step's seconds are: wall time (default), or with --clock cpu the process's CPU time (every thread's),
# which another process's load hardly changes; with --threads 1 that is the cost of a one-thread job.
clock = time.process_time if os.environ.get("SCALE_CLOCK") == "cpu" else time.perf_counter


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


@contextlib.contextmanager
def timing(module, name: str, clock) -> Iterator[list[float]]:
    """[seconds] that `clock` counts inside `module.name` while the block runs (patched, then restored)."""
    spent = [0.0]
    original = getattr(module, name)

    def timed(*args, **kwargs):
        marked = clock()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += clock() - marked

    setattr(module, name, timed)
    try:
        yield spent
    finally:
        setattr(module, name, original)


def run_step(step: str, work: Path, fraction: float) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    torch.set_num_threads(int(os.environ.get("SCALE_THREADS", os.cpu_count() or 1)))
    details_cpu = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    config = study_config()
    audio, video, segments = load_collection(work, fraction)
    details: dict = {
        "segments": len(segments),
        "videos": len(segments) // SEGMENTS_PER_VIDEO,
        # Python, torch and pandas loaded, the segments table read: the floor under every step's peak.
        "rss_before_mb": round(status_kb("VmRSS") / 1024),
        "anon_before_mb": round(status_kb("RssAnon") / 1024),
    }
    with AnonymousPeak() as anonymous:
        started = clock()
        if step in TRAIN_STEPS:
            from mvcl.configuration import resolve_configuration

            settings = resolve_configuration(config, TRAIN_STEPS[step])
            settings["training"]["max_epochs"] = 1
            import mvcl.learn.train as training
            from mvcl.learn.batches import TrainingRun

            # the epoch's passes (training and validation), as `clock` counts them
            with timing(training, "_epoch", clock) as spent:
                run = TrainingRun(audio, video, segments, settings, seed=0, device="cpu", log=lambda _: None)
                result = training.train_heads(run)
            # Wall: the epoch as the history times it; CPU: its training and validation passes.
            epoch = float(result.history["seconds"].iloc[0]) if clock is time.perf_counter else spent[0]
            details["epoch_seconds"] = round(epoch, 1)
        elif step == "retrieval":
            from mvcl.retrieval import median_rank

            embeddings = test_embeddings(segments, 1)[0]
            metrics = median_rank(*embeddings, config["retrieval"]["pool_size"], seed=0)
            details.update(
                test_segments=len(embeddings[0]),
                n_pools=metrics["n_pools"],
                full_pool_size=metrics["full_pool_size"],
            )
        elif step == "retrieval_job":
            details.update(retrieval_job(segments, config, fraction))
        else:
            import mvcl.probe.train as probing
            from mvcl.probe.data import video_representation
            from mvcl.report.rq1 import rq1
            from mvcl.report.table2 import table2

            task = step.removeprefix("probe_").split("_")[0]
            probe = {**config["probe"], "repeats": 1} if step.endswith("_cl1") else config["probe"]
            manifest = pd.read_parquet(work / "results" / "data" / "manifest.parquet")
            tags = pd.read_csv(work / "msd_tags.csv").assign(count=100.0) if task == "tagging" else None
            if "_cl" in step:  # a CL row: the mean of 256-d audio and video embeddings
                rng = np.random.default_rng(1)
                arrays = {
                    f"{modality}_embeddings": rng.standard_normal((len(segments), EMBEDDING_DIM), np.float32)
                    for modality in ("audio", "video")
                }
                representation = video_representation("cl_agg", segments, **arrays)
            else:
                representation = video_representation("musicnn", segments, audio_features=audio)
            # the seeds' training (every epoch), apart from the cell's preparation and scoring
            with timing(probing, "_fit", clock) as fitting:
                result = probing.probe_task(task, representation, manifest, probe, 0, "cpu", tags=tags)
            probe_seconds = clock() - started
            # The report's bootstrap on this cell: Table 2's intervals, and RQ1's paired comparison (the
            # cell against itself: a pair costs what two cells' draws do).
            resamples, seed = config["evaluation"]["bootstrap"], config["seed"]
            marked = clock()
            table2({(task, "musicnn"): result}, resamples, seed)
            table2_seconds = clock() - marked
            marked = clock()
            rq1({(task, "cl"): result, (task, "musicnn"): result}, [(task, "cl", "musicnn")], resamples, seed)
            details.update(
                width=int(representation.X.shape[1]),
                n_labelled=result["n_labelled"],
                seeds=len(result["runs"]),
                epochs=[run["epochs"] for run in result["runs"]],
                probe_seconds=round(probe_seconds, 1),
                # Seeds train together, so training time goes with the seed-epochs they run; the rest (the
                # video-level inputs, labels, scaler, scoring) is the cell's, whatever its seeds and epochs.
                seconds_per_seed_epoch=round(fitting[0] / sum(run["epochs"] for run in result["runs"]), 4),
                cell_seconds=round(probe_seconds - fitting[0], 2),
                table2_cell_seconds=round(table2_seconds, 2),
                rq1_pair_seconds=round(clock() - marked, 2),
                bootstrap=resamples,
            )
        seconds = details.pop("probe_seconds", clock() - started)
        if "seeds" in details:
            details["seconds_per_seed"] = round(seconds / details["seeds"], 1)
    return {
        "seconds": round(seconds, 1),
        **({"seconds_full_size": details["seconds_full_size"]} if "seconds_full_size" in details else {}),
        "peak_rss_mb": round(status_kb("VmHWM") / 1024),
        "peak_anon_mb": round(anonymous.peak_kb / 1024),
        "details": json.dumps(details),
        **details_cpu,
    }


def study_config() -> dict:
    """configs/study.yaml over config.yaml, merged as Snakemake merges `--configfile` (key by key)."""
    import yaml

    from mvcl.configuration import deep_merge, drop_removed

    config = deep_merge(
        yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(STUDY_CONFIG.read_text())
    )
    drop_removed(config)  # as the Snakefile does: study.yaml's null entries are gone
    return config


def test_embeddings(segments, replicates: int) -> list[tuple]:
    """Seeded unit-norm 256-d (audio, video) embeddings of the test segments, one pair per replicate (the
    ranking's cost does not depend on the values)."""
    import numpy as np

    n = int((segments["split"] == "test").sum())
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(replicates):
        pair = []
        for _ in range(2):
            emb = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
            pair.append(emb / np.linalg.norm(emb, axis=1, keepdims=True))
        pairs.append(tuple(pair))
    return pairs


def retrieval_job(segments, config: dict, fraction: float) -> dict:
    """One configuration's retrieval job (`evaluate_retrieval` on the study's replicates, as
    workflow_scripts/retrieval.py calls it) and its share of Table 1 (the paired comparison with `base`), each
    part timed. Extrapolated to full size: the ranks quadratically (the whole-set ranking; an upper bound), the
    pooled parts (study protocol, permutation null) and the bootstraps linearly."""
    import mvcl.retrieval as retrieval
    from mvcl.plan import replicate_seed

    study = study_config()
    replicates = study["training"]["replicates"]
    parts = {"ranks": 0.0, "study_protocol": 0.0, "permutation_null": 0.0, "intervals": 0.0}
    timed = {
        "_replicate_ranks": "ranks",
        "study_median_rank": "study_protocol",
        "pooled_permutation_null": "permutation_null",
        "two_level_interval": "intervals",
    }

    def timer(function, part):
        def wrapped(*args, **kwargs):
            marked = clock()
            try:
                return function(*args, **kwargs)
            finally:
                parts[part] += clock() - marked

        return wrapped

    for name, part in timed.items():
        setattr(retrieval, name, timer(getattr(retrieval, name), part))
    test = segments["split"].to_numpy() == "test"
    settings, evaluation, seed = config["retrieval"], config["evaluation"], config["seed"]
    marked = clock()
    _, ranks = retrieval.evaluate_retrieval(
        test_embeddings(segments, replicates),
        segments["video_id"].to_numpy()[test],
        pool_size=settings["pool_size"],
        seed=seed,
        seeds=[replicate_seed(seed, replicate) for replicate in range(replicates)],
        candidates=settings["candidates"],
        resamples=evaluation["bootstrap"],
        permutations=evaluation["permutations"],
        study_protocol=settings["study_protocol"],
    )
    job = clock() - marked
    marked = clock()
    retrieval.against_reference({"base": ranks, "other": ranks}, "base", evaluation["bootstrap"], seed)
    table1 = clock() - marked
    linear = job - parts["ranks"]
    return {
        "replicates": replicates,
        "test_segments": int(test.sum()),
        "parts_seconds": {part: round(value, 1) for part, value in parts.items()},
        "table1_comparison_seconds": round(table1, 1),
        "job_seconds_full_size": round(parts["ranks"] / fraction**2 + linear / fraction, 1),
        "table1_comparison_seconds_full_size": round(table1 / fraction, 1),
        "seconds_full_size": round(parts["ranks"] / fraction**2 + (linear + table1) / fraction, 1),
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
        "emulation": emulation(),
    }


def training_kind(settings: dict) -> str:
    """The training step whose epoch a configuration's epoch costs: whole videos through a Transformer, every
    segment of every video, or one segment per video (base's)."""
    if (settings["model"].get("temporal") or {}).get("enabled"):
        return "train_temporal"
    return "train_clip_style" if settings["training"]["segments"] == "all" else "train"


def probe_cells(plan, widths: dict[str, int]) -> dict[str, dict]:
    """Every probe cell the study's run trains: Table 2's and the ablation's, each once, as
    {path: {task, width, seeds, together, group}}. A CL row gets `replicate_repeats` seeds on each replicate,
    all of them trained together (workflow_scripts/probe.py, `probe_replicates`), a frozen row `probe.repeats`,
    trained together."""
    from mvcl.plan import CL_REPRESENTATIONS, STUDY_CONFIGURATIONS, parse_probe_key
    from mvcl.probe.replicates import replicate_repeats

    replicates = len(plan.replicates)
    own = plan.config["probe"]["configuration"]
    cells = {}
    for path in dict.fromkeys([*plan.table2_inputs(), *plan.ablation_probes()]):
        task, key = Path(path).parent.name, Path(path).stem
        representation, configuration = parse_probe_key(key)
        if representation in CL_REPRESENTATIONS:
            name = configuration or own
            width = plan.resolved(name)["model"]["embedding_dim"]
            repeats = plan.probe_section_for(configuration or None)["repeats"]
            seeds = together = replicate_repeats(repeats, replicates) * replicates  # `probe_replicates`
        else:  # a frozen row: the study's when it reads probe.configuration's encoders
            audio, video = plan.encoder_pair(own)
            name = own if key in (audio, video, plan.pair_key(audio, video)) else ""
            width = sum(widths[encoder] for encoder in plan.frozen_rows[key] if encoder)
            seeds = together = plan.config["probe"]["repeats"]
        group = "ablation" if name in plan.ablation else "study" if name in STUDY_CONFIGURATIONS else "beyond"
        cells[path] = {"task": task, "width": width, "seeds": seeds, "together": together, "group": group}
    return cells


def rehearsal(
    rows: list[dict],
    train_epochs: int,
    probe_epochs: int,
    config: dict | None = None,
    widths: dict[str, int] | None = None,
    bounds: bool = True,
    cores: int = 1,
) -> dict:
    """The whole downstream at the study's scale from the current code's rows (see the module docstring).

    The plan is configs/study.yaml over config.yaml (what `--configfile configs/study.yaml` runs): every
    configuration and ablation entry it trains, `training.replicates` each. Costs, all from the rows:
    training = replicates x `train_epochs` x the epoch of the configuration's kind (`training_kind`), plus
    `autoencoder_epochs` base epochs once per configuration with model.init autoencoder; retrieval = the
    retrieval job (every replicate, permutation null, intervals, the paired comparison for Table 1) per
    trained name; probes = seeds x `probe_epochs` x the seconds of one seed-epoch at the cell's input width
    (linear in the first layer's multiply-adds between the measured 256-d and 1506-d genre cells; tagging in
    the measured tagging/genre ratio); Table 2's and the ablation table's bootstrap per cell, RQ1's per pair.
    """
    from mvcl.plan import CL_REPRESENTATIONS, STUDY_CONFIGURATIONS, Plan, parse_probe_key

    plan = Plan(config or study_config())
    if widths is None:
        from mvcl.features.encoders.registry import load_encoder

        widths = {name: int(load_encoder(plan.encoders[name]).width) for name in plan.used_encoders}
    after = {row["step"]: row for row in rows if row["code"] == "after"}

    def detail(step: str, key: str) -> float:
        return json.loads(after[step]["details"])[key]

    def group(name: str) -> str:
        return "ablation" if name in plan.ablation else "study" if name in STUDY_CONFIGURATIONS else "beyond"

    replicates = len(plan.replicates)
    epoch = {kind: detail(kind, "epoch_seconds") / after[kind]["fraction"] for kind in TRAIN_STEPS}
    if bounds:  # the same plan at the fewest and the most epochs the stopping rules allow
        training, probe = plan.config["training"], plan.config["probe"]
        fewest = (training["min_epochs"], probe["patience"] + 1)
        most = (training["max_epochs"], probe["max_epochs"])
        hours_if = {
            f"train {t} / probe {p} epochs": round(
                rehearsal(rows, t, p, plan.config, widths, bounds=False, cores=cores)["seconds"] / 3600, 1
            )
            for t, p in (fewest, most)
        }
    costs: dict[tuple[str, str], float] = {}

    def add(group_name: str, stage: str, seconds: float) -> None:
        costs[group_name, stage] = costs.get((group_name, stage), 0.0) + seconds

    # A retrieval job: each replicate's ranks at the `retrieval` step's full-size cost (measured on a large
    # share of the test set: the whole-set ranking is quadratic), the job's other parts (pooled: the study's
    # protocol and the permutation null; the intervals; Table 1's comparison) extrapolated linearly.
    job = json.loads(after["retrieval_job"]["details"])
    linear = (
        sum(v for part, v in job["parts_seconds"].items() if part != "ranks")
        + job["table1_comparison_seconds"]
    )
    retrieval_job = (
        replicates * after["retrieval"]["seconds_full_size"] + linear / after["retrieval_job"]["fraction"]
    )
    kinds = {}
    for name in plan.trained:
        settings = plan.resolved(name)
        kinds[name] = training_kind(settings)
        add(group(name), "train", replicates * train_epochs * epoch[kinds[name]])
        if settings["model"]["init"] == "autoencoder":
            add(group(name), "train", settings["training"]["autoencoder_epochs"] * epoch["train"])
        add(group(name), "retrieval_table1", retrieval_job)

    hidden = plan.config["probe"]["hidden"]

    def first_layers(width: int) -> int:
        return width * hidden[0] + hidden[0] * hidden[1]

    wide, narrow = (
        detail(step, "seconds_per_seed_epoch") / after[step]["fraction"]
        for step in ("probe_genre", "probe_genre_cl")
    )
    wide_width, narrow_width = detail("probe_genre", "width"), detail("probe_genre_cl", "width")
    slope = (wide - narrow) / (first_layers(wide_width) - first_layers(narrow_width))
    tagging_ratio = (
        detail("probe_tagging", "seconds_per_seed_epoch") / after["probe_tagging"]["fraction"] / wide
    )

    # A seed trained alone costs more than one of several trained together (the measured 256-d ratio).
    alone_ratio = (
        detail("probe_genre_cl1", "seconds_per_seed_epoch") / after["probe_genre_cl1"]["fraction"] / narrow
    )

    def seed_epoch(task: str, width: int, together: int = 2) -> float:
        genre = max(narrow + slope * (first_layers(width) - first_layers(narrow_width)), 0.0)
        return genre * (tagging_ratio if task == "tagging" else 1.0) * (alone_ratio if together == 1 else 1.0)

    cells = probe_cells(plan, widths)
    cell_seconds = {
        task: detail(f"probe_{task}", "cell_seconds") / after[f"probe_{task}"]["fraction"]
        for task in plan.probe_tasks
    }
    table2_cells = set(plan.table2_inputs())
    bootstrap = {
        task: {
            "cell": detail(f"probe_{task}", "table2_cell_seconds") / after[f"probe_{task}"]["fraction"],
            "pair": detail(f"probe_{task}", "rq1_pair_seconds") / after[f"probe_{task}"]["fraction"],
        }
        for task in plan.probe_tasks
    }
    for path, cell in cells.items():
        seconds = cell["seeds"] * probe_epochs * seed_epoch(cell["task"], cell["width"], cell["together"])
        # Preparing and scoring: once per replicate probed (a CL row), at the measured cell's cost.
        runs = replicates if parse_probe_key(Path(path).stem)[0] in CL_REPRESENTATIONS else 1
        add(cell["group"], "probes", seconds + runs * cell_seconds[cell["task"]])
        if path in table2_cells:
            add(cell["group"], "table2_rq1", bootstrap[cell["task"]]["cell"])
    for path in plan.ablation_probes():  # results/ablation.csv bootstraps every one of its cells
        add("ablation", "ablation_table", bootstrap[cells[path]["task"]]["cell"])
    for task, key, _ in plan.rq1_pairs():
        configuration = parse_probe_key(key)[1]
        add(
            group(configuration or plan.config["probe"]["configuration"]),
            "table2_rq1",
            bootstrap[task]["pair"],
        )

    # CPU-seconds measured: the run's jobs packed on every core (Snakemake runs one-thread jobs side by side).
    costs = {key: value / cores for key, value in costs.items()}
    total = sum(costs.values())
    groups = sorted({g for g, _ in costs}, key=["study", "beyond", "ablation"].index)
    stages = list(dict.fromkeys(stage for _, stage in costs))
    details = {
        "config": "configs/study.yaml over config.yaml",
        "cores": cores,
        "time": "wall (one job at a time)" if cores == 1 else f"CPU-seconds of the steps / {cores} cores",
        "trained": {kind: [n for n in plan.trained if kinds[n] == kind] for kind in TRAIN_STEPS},
        "replicates": replicates,
        "train_epochs_assumed": train_epochs,
        "probe_epochs_assumed": probe_epochs,
        "epoch_seconds": {kind: round(value, 1) for kind, value in epoch.items()},
        "probe_seed_epoch_seconds": {
            f"{task}@{width}{'' if together > 1 else ' alone'}": round(seed_epoch(task, width, together), 2)
            for task, width, together in sorted(
                {(c["task"], c["width"], c["together"]) for c in cells.values()}
            )
        },
        "probe_cells": len(cells),
        "probe_seeds": sum(cell["seeds"] for cell in cells.values()),
        "hours_by_group": {
            g: round(sum(v for (gg, _), v in costs.items() if gg == g) / 3600, 2) for g in groups
        },
        "hours_by_stage": {
            s: round(sum(v for (_, ss), v in costs.items() if ss == s) / 3600, 2) for s in stages
        },
        "hours": {f"{g}/{s}": round(v / 3600, 2) for (g, s), v in costs.items()},
        "seconds_by_stage": {s: round(sum(v for (_, ss), v in costs.items() if ss == s)) for s in stages},
        "not_counted": "per-job start-up, embedding every video, figures, qualitative tables, RQ2",
    }
    if bounds:
        details["hours_if"] = hours_if
    return {
        "step": "rehearsal",
        "setting": f"study.yaml, {replicates} replicates, {train_epochs} training / {probe_epochs} probe epochs",
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
    parser.add_argument(
        "--train-epochs", type=int, default=30, help="epochs per training run (rehearsal; see README, Speed)"
    )
    parser.add_argument(
        "--probe-epochs", type=int, default=30, help="epochs per probe seed (rehearsal; see README, Speed)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "scale.csv")
    parser.add_argument(
        "--baseline-steps", nargs="+", default=list(TARGET_STEPS), choices=STEPS, help="steps run on REF too"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of every step")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="seconds of wall time, or of the step's CPU time (the rehearsal then divides by --cores)",
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores of the rehearsed machine")
    parser.add_argument(
        "--rehearse",
        type=Path,
        metavar="CSV",
        help="only recompute the rehearsal row from CSV's measured rows",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rehearse:
        import pandas as pd

        measured = [
            row for row in pd.read_csv(args.rehearse).to_dict("records") if row["step"] != "rehearsal"
        ]
        cpu = {key: measured[-1][key] for key in processor() if key in measured[-1]}
        cores = args.cores if measured[-1].get("clock") == "cpu" else 1
        rows = [*measured, {**rehearsal(measured, args.train_epochs, args.probe_epochs, cores=cores), **cpu}]
        print(rows[-1])
        write_rows(args.out, rows)
        return
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
    os.environ.update(SCALE_THREADS=str(args.threads), SCALE_CLOCK=args.clock)  # for the children
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
                "seconds_full_size": result.get("seconds_full_size", round(seconds / fraction**power, 1)),
                "extrapolation": ""
                if fraction == 1
                else "per part"
                if "seconds_full_size" in result
                else "quadratic"
                if power == 2
                else "linear",
                "jobs": result.get("jobs", ""),
                "peak_rss_mb": result["peak_rss_mb"],
                "peak_anon_mb": result.get("peak_anon_mb", ""),
                "details": result["details"],
                "cpu_capability": result.get("cpu_capability", ""),
                "clock": args.clock if step != "dag" else "wall",
                "threads": args.threads if step != "dag" else "",
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
            setting = {
                **TRAIN_STEPS,
                "retrieval": "pool 1000 + whole test set",
                "retrieval_job": "one configuration's replicates, Table 1's comparison",
                "probe_genre_cl": "cl_agg (256-d)",
                "probe_genre_cl1": "cl_agg (256-d), one seed",
            }.get(step, "musicnn")
            for code, src in codes.items() if step in args.baseline_steps else [("after", REPO / "src")]:
                record(
                    step, setting, fraction, child("--child", step, str(work), str(fraction), src=src), code
                )
        if set(STEPS) <= set(args.steps):
            cores = args.cores if args.clock == "cpu" else 1
            rows.append({**rehearsal(rows, args.train_epochs, args.probe_epochs, cores=cores), **cpu})
            print(rows[-1], flush=True)
        write_rows(args.out, rows)  # pandas only now: the parent stays small while it measures
    finally:
        clean_up(work, args.keep)


if __name__ == "__main__":
    main()
