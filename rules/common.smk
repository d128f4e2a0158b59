# Shared helpers: paths, cross-key config checks, shard lists, resources.
import copy

import pandas as pd

from mvcl.configuration import resolve_configuration
from mvcl.data.segments import shard_count
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
        res("table1.csv"),
        res("figures", "training.png"),
        res("table2.csv"),
        res("figures", "probes.png"),
    ]


# Tagging needs MSD tags (dataset.msd_tags); without them Table 2 has the genre task only.
# Files of per-configuration columns under results/metrics/{configuration}/ that gather_diagnostics merges
# into results/diagnostics.csv (one row per configuration); a stage with more columns appends its file name.
DIAGNOSTICS_PARTS = ["diagnostics.json"]

PROBE_TASKS = ["genre", "tagging"] if config["dataset"]["msd_tags"] else ["genre"]
# Table 2's rows: frozen features, both concatenated, and the contrastive embeddings of probe.configuration.
PROBE_REPRESENTATIONS = ["musicnn", "r2plus1d", "both", "cl_a", "cl_v", "cl_agg"]


def model_path(configuration, name):
    return res("models", configuration, name)


def probe_inputs(wildcards):
    inputs = {
        "segments": res("data", "segments.parquet"),
        "manifest": res("data", "manifest.parquet"),
    }
    if wildcards.representation in ("musicnn", "both"):
        inputs["audio_features"] = res("features", "musicnn.npy")
    if wildcards.representation in ("r2plus1d", "both"):
        inputs["video_features"] = res("features", "r2plus1d.npy")
    if wildcards.representation.startswith("cl_"):
        configuration = wildcards.get("configuration", config["probe"]["configuration"])
        inputs["embeddings"] = model_path(configuration, "embeddings.npz")
    if wildcards.task == "tagging" and config["dataset"]["msd_tags"]:
        inputs["tags"] = config["dataset"]["msd_tags"]
    return inputs


def probe_settings(wildcards):
    """The `probe` section; the probes of an ablation entry run `ablation.probe_repeats` seeds."""
    if wildcards.get("configuration") in ABLATION_CONFIGURATIONS:
        return {**config["probe"], "repeats": config["ablation"]["probe_repeats"]}
    return config["probe"]


def probe_path(task, representation, configuration):
    """A CL representation's probe result: Table 2's own file for probe.configuration, else `cl_x@name`."""
    if configuration == config["probe"]["configuration"]:
        return res("probes", task, f"{representation}.json")
    return res("probes", task, f"{representation}@{configuration}.json")


def probe_results():
    """Table 2's cells: the study's six rows, then CL rows of each configuration beyond the study's six."""
    extra = [
        probe_path(task, representation, configuration)
        for configuration in TABLE2_CONFIGURATIONS
        for task in PROBE_TASKS
        for representation in TABLE2_EXTRA_REPRESENTATIONS
    ]
    study = expand(
        res("probes", "{task}", "{representation}.json"),
        task=PROBE_TASKS,
        representation=PROBE_REPRESENTATIONS,
    )
    return study + extra


CONFIGURATIONS = list(config["configurations"])
# The six configurations of the study's Table 1, listed first and marked in Table 1 when present.
STUDY_CONFIGURATIONS = ["base", "emb512", "deep4", "single_head", "tau03", "ae_init"]


CL_REPRESENTATIONS = ["cl_a", "cl_v", "cl_agg"]
# Table 2 adds the CL aggregated row of each configuration beyond the study's (issue 9: clip_style, temporal);
# list cl_a and cl_v here too for their audio and video rows (one more probe cell per task and row each).
TABLE2_EXTRA_REPRESENTATIONS = ["cl_agg"]
TABLE2_CONFIGURATIONS = [
    name
    for name in CONFIGURATIONS
    if name not in STUDY_CONFIGURATIONS and name != config["probe"]["configuration"]
]
# Trained like a configuration but not one of them: rules/ablation.smk adds its entries (name -> override).
ABLATION_CONFIGURATIONS = {}


def resolved(configuration):
    """Model/loss/training settings of a configuration or ablation entry (base settings with its overrides)."""
    overrides = {**CONFIGURATION_OVERRIDES, **ABLATION_CONFIGURATIONS}
    return resolve_configuration({**config, "configurations": overrides}, configuration)


def train_inputs(wildcards):
    inputs = {
        "audio": res("features", "musicnn.npy"),
        "video": res("features", "r2plus1d.npy"),
        "segments": res("data", "segments.parquet"),
    }
    if resolved(wildcards.configuration)["model"]["init"] == "autoencoder":
        inputs["autoencoders"] = model_path(wildcards.configuration, "autoencoders.pt")
    return inputs


def sweep_config(coupling):
    """The configuration of one coupling-sweep run: this run's settings on a smaller demo corpus."""
    if not config["demo"]["enabled"]:
        raise ValueError(
            "the coupling sweep re-generates the synthetic demo corpus: it needs demo.enabled: true"
        )
    name = config["sweep"]["configuration"]
    if name not in CONFIGURATION_OVERRIDES:
        raise ValueError(f"sweep.configuration '{name}' is not a key of configurations")
    settings = copy.deepcopy(config)
    settings["demo"].update(av_coupling=coupling, videos=config["sweep"]["videos"])
    settings["configurations"] = {name: CONFIGURATION_OVERRIDES[name]}
    settings["ablation"] = {}  # the sweep stops at retrieval of one configuration
    settings["probe"]["configuration"] = settings["qualitative"]["configuration"] = name
    return settings
