# The study's qualitative analysis (nearest neighbours of seed videos and segments) and embedding diagnostics.

QUALITATIVE_EMBEDDINGS = replicate_path(
    config["qualitative"]["configuration"], "embeddings.npz"
)


# Replicate 0's embeddings of every configuration: what the diagnostics and the similarity histograms read,
# with the names in the same order and the seed of their sampling.
EVERY_CONFIGURATION_EMBEDDINGS = expand(
    replicate_path("{configuration}", "embeddings.npz"),
    configuration=PLAN.configurations,
)
EVERY_CONFIGURATION = {"configurations": PLAN.configurations, "seed": config["seed"]}


# Seeds per level: the study's 25 seed videos and 20 seed segments.
NEIGHBOUR_SEEDS = {
    "videos": config["qualitative"]["seed_videos"],
    "segments": config["qualitative"]["seed_segments"],
}


# Every contact sheet (level x mode) in one job: they read the same embeddings, and one process start-up
# serves all six (README, Speed).
NEIGHBOUR_SHEETS = [
    (level, mode) for level in NEIGHBOUR_LEVELS for mode in NEIGHBOUR_MODES
]


rule figure_neighbours:
    input:
        manifest="results/data/manifest.parquet",
        segments="results/data/segments.parquet",
        embeddings=QUALITATIVE_EMBEDDINGS,
    output:
        figures=[
            reported(
                f"results/figures/neighbours_{level}_{mode}.png",
                f"neighbours_{level}",
                "Qualitative",
                subcategory=f"Neighbours ({level})",
                level=level,
                mode=mode,
                kind="contact sheet",
            )
            for level, mode in NEIGHBOUR_SHEETS
        ],
        tables=[
            reported(
                f"results/qualitative/neighbours_{level}_{mode}.csv",
                "neighbours_table",
                "Qualitative",
                subcategory=f"Neighbours ({level})",
                level=level,
                mode=mode,
                kind="table",
            )
            for level, mode in NEIGHBOUR_SHEETS
        ],
    log:
        log_path("figure_neighbours"),
    # The longest leaf jobs (~30 s and ~12 s wall in the demo) first among the leaves, so that neither runs
    # alone at the end of the run.
    priority: 1
    conda:
        "../envs/mvcl.yaml"
    params:
        sheets=NEIGHBOUR_SHEETS,
        seeds=NEIGHBOUR_SEEDS,
        k=config["qualitative"]["k"],
        configuration=config["qualitative"]["configuration"],
        seed=config["seed"],
    script:
        "../workflow_scripts/figure_neighbours.py"


rule neighbours_html:
    input:
        tables=PLAN.neighbour_tables(),
    output:
        page="results/neighbours.html",
    log:
        log_path("neighbours_html"),
    conda:
        "../envs/mvcl.yaml"
    params:
        configuration=config["qualitative"]["configuration"],
    script:
        "../workflow_scripts/neighbours_html.py"


# Every configuration's diagnostics in one job (each takes ~0.2 s beside the process's start).
rule diagnostics:
    input:
        segments="results/data/segments.parquet",
        embeddings=EVERY_CONFIGURATION_EMBEDDINGS,
    output:
        diagnostics=expand(
            "results/metrics/{configuration}/diagnostics.json",
            configuration=PLAN.configurations,
        ),
    log:
        log_path("diagnostics"),
    conda:
        "../envs/mvcl.yaml"
    resources:
        mem_mb=memory(4000),
    params:
        **EVERY_CONFIGURATION,
    script:
        "../workflow_scripts/diagnostics.py"


rule gather_diagnostics:
    input:
        # The loss floor (written by rule train, rules/train.smk) joins where the workflow has that stage.
        parts=lambda wildcards: PLAN.diagnostics_inputs(workflow.is_rule("train")),
    output:
        table=reported(
            "results/diagnostics.csv",
            "diagnostics_table",
            "Diagnostics",
            what="table, one row per configuration",
        ),
    log:
        log_path("gather_diagnostics"),
    conda:
        "../envs/mvcl.yaml"
    params:
        configurations=PLAN.configurations,
    script:
        "../workflow_scripts/gather_diagnostics.py"


rule figure_diagnostics:
    input:
        table="results/diagnostics.csv",
    output:
        figure=reported(
            "results/figures/diagnostics.png",
            "diagnostics",
            "Diagnostics",
            what="modality gap, alignment and uniformity",
        ),
    log:
        log_path("figure_diagnostics"),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/figure_diagnostics.py"


rule figure_similarities:
    input:
        segments="results/data/segments.parquet",
        embeddings=EVERY_CONFIGURATION_EMBEDDINGS,
    output:
        figure=reported(
            "results/figures/similarities.png",
            "similarities",
            "Diagnostics",
            what="similarity of positive and negative pairs",
        ),
    log:
        log_path("figure_similarities"),
    conda:
        "../envs/mvcl.yaml"
    resources:
        mem_mb=memory(4000),
    params:
        **EVERY_CONFIGURATION,
    script:
        "../workflow_scripts/figure_similarities.py"


# Every configuration's map in one job (as the diagnostics): one process start-up instead of one each.
rule figure_embedding_map:
    input:
        manifest="results/data/manifest.parquet",
        segments="results/data/segments.parquet",
        embeddings=EVERY_CONFIGURATION_EMBEDDINGS,
    output:
        figures=[
            reported(
                f"results/figures/embedding_map_{name}.png",
                "embedding_map",
                "Diagnostics",
                what=f"t-SNE map, configuration {name}",
            )
            for name in PLAN.configurations
        ],
    log:
        log_path("figure_embedding_map"),
    # The longest leaf jobs (~30 s and ~12 s wall in the demo) first among the leaves, so that neither runs
    # alone at the end of the run.
    priority: 1
    conda:
        "../envs/mvcl.yaml"
    resources:
        mem_mb=memory(4000),
    params:
        **EVERY_CONFIGURATION,
        # t-SNE of at most this many test segments (x 2 modalities) stays within minutes on one core.
        max_segments=2000,
    script:
        "../workflow_scripts/figure_embedding_map.py"
