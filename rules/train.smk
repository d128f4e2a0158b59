# Contrastive heads for every named configuration (Table 1's rows), and autoencoder pre-training.


rule autoencoder:
    input:
        audio=res("features", "musicnn.npy"),
        video=res("features", "r2plus1d.npy"),
        segments=res("data", "segments.parquet"),
    output:
        autoencoders=model_path("{configuration}", "autoencoders.pt"),
    log:
        log_path("autoencoder", "{configuration}"),
    benchmark:
        benchmark_path("autoencoder", "{configuration}")
    conda:
        "../envs/mvcl.yaml"
    threads: 2
    resources:
        mem_mb=memory(8000),
        runtime=runtime(240),
        gpu=gpu_resource(),
    params:
        settings=resolved,
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/autoencoder.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        heads=model_path("{configuration}", "heads.pt"),
        history=model_path("{configuration}", "history.csv"),
        embeddings=model_path("{configuration}", "embeddings.npz"),
    log:
        log_path("train", "{configuration}"),
    benchmark:
        benchmark_path("train", "{configuration}")
    conda:
        "../envs/mvcl.yaml"
    threads: 2
    resources:
        mem_mb=memory(8000),
        runtime=runtime(480),
        gpu=gpu_resource(),
    params:
        settings=resolved,
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/train.py"
