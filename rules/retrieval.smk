# Table 1: cross-modal retrieval of every configuration's test segments (median rank, recall@k), every
# replicate of a configuration ranked in one job.


rule retrieval:
    input:
        embeddings=PLAN.replicate_files("{configuration}", "embeddings.npz"),
        segments="results/data/segments.parquet",
    output:
        metrics="results/metrics/{configuration}/retrieval.json",
        ranks="results/metrics/{configuration}/ranks.parquet",
    log:
        log_path("retrieval", "{configuration}"),
    # Table 1's inputs before the leaf figures and pages.
    priority: 5
    conda:
        "../envs/mvcl.yaml"
    resources:
        mem_mb=memory(4000),
    params:
        retrieval=config["retrieval"],
        evaluation=config["evaluation"],
        seed=config["seed"],
        replicates=PLAN.replicates,
    script:
        "../workflow_scripts/retrieval.py"


rule table1:
    input:
        metrics=expand(
            "results/metrics/{configuration}/retrieval.json",
            configuration=PLAN.configurations,
        ),
        ranks=expand(
            "results/metrics/{configuration}/ranks.parquet",
            configuration=PLAN.configurations,
        ),
        histories=[
            path
            for name in PLAN.configurations
            for path in PLAN.replicate_files(name, "history.csv")
        ],
        provenance="results/provenance.json",
    output:
        table=reported("results/table1.csv", "table1", "Tables"),
        markdown="results/table1.md",
    log:
        log_path("table1"),
    conda:
        "../envs/mvcl.yaml"
    params:
        configurations=PLAN.configurations,
        encoders={name: PLAN.encoder_pair(name) for name in PLAN.configurations},
        study_configurations=STUDY_CONFIGURATIONS,
        evaluation=config["evaluation"],
        seed=config["seed"],
    script:
        "../workflow_scripts/table1.py"
