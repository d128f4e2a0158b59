# Frozen encoders (mvcl.features.encoders): every encoder a configuration trains on is extracted once to
# results/features/{encoder}.npy, sharded over videos and gathered. The study's two keep their own rules
# (audio_features: musicnn, video_features: R(2+1)D-18); every other kind runs encoder_features, and
# precomputed features are checked and copied by precomputed_features.


rule audio_features:
    input:
        segments=res("data", "segments.parquet"),
    output:
        features=res("features", "{encoder}", "shard_{shard}.npy"),
    log:
        log_path("audio_features", "{encoder}", "shard_{shard}"),
    benchmark:
        benchmark_path("audio_features", "{encoder}", "shard_{shard}")
    wildcard_constraints:
        encoder=PLAN.encoder_pattern("audio_features"),
    conda:
        "../envs/mvcl.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=memory(4000),
        runtime=runtime(120),
        gpu=gpu_resource(),
    params:
        shard=lambda wildcards: int(wildcards.shard),
        audio_encoder=lambda wildcards: PLAN.encoders[wildcards.encoder].options,
        sample_rate=config["segments"]["sample_rate"],
        device=config["device"],
    script:
        "../workflow_scripts/audio_features.py"


rule video_features:
    input:
        segments=res("data", "segments.parquet"),
        # int8 (features.precision) is calibrated on the catalog's clips, the same for every shard
        calibration=res("data", "segments.parquet"),
    output:
        features=res("features", "{encoder}", "shard_{shard}.npy"),
        provenance=res("features", "{encoder}", "shard_{shard}.json"),
    log:
        log_path("video_features", "{encoder}", "shard_{shard}"),
    benchmark:
        benchmark_path("video_features", "{encoder}", "shard_{shard}")
    wildcard_constraints:
        encoder=PLAN.encoder_pattern("video_features"),
    conda:
        "../envs/mvcl.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=memory(6000),
        runtime=runtime(240),
        gpu=gpu_resource(),
    params:
        shard=lambda wildcards: int(wildcards.shard),
        video_encoder=lambda wildcards: PLAN.encoders[wildcards.encoder].options,
        precision=config["features"]["precision"],
        frame_size=config["segments"]["size"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/video_features.py"


# Weight-free baselines, Hugging Face models and any registered kind: the encoder contract's common loop.
rule encoder_features:
    input:
        segments=res("data", "segments.parquet"),
    output:
        features=res("features", "{encoder}", "shard_{shard}.npy"),
        provenance=res("features", "{encoder}", "shard_{shard}.json"),
    log:
        log_path("encoder_features", "{encoder}", "shard_{shard}"),
    benchmark:
        benchmark_path("encoder_features", "{encoder}", "shard_{shard}")
    wildcard_constraints:
        encoder=PLAN.encoder_pattern("encoder_features"),
    conda:
        "../envs/mvcl.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=memory(4000),
        runtime=runtime(240),
        gpu=gpu_resource(),
    params:
        shard=lambda wildcards: int(wildcards.shard),
        encoder=lambda wildcards: PLAN.encoders[wildcards.encoder].record(),
        context=extraction_context,
    script:
        "../workflow_scripts/encoder_features.py"


rule gather_features:
    input:
        segments=res("data", "segments.parquet"),
        shards=lambda wildcards: shard_files(wildcards.encoder)(wildcards),
    output:
        features=res("features", "{encoder}.npy"),
    log:
        log_path("gather_features", "{encoder}"),
    benchmark:
        benchmark_path("gather_features", "{encoder}")
    wildcard_constraints:
        encoder="|".join(
            PLAN.encoder_pattern(rule)
            for rule in ("audio_features", "video_features", "encoder_features")
        ),
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/gather_features.py"


# Your own per-segment vectors (encoders.<name>.kind: precomputed): checked for coverage, width and
# finiteness, then row-aligned with segments.parquet.
rule precomputed_features:
    input:
        segments=res("data", "segments.parquet"),
        vectors=lambda wildcards: PLAN.encoders[wildcards.encoder].options["path"],
    output:
        features=res("features", "{encoder}.npy"),
        provenance=res("features", "{encoder}.json"),
    log:
        log_path("precomputed_features", "{encoder}"),
    benchmark:
        benchmark_path("precomputed_features", "{encoder}")
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
        provenance=res("provenance.json"),
    log:
        log_path("provenance"),
    benchmark:
        benchmark_path("provenance")
    conda:
        "../envs/mvcl.yaml"
    params:
        encoders={name: PLAN.encoders[name].record() for name in PLAN.used_encoders},
        audio_encoder=config["audio_encoder"],
        video_encoder=config["video_encoder"],
    script:
        "../workflow_scripts/provenance.py"
