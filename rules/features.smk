# Frozen encoders: musicnn (audio) and R(2+1)D-18 (video), sharded over videos, then gathered.


rule audio_features:
    input:
        segments=res("data", "segments.parquet"),
    output:
        features=res("features", "musicnn", "shard_{shard}.npy"),
    log:
        log_path("audio_features", "shard_{shard}"),
    benchmark:
        benchmark_path("audio_features", "shard_{shard}")
    conda:
        "../envs/mvcl.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=memory(4000),
        runtime=runtime(120),
        gpu=gpu_resource(),
    params:
        shard=lambda wildcards: int(wildcards.shard),
        audio_encoder=config["audio_encoder"],
        sample_rate=config["segments"]["sample_rate"],
        device=config["device"],
    script:
        "../workflow_scripts/audio_features.py"


rule video_features:
    input:
        segments=res("data", "segments.parquet"),
    output:
        features=res("features", "r2plus1d", "shard_{shard}.npy"),
        provenance=res("features", "r2plus1d", "shard_{shard}.json"),
    log:
        log_path("video_features", "shard_{shard}"),
    benchmark:
        benchmark_path("video_features", "shard_{shard}")
    conda:
        "../envs/mvcl.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=memory(6000),
        runtime=runtime(240),
        gpu=gpu_resource(),
    params:
        shard=lambda wildcards: int(wildcards.shard),
        video_encoder=config["video_encoder"],
        precision=config["features"]["precision"],
        frame_size=config["segments"]["size"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/video_features.py"


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
        encoder="musicnn|r2plus1d",
    conda:
        "../envs/mvcl.yaml"
    script:
        "../workflow_scripts/gather_features.py"


rule provenance:
    input:
        video=shard_files("r2plus1d", "json"),
    output:
        provenance=res("provenance.json"),
    log:
        log_path("provenance"),
    benchmark:
        benchmark_path("provenance")
    conda:
        "../envs/mvcl.yaml"
    params:
        audio_encoder=config["audio_encoder"],
        video_encoder=config["video_encoder"],
    script:
        "../workflow_scripts/provenance.py"
