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
        benchmark:
            benchmark_path("msd_tags")
        conda:
            "../envs/mvcl.yaml"
        resources:
            mem_mb=memory(2000),
            runtime=runtime(30),
        script:
            "../workflow_scripts/msd_tags.py"
