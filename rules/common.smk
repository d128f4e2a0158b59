# Shared helpers: paths, cross-key config checks, shard lists, resources.
import pandas as pd

from mvcl.segments import shard_count
from mvcl.validate import check_config

check_config(config)

RESULTS = "results"


def res(*parts):
    """A path under the results folder; every output path of the workflow is built here."""
    return "/".join([RESULTS, *map(str, parts)])


def log_path(rule_name, *parts):
    return res("logs", rule_name, *parts) + ".log"


def gpu_resource():
    """Feature and training jobs ask the scheduler for one GPU when resources.gpu is true."""
    return 1 if config["resources"]["gpu"] else 0


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


def final_targets():
    return [
        res("data", "manifest.parquet"),
        res("data", "segments.parquet"),
        res("data", "rejected.csv"),
        res("figures", "segments.png"),
        res("features", "musicnn.npy"),
        res("features", "r2plus1d.npy"),
        res("provenance.json"),
    ]
