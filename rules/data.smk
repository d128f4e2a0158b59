# The data stage (mvcl.data): the synthetic demo corpus, ingestion of the user's (or the demo's) videos, their
# MSD tags, and segment sampling with the study's Figure 2.
# (The metadata CSV is checked when the workflow starts: metadata_problem in rules/common.smk.)
import os

if config["demo"]["enabled"]:

    rule demo_dataset:
        output:
            metadata=config["dataset"]["metadata_csv"],
            # With msd_tags: null the demo's tags CSV (always written beside the metadata) is unused.
            tags=config["dataset"]["msd_tags"]
            or os.path.join(
                os.path.dirname(config["dataset"]["metadata_csv"]), "msd_tags.csv"
            ),
        log:
            log_path("demo_dataset"),
        conda:
            "../envs/mvcl.yaml"
        threads: 2
        params:
            demo=config["demo"],
            videos_dir=config["dataset"]["videos_dir"],
            seed=config["seed"],
        script:
            "../workflow_scripts/demo_dataset.py"


rule ingest:
    input:
        metadata=config["dataset"]["metadata_csv"],
    output:
        manifest="results/data/manifest.parquet",
        rejected="results/data/rejected.csv",
    log:
        log_path("ingest"),
    conda:
        "../envs/mvcl.yaml"
    params:
        min_duration_s=config["segments"]["count"] * config["segments"]["seconds"],
        split=config["dataset"]["split"],
        missing_values=config["dataset"]["missing_values"],
    script:
        "../workflow_scripts/ingest.py"


# MSD tags of the collection's tracks, read once per run: the probe jobs read this small table instead of
# searching dataset.msd_tags (a full lastfm_tags.db has 8.6M rows) each.


if config["dataset"]["msd_tags"]:

    rule msd_tags:
        input:
            manifest="results/data/manifest.parquet",
            tags=config["dataset"]["msd_tags"],
        output:
            tags="results/data/msd_tags.parquet",
        log:
            log_path("msd_tags"),
        # Table 2's tagging labels: wanted by the first probe, and a priority is not inherited from the jobs
        # that need it (left at 0, this half-second job waited behind training until t = 308 s of 411).
        priority: 10
        conda:
            "../envs/mvcl.yaml"
        resources:
            mem_mb=memory(2000),
            runtime=runtime(30),
        script:
            "../workflow_scripts/msd_tags.py"


# Segment sampling (a checkpoint: the number of feature shards depends on it) and the study's Figure 2.


checkpoint segments:
    input:
        manifest="results/data/manifest.parquet",
    output:
        segments="results/data/segments.parquet",
    log:
        log_path("segments"),
    conda:
        "../envs/mvcl.yaml"
    params:
        segments=config["segments"],
        shard_videos=config["features"]["shard_videos"],
        seed=config["seed"],
    script:
        "../workflow_scripts/segments.py"


rule figure_segments:
    input:
        manifest="results/data/manifest.parquet",
        segments="results/data/segments.parquet",
    output:
        figure=reported("results/figures/segments.png", "segments", "Data"),
    log:
        log_path("figure_segments"),
    conda:
        "../envs/mvcl.yaml"
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/figure_segments.py"
