# Input functions over the plan (mvcl.plan: the workflow's vocabulary, paths and targets; torch-free).
import pandas as pd

from mvcl.beyond.recommend import video_key
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


def probe_params(wildcards):
    """params.probe of a probe job: the `probe` section for the job's configuration wildcard."""
    return PLAN.probe_section_for(wildcards.get("configuration"))


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


# New videos (rules/cold_start.smk): the accepted ones, known once checkpoint segments_new has run.
def new_video_keys(wildcards):
    table = pd.read_parquet(
        checkpoints.segments_new.get().output.segments, columns=["video_id"]
    )
    return [video_key(video_id) for video_id in table["video_id"].unique()]


def new_video_rows(wildcards):
    """The segment rows of one new video: a change of them (and only that) redoes its features."""
    table = pd.read_parquet(checkpoints.segments_new.get().output.segments)
    rows = table[table["video_id"].map(video_key) == wildcards.key]
    return rows.drop(columns="shard").to_dict("records")


def new_files(*parts):
    def files(wildcards):
        return [
            res("new", *parts[:-1], f"{key}{parts[-1]}")
            for key in new_video_keys(wildcards)
        ]

    return files
