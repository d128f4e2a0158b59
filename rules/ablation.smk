# One factor at a time away from the study's choices: each entry of config `ablation.entries` is a change of
# `base`, trained, ranked and probed (CL aggregated) by the same rules as a configuration (mvcl.plan.Plan.ablation).


rule ablation_table:
    input:
        retrieval=expand(
            "results/metrics/{name}/retrieval.json", name=PLAN.ablation_rows
        ),
        loss_floor=expand(
            "results/metrics/{name}/loss_floor.json", name=PLAN.ablation_rows
        ),
        probes=PLAN.ablation_probes(),
    output:
        table=reported(
            "results/ablation.csv",
            "ablation",
            "Ablation",
            what="table, one row per changed factor",
        ),
    log:
        log_path("ablation_table"),
    conda:
        "../envs/mvcl.yaml"
    params:
        **BOOTSTRAP,
        names=PLAN.ablation_rows,
        changes=PLAN.ablation_changes,
        tasks=PLAN.probe_tasks,
    script:
        "../workflow_scripts/ablation_table.py"


rule figure_ablation:
    input:
        table="results/ablation.csv",
    output:
        figure=reported(
            "results/figures/ablation.png",
            "ablation",
            "Ablation",
            what="figure: ranks, probe AUCs and loss bounds",
        ),
    log:
        log_path("figure_ablation"),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/figure_ablation.py"
