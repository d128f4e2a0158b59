# The coupling sweep: the pipeline up to retrieval on the sweep's demo corpus per demo.av_coupling value,
# every configuration of sweep.configurations trained in one nested run per coupling.
# A sweep job runs its nested workflow on up to 8 cores (Snakemake lowers that to --cores locally).


rule sweep_run:
    output:
        retrieval=[
            PLAN.sweep_retrieval("{coupling}", name)
            for name in PLAN.sweep_configurations
        ],
    log:
        log_path("sweep_run", "coupling_{coupling}"),
    conda:
        "../envs/mvcl.yaml"
    threads: 8
    resources:
        mem_mb=memory(8000),
        runtime=runtime(600),
    params:
        config=lambda wildcards: PLAN.sweep_config(float(wildcards.coupling)),
        configurations=PLAN.sweep_configurations,
        workdir=lambda wildcards: f"results/sweep/coupling_{wildcards.coupling}/run",
        snakefile=workflow.main_snakefile,
    script:
        "../workflow_scripts/sweep_run.py"


rule figure_coupling:
    input:
        retrieval=[
            PLAN.sweep_retrieval(coupling, name)
            for name in PLAN.sweep_configurations
            for coupling in config["sweep"]["couplings"]
        ],
    output:
        figure=reported(
            "results/figures/coupling.png",
            "coupling",
            "Diagnostics",
            what="median rank against audio-video coupling",
        ),
        table=reported(
            "results/sweep/coupling.csv",
            "coupling",
            "Diagnostics",
            what="coupling sweep table",
        ),
    log:
        log_path("figure_coupling"),
    conda:
        "../envs/mvcl.yaml"
    params:
        sweep_keys=[
            (name, coupling)
            for name in PLAN.sweep_configurations
            for coupling in config["sweep"]["couplings"]
        ],
        demo_coupling=config["demo"]["av_coupling"],
    script:
        "../workflow_scripts/figure_coupling.py"
