# Beyond the study: the audio, video and aggregated embedding of every video (results/embeddings/).


rule embeddings:
    input:
        embeddings=replicate_path("{configuration}", "embeddings.npz"),
        segments="results/data/segments.parquet",
    output:
        videos="results/embeddings/{configuration}.parquet",
        segments="results/embeddings/{configuration}_segments.parquet",
    log:
        log_path("embeddings", "{configuration}"),
    benchmark:
        benchmark_path("embeddings", "{configuration}")
    wildcard_constraints:
        configuration="|".join(PLAN.trained),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/embeddings.py"
