# Beyond the study: RQ2 measured with people (the judge page, its judgements scored per representation).


RQ2_INPUTS = {
    "segments": "results/data/segments.parquet",
    "manifest": "results/data/manifest.parquet",
    "audio": "results/features/musicnn.npy",
    "video": "results/features/r2plus1d.npy",
    "embeddings": [
        f"results/embeddings/{name}.parquet" for name in PLAN.rq2["configurations"]
    ],
}
RQ2_PARAMS = {"rq2": PLAN.rq2, "seed": config["seed"]}


rule judge:
    input:
        **RQ2_INPUTS,
    output:
        page="results/judge.html",
        triplets="results/rq2/triplets.csv",
    log:
        log_path("judge"),
    conda:
        "../envs/mvcl.yaml"
    params:
        **RQ2_PARAMS,
    script:
        "../workflow_scripts/judge.py"


if config["demo"]["enabled"]:

    # The demo's simulated annotators; latents.parquet is written by demo_dataset beside its metadata.
    rule simulate_judgements:
        input:
            triplets="results/rq2/triplets.csv",
            metadata=config["dataset"]["metadata_csv"],
        output:
            judgements=PLAN.demo_file("judgements.csv"),
        log:
            log_path("simulate_judgements"),
        conda:
            "../envs/mvcl.yaml"
        params:
            latents=PLAN.demo_file("latents.parquet"),
            noise=PLAN.rq2["simulated_noise"],
            seed=config["seed"],
        script:
            "../workflow_scripts/simulate_judgements.py"


rule rq2:
    input:
        **RQ2_INPUTS,
        judgements=PLAN.rq2_judgements,
    output:
        table=reported("results/rq2.csv", "rq2", "Tables"),
        markdown="results/rq2.md",
        annotators="results/rq2_annotators.csv",
    log:
        log_path("rq2"),
    conda:
        "../envs/mvcl.yaml"
    params:
        **RQ2_PARAMS,
    script:
        "../workflow_scripts/rq2.py"
