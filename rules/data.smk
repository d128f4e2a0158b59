# The synthetic demo corpus and ingestion of the user's (or the demo's) videos.
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
        benchmark:
            benchmark_path("demo_dataset")
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
    benchmark:
        benchmark_path("ingest")
    conda:
        "../envs/mvcl.yaml"
    params:
        min_duration_s=config["segments"]["count"] * config["segments"]["seconds"],
        split=config["dataset"]["split"],
        missing_values=config["dataset"]["missing_values"],
    script:
        "../workflow_scripts/ingest.py"
