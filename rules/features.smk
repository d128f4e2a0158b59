# Frozen encoders (mvcl.features.encoders): every encoder a configuration trains on is extracted once to
# results/features/{encoder}.npy, sharded over videos and gathered. The study's two keep their own rules
# (audio_features: musicnn, video_features: R(2+1)D-18, as the study's results name them); every other kind
# runs encoder_features, and precomputed features are checked and copied by precomputed_features.


# One shard job per kind of encoder rule (mvcl.features.encoders.registry: each kind names its rule), the
# same body for all: the encoder contract's extract. Only memory and run time differ.
# The catalog's features gate every training job: before everything that can wait (README, Speed). Its R(2+1)D
# shards, the longest jobs, go first of all (11), so that the two cores run them side by side: at an equal
# priority the second shard started after the shorter feature jobs and ran alone at the end, with the other
# core idle (13 s of a 386 s demo run).
for shard_rule, mem_mb, minutes, shard_priority in (
    ("audio_features", 4000, 120, 10),
    ("video_features", 6000, 240, 11),
    ("encoder_features", 4000, 240, 10),
):

    rule:
        name:
            shard_rule
        input:
            segments="results/data/segments.parquet",
        output:
            features="results/features/{encoder}/shard_{shard}.npy",
            provenance="results/features/{encoder}/shard_{shard}.json",
        log:
            log_path(shard_rule, "{encoder}", "shard_{shard}"),
        wildcard_constraints:
            encoder=PLAN.encoder_pattern(shard_rule),
        priority: shard_priority
        conda:
            "../envs/mvcl.yaml"
        threads: config["features"]["threads"]
        resources:
            mem_mb=memory(mem_mb),
            runtime=runtime(minutes),
            gpu=gpu_resource(),
        params:
            shard=lambda wildcards: int(wildcards.shard),
            encoder=lambda wildcards: PLAN.encoders[wildcards.encoder].record(),
            context=extraction_context,
        script:
            "../workflow_scripts/encoder_features.py"


rule gather_features:
    input:
        segments="results/data/segments.parquet",
        shards=lambda wildcards: shard_files(wildcards.encoder)(wildcards),
    output:
        features="results/features/{encoder}.npy",
    log:
        log_path("gather_features", "{encoder}"),
    wildcard_constraints:
        encoder="|".join(
            PLAN.encoder_pattern(rule)
            for rule in ("audio_features", "video_features", "encoder_features")
        ),
    priority: 10
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/gather_features.py"


# Your own per-segment vectors (encoders.<name>.kind: precomputed): checked for coverage, width and
# finiteness, then row-aligned with segments.parquet.
rule precomputed_features:
    input:
        segments="results/data/segments.parquet",
        vectors=lambda wildcards: PLAN.encoders[wildcards.encoder].options["path"],
    output:
        features="results/features/{encoder}.npy",
        provenance="results/features/{encoder}.json",
    log:
        log_path("precomputed_features", "{encoder}"),
    wildcard_constraints:
        encoder=PLAN.encoder_pattern("precomputed_features"),
    conda:
        "../envs/mvcl.yaml"
    params:
        encoder=lambda wildcards: PLAN.encoders[wildcards.encoder].record(),
    script:
        "../workflow_scripts/precomputed_features.py"


rule provenance:
    input:
        records=provenance_files,
    output:
        provenance="results/provenance.json",
    log:
        log_path("provenance"),
    conda:
        "../envs/mvcl.yaml"
    params:
        encoders={name: PLAN.encoders[name].record() for name in PLAN.used_encoders},
        audio_encoder=config["audio_encoder"],
        video_encoder=config["video_encoder"],
    script:
        "../workflow_scripts/provenance.py"
