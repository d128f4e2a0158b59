# Input functions over the plan (mvcl.plan: the workflow's vocabulary, paths and targets; torch-free).
import pandas as pd

from mvcl.data.segments import shard_count
from mvcl.plan import (
    CL_REPRESENTATIONS,
    NAME_PATTERN,
    NEIGHBOUR_LEVELS,
    NEIGHBOUR_MODES,
    PROBE_REPRESENTATIONS,
    STUDY_CONFIGURATIONS,
    Plan,
    benchmark_path,
    log_path,
    model_path,
    replicate_path,
    res,
    train_state_root,
)
from mvcl.data.metadata import metadata_problem
from mvcl.validate import check_config

check_config(config, workflow.configfiles)
if problem := metadata_problem(config):
    raise SystemExit(problem)  # a bad metadata CSV: one line, before any job
PLAN = Plan(config)


def gpu_resource():
    """Feature and training jobs ask the scheduler for one GPU when resources.gpu is true."""
    return 1 if config["resources"]["gpu"] else 0


def memory(base_mb):
    """mem_mb that grows with each retry (`retries` in the profiles): a job killed for memory asks for more."""
    return lambda wildcards, attempt: base_mb * attempt


def runtime(base_minutes):
    """runtime (minutes) that grows with each retry: a job that ran past its time gets longer."""
    return lambda wildcards, attempt: base_minutes * attempt


def shards(wildcards):
    """Shard ids; known once the segments checkpoint has run."""
    table = pd.read_parquet(
        checkpoints.segments.get().output.segments, columns=["shard"]
    )
    return range(shard_count(table))


def shard_files(encoder, suffix="npy"):
    def files(wildcards):
        return [
            res("features", encoder, f"shard_{shard}.{suffix}")
            for shard in shards(wildcards)
        ]

    return files


def probe_inputs(wildcards):
    inputs = {
        "segments": res("data", "segments.parquet"),
        "manifest": res("data", "manifest.parquet"),
    }
    if wildcards.representation in ("musicnn", "both"):
        inputs["audio_features"] = res("features", "musicnn.npy")
    if wildcards.representation in ("r2plus1d", "both"):
        inputs["video_features"] = res("features", "r2plus1d.npy")
    if wildcards.representation in CL_REPRESENTATIONS:
        configuration = wildcards.get("configuration", config["probe"]["configuration"])
        inputs["embeddings"] = PLAN.replicate_files(configuration, "embeddings.npz")
    if "tagging" in PLAN.probe_tasks:
        inputs["tags"] = res("data", "msd_tags.parquet")
    return inputs


def probe_settings(wildcards):
    return PLAN.probe_settings(wildcards.get("configuration"))


def resolved(wildcards):
    return PLAN.resolved(wildcards.configuration)


def train_inputs(wildcards):
    inputs = {
        "audio": res("features", "musicnn.npy"),
        "video": res("features", "r2plus1d.npy"),
        "segments": res("data", "segments.parquet"),
    }
    if PLAN.resolved(wildcards.configuration)["model"]["init"] == "autoencoder":
        inputs["autoencoders"] = model_path(wildcards.configuration, "autoencoders.pt")
    return inputs
