# One factor at a time away from the study's choices (issue 9): each entry of config `ablation.entries` is an
# override of `base`, trained, ranked and probed (CL aggregated) by the same rules as a configuration.
from mvcl.evaluate.ablation import REFERENCE, ablation_overrides, describe_override

# ABLATION_OVERRIDES is config `ablation.entries` as written, copied in the Snakefile before validation fills
# schema defaults into it (as CONFIGURATION_OVERRIDES); resolved() finds the entries here.
ABLATION_CONFIGURATIONS.update(
    ablation_overrides(CONFIGURATION_OVERRIDES, ABLATION_OVERRIDES)
)
# The loss floor of each configuration (rule loss_floor) joins results/diagnostics.csv (rules/figures.smk).
DIAGNOSTICS_PARTS.append("loss_floor.json")
# Rows of results/ablation.csv: the reference configuration, then every entry in config order.
ABLATION_ROWS = [REFERENCE, *ABLATION_OVERRIDES]
ABLATION_CHANGES = {
    REFERENCE: "the study's choices",
    **{name: describe_override(o) for name, o in ABLATION_OVERRIDES.items()},
}
# What `rule all` asks of this stage: nothing when the config has no ablation.
ABLATION_TARGETS = (
    [res("ablation.csv"), res("figures", "ablation.png")] if ABLATION_OVERRIDES else []
)


rule ablation_table:
    input:
        retrieval=expand(res("metrics", "{name}", "retrieval.json"), name=ABLATION_ROWS),
        loss_floor=expand(
            res("metrics", "{name}", "loss_floor.json"), name=ABLATION_ROWS
        ),
        # Name-major, task-minor: the order workflow_scripts/ablation_table.py reads them in.
        probes=[
            probe_path(task, "cl_agg", name)
            for name in ABLATION_ROWS
            for task in PROBE_TASKS
        ],
    output:
        table=report(
            res("ablation.csv"),
            caption="../report/ablation.rst",
            category="Ablation",
            labels={"what": "table, one row per changed factor"},
        ),
    log:
        log_path("ablation_table"),
    conda:
        "../envs/mvcl.yaml"
    params:
        names=ABLATION_ROWS,
        changes=ABLATION_CHANGES,
        tasks=PROBE_TASKS,
    script:
        "../workflow_scripts/ablation_table.py"


rule figure_ablation:
    input:
        table=res("ablation.csv"),
    output:
        figure=report(
            res("figures", "ablation.png"),
            caption="../report/ablation.rst",
            category="Ablation",
            labels={"what": "figure: ranks, probe AUCs and loss bounds"},
        ),
    log:
        log_path("figure_ablation"),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/ablation_figure.py"
