# Downstream probes (Table 2): genre classification and MSD-overlap tagging on six representations.
# One job per representation runs every task and seed (its results stay one file per task and
# representation): the inputs are read once and torch starts once, not once per cell.


# 8 GB: at the study's size (94k videos) preparing a probe's video-level inputs peaks near 4 GB
# (benchmarks/scale.py); retries double it.
rule probe:
    input:
        unpack(probe_inputs),
    output:
        results=PLAN.probe_files("{representation}"),
    log:
        log_path("probe", "{representation}"),
    wildcard_constraints:
        representation="|".join(map(re.escape, PLAN.probe_representations)),
    # Table 2's inputs before the leaf figures and pages.
    priority: 5
    conda:
        "../envs/mvcl.yaml"
    threads: 1
    resources:
        mem_mb=memory(8000),
        runtime=runtime(60 * len(PLAN.probe_tasks)),
    params:
        role=lambda wildcards: PLAN.probe_role(wildcards.representation),
        tasks=PLAN.probe_tasks,
        probe=config["probe"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/probe.py"


# The same probe on the CL representations of any other configuration or ablation entry (`cl_agg@clip_style`):
# Table 2's rows beyond the study, and the probe AUCs of results/ablation.csv.
use rule probe as probe_configuration with:
    output:
        results=PLAN.probe_files("{representation}@{configuration}"),
    log:
        log_path("probe", "{representation}@{configuration}"),
    wildcard_constraints:
        representation="|".join(CL_REPRESENTATIONS),
        configuration=NAME_PATTERN,
    params:
        role=lambda wildcards: wildcards.representation,
        probe=probe_params,


rule table2:
    input:
        results=PLAN.table2_inputs(),
        provenance="results/provenance.json",
    output:
        table=reported("results/table2.csv", "table2", "Tables"),
        markdown="results/table2.md",
    log:
        log_path("table2"),
    conda:
        "../envs/mvcl.yaml"
    params:
        **BOOTSTRAP,
        configuration=config["probe"]["configuration"],
    script:
        "../workflow_scripts/table2.py"


# RQ1: each CL representation against its frozen counterpart, a paired bootstrap over the same test videos.
rule rq1:
    input:
        results=PLAN.rq1_inputs(),
        retrieval=[
            f"results/metrics/{name}/retrieval.json"
            for name in PLAN.rq1_configurations
        ],
        provenance="results/provenance.json",
    output:
        table=reported("results/rq1.csv", "rq1", "Tables"),
        markdown="results/rq1.md",
    log:
        log_path("rq1"),
    conda:
        "../envs/mvcl.yaml"
    params:
        **BOOTSTRAP,
        pairs=PLAN.rq1_pairs(),
        configurations=PLAN.rq1_configurations,
    script:
        "../workflow_scripts/rq1.py"


rule figure_probes:
    input:
        table="results/table2.csv",
        rq1="results/rq1.csv",
    output:
        figure=reported("results/figures/probes.png", "probes", "Probes"),
    log:
        log_path("figure_probes"),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/figure_probes.py"
