# Input functions over the plan (mvcl.plan: the workflow's vocabulary, paths and targets; torch-free).
import re

import pandas as pd

from mvcl.beyond.recommend import video_key
from mvcl.data.segments import shard_count
from mvcl.plan import (
    CL_REPRESENTATIONS,
    NAME_PATTERN,
    NEIGHBOUR_LEVELS,
    NEIGHBOUR_MODES,
    STUDY_CONFIGURATIONS,
    Plan,
    features_state_root,
    log_path,
    model_path,
    replicate_path,
    results_path,
    train_state_root,
)
from mvcl.data.metadata import metadata_problem
from mvcl.validate import check_config
from snakemake.logging import logger

check_config(config, workflow.configfiles)
if problem := metadata_problem(config):
    raise SystemExit(problem)  # a bad metadata CSV: one line, before any job
PLAN = Plan(config)
try:
    PLAN.check_encoders()  # an unknown encoder, a bad option or a pair of the wrong modality: one line, before any job
except ValueError as error:
    raise SystemExit(str(error))
for name in PLAN.unused_encoders:
    logger.warning(
        f"encoders.{name}: no configuration trains on it, so it is not extracted; name it in "
        "configurations.<name>.encoders"
    )


# The bootstrap behind every interval and test of the tables (evaluation.bootstrap resamples, the run's seed).
BOOTSTRAP = {"resamples": config["evaluation"]["bootstrap"], "seed": config["seed"]}


def reported(path, caption, category, subcategory=None, **labels):
    """`path` in Snakemake's HTML report (`snakemake --report`) under `category`, described by
    report/<caption>.rst; `labels` name it in its category's table."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels=labels or None,
    )


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
            f"results/features/{encoder}/shard_{shard}.{suffix}"
            for shard in shards(wildcards)
        ]

    return files


def extraction_context(wildcards):
    """What an encoder_features job knows beside its encoder's options (mvcl.features.encoders.contract)."""
    return {
        "sample_rate": config["segments"]["sample_rate"],
        "frame_size": list(config["segments"]["size"]),
        "seed": config["seed"],
        "device": config["device"],
        "precision": config["features"]["precision"],
        "state": features_state_root(),
    }


def provenance_files(wildcards):
    """The provenance records of the encoders used: per shard (musicnn's is written by rule provenance)."""
    files = []
    for name in PLAN.used_encoders:
        rule_name = PLAN.encoders[name].rule
        if rule_name == "precomputed_features":
            files.append(f"results/features/{name}.json")
        elif rule_name != "audio_features":
            files += shard_files(name, "json")(wildcards)
    return files


def probe_inputs(wildcards):
    inputs = {
        "segments": "results/data/segments.parquet",
        "manifest": "results/data/manifest.parquet",
    }
    audio, video = PLAN.frozen_rows.get(wildcards.representation, (None, None))
    if audio:
        inputs["audio_features"] = f"results/features/{audio}.npy"
    if video:
        inputs["video_features"] = f"results/features/{video}.npy"
    if wildcards.representation in CL_REPRESENTATIONS:
        configuration = wildcards.get("configuration", config["probe"]["configuration"])
        inputs["embeddings"] = PLAN.replicate_files(configuration, "embeddings.npz")
    if "tagging" in PLAN.probe_tasks:
        inputs["tags"] = "results/data/msd_tags.parquet"
    return inputs


def probe_params(wildcards):
    """params.probe of a probe job: the `probe` section for the job's configuration wildcard."""
    return PLAN.probe_section_for(wildcards.get("configuration"))


def resolved(wildcards):
    return PLAN.resolved(wildcards.configuration)


def features_of(modality):
    """results/features/{encoder}.npy of the `modality` encoder the configuration trains on."""
    return lambda wildcards: PLAN.feature_path(wildcards.configuration, modality)


def train_inputs(wildcards):
    inputs = {
        "audio": PLAN.feature_path(wildcards.configuration, "audio"),
        "video": PLAN.feature_path(wildcards.configuration, "video"),
        "segments": "results/data/segments.parquet",
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
            results_path("new", *parts[:-1], f"{key}{parts[-1]}")
            for key in new_video_keys(wildcards)
        ]

    return files


def new_features(modality):
    """The new videos' feature files of the `modality` encoder the configuration trains on."""

    def files(wildcards):
        name = PLAN.encoder_pair(wildcards.configuration)[modality == "video"]
        return new_files("features", name, ".npy")(wildcards)

    return files
