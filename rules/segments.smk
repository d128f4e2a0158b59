# Segment sampling (a checkpoint: the number of feature shards depends on it) and the study's Figure 2.


checkpoint segments:
    input:
        manifest=res("data", "manifest.parquet"),
    output:
        segments=res("data", "segments.parquet"),
    params:
        segments=config["segments"],
        shard_videos=config["features"]["shard_videos"],
        seed=config["seed"],
    log:
        log_path("segments"),
    script:
        "../workflow_scripts/segments.py"


rule figure_segments:
    input:
        manifest=res("data", "manifest.parquet"),
        segments=res("data", "segments.parquet"),
    output:
        figure=report(res("figures", "segments.png"), caption="../report/segments.rst", category="Data"),
    params:
        seed=config["seed"],
    log:
        log_path("figure_segments"),
    script:
        "../workflow_scripts/figure_segments.py"
