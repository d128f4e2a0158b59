# Cross-modal retrieval and loss bounds per configuration, Table 1, and the training curves.


rule retrieval:
    input:
        embeddings=model_path("{configuration}", "embeddings.npz"),
        segments=res("data", "segments.parquet"),
    output:
        metrics=res("metrics", "{configuration}", "retrieval.json"),
        ranks=res("metrics", "{configuration}", "ranks.parquet"),
    log:
        log_path("retrieval", "{configuration}"),
    benchmark:
        benchmark_path("retrieval", "{configuration}")
    conda:
        "../envs/mvcl.yaml"
    resources:
        mem_mb=memory(4000),
    params:
        retrieval=config["retrieval"],
        evaluation=config["evaluation"],
        seed=config["seed"],
    script:
        "../workflow_scripts/retrieval.py"


# Best validation loss against the chance loss and the floor the head's output space allows.
rule loss_floor:
    input:
        history=model_path("{configuration}", "history.csv"),
    output:
        record=res("metrics", "{configuration}", "loss_floor.json"),
    log:
        log_path("loss_floor", "{configuration}"),
    benchmark:
        benchmark_path("loss_floor", "{configuration}")
    conda:
        "../envs/mvcl.yaml"
    params:
        settings=resolved,
        segments_per_video=config["segments"]["count"],
    script:
        "../workflow_scripts/loss_floor.py"


rule table1:
    input:
        metrics=expand(
            res("metrics", "{configuration}", "retrieval.json"),
            configuration=PLAN.configurations,
        ),
        ranks=expand(
            res("metrics", "{configuration}", "ranks.parquet"),
            configuration=PLAN.configurations,
        ),
        provenance=res("provenance.json"),
    output:
        table=report(
            res("table1.csv"), caption="../report/table1.rst", category="Tables"
        ),
        markdown=res("table1.md"),
    log:
        log_path("table1"),
    benchmark:
        benchmark_path("table1")
    conda:
        "../envs/mvcl.yaml"
    params:
        configurations=PLAN.configurations,
        study_configurations=STUDY_CONFIGURATIONS,
        evaluation=config["evaluation"],
        seed=config["seed"],
    script:
        "../workflow_scripts/table1.py"


rule figure_training:
    input:
        histories=expand(
            model_path("{configuration}", "history.csv"),
            configuration=PLAN.configurations,
        ),
    output:
        figure=report(
            res("figures", "training.png"),
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        log_path("figure_training"),
    benchmark:
        benchmark_path("figure_training")
    conda:
        "../envs/mvcl.yaml"
    params:
        configurations=PLAN.configurations,
    script:
        "../workflow_scripts/figure_training.py"
