# Contrastive heads for every named configuration (Table 1's rows), autoencoder pre-training, and what the
# training curves show (each train job's loss-floor record, figures/training.png).

# What a training job reads beside its files: the configuration's resolved settings, the seed, the device.
TRAINING_PARAMS = {
    "settings": resolved,
    "seed": config["seed"],
    "device": config["device"],
}


rule autoencoder:
    input:
        audio=features_of("audio"),
        video=features_of("video"),
        segments="results/data/segments.parquet",
    output:
        autoencoders=model_path("{configuration}", "autoencoders.pt"),
    log:
        log_path("autoencoder", "{configuration}"),
    # Training before everything that can wait: the leaf figures fill the cores around it (README, Speed).
    priority: 10
    conda:
        "../envs/mvcl.yaml"
    threads: config["resources"]["training_threads"]
    resources:
        mem_mb=memory(8000),
        runtime=runtime(240),
        gpu=gpu_resource(),
    params:
        **TRAINING_PARAMS,
    script:
        "../workflow_scripts/autoencoder.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        heads=PLAN.replicate_files("{configuration}", "heads.pt"),
        history=PLAN.replicate_files("{configuration}", "history.csv"),
        embeddings=PLAN.replicate_files("{configuration}", "embeddings.npz"),
        # replicate 0's best validation loss against the chance loss and the floor the head's outputs allow
        loss_floor="results/metrics/{configuration}/loss_floor.json",
        # beyond the study: replicate 0's vectors of every video (and segment) as tables, written here rather
        # than by a job of their own (one process start-up fewer per configuration)
        videos="results/embeddings/{configuration}.parquet",
        video_segments="results/embeddings/{configuration}_segments.parquet",
    log:
        log_path("train", "{configuration}"),
    # Training before everything that can wait: the leaf figures fill the cores around it (README, Speed).
    priority: 10
    conda:
        "../envs/mvcl.yaml"
    threads: config["resources"]["training_threads"]
    resources:
        mem_mb=memory(8000),
        runtime=runtime(480),
        gpu=gpu_resource(),
    params:
        **TRAINING_PARAMS,
        replicates=PLAN.replicates,
        state=train_state_root(),
        segments_per_video=config["segments"]["count"],
    script:
        "../workflow_scripts/train.py"


rule figure_training:
    input:
        histories=expand(
            replicate_path("{configuration}", "history.csv"),
            configuration=PLAN.configurations,
        ),
    output:
        figure=reported("results/figures/training.png", "training", "Training"),
    log:
        log_path("figure_training"),
    conda:
        "../envs/mvcl.yaml"
    params:
        configurations=PLAN.configurations,
    script:
        "../workflow_scripts/figure_training.py"
