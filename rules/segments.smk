# Segment sampling (a checkpoint: the number of feature shards depends on it) and the study's Figure 2.


checkpoint segments:
    input:
        manifest="results/data/manifest.parquet",
    output:
        segments="results/data/segments.parquet",
    log:
        log_path("segments"),
    benchmark:
        benchmark_path("segments")
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
    benchmark:
        benchmark_path("figure_segments")
    conda:
        "../envs/mvcl.yaml"
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/figure_segments.py"
