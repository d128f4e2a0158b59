"""Rules probe and probe_configuration: every Table 2 cell of one representation (each task), over seeds; a CL
representation is probed on every training replicate's embeddings (probe.repeats spread over them), the
replicates' seeds trained together as one batched model (`probe_replicates`)."""

import numpy as np
import pandas as pd

from mvcl.data.tags import read_msd_tags
from mvcl.device import start_torch_job
from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.plan import replicate_seed
from mvcl.probe.data import video_representation
from mvcl.probe.replicates import merge_replicates, replicate_repeats
from mvcl.probe.train import probe_replicates, probe_task, resolve_probe_section

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
inputs = snakemake.input
frozen = {}
if "audio_features" in inputs.keys():
    frozen["audio_features"] = np.load(inputs.audio_features, mmap_mode="r")
if "video_features" in inputs.keys():
    frozen["video_features"] = np.load(inputs.video_features, mmap_mode="r")
replicates = [{}]  # a frozen representation: one "replicate", the features
if "embeddings" in inputs.keys():
    replicates = [
        {"audio_embeddings": embeddings["audio"], "video_embeddings": embeddings["video"]}
        for embeddings in map(np.load, inputs.embeddings)
    ]
segments = pd.read_parquet(inputs.segments, columns=["video_id", "segment", "split"])
settings = snakemake.params.probe
level = resolve_probe_section(settings)["level"]
if len(replicates) > 1:
    settings = {**settings, "repeats": replicate_repeats(settings["repeats"], len(replicates))}
name = snakemake.wildcards.representation
representations = [
    video_representation(snakemake.params.role, segments, level=level, **frozen, **arrays)
    for arrays in replicates
]
manifest = pd.read_parquet(inputs.manifest)
tags = read_msd_tags(inputs.tags) if "tags" in inputs.keys() else None
for task, output in zip(snakemake.params.tasks, snakemake.output.results, strict=True):
    seeds = [replicate_seed(snakemake.params.seed, replicate) for replicate in range(len(representations))]
    if len(representations) == 1:
        results = [
            probe_task(
                task, representations[0], manifest, settings, seeds[0], snakemake.params.device, tags=tags
            )
        ]
    else:  # every replicate's seeds trained together, each as it would be alone
        results = probe_replicates(
            task, representations, manifest, settings, seeds, snakemake.params.device, tags=tags
        )
    result = results[0] if len(results) == 1 else merge_replicates(results)
    summary = {key: result[key] for key in ("n_train", "n_test_videos", "mean", "std") if key in result}
    log.info("%s / %s (%d replicates): %s", task, name, len(results), summary)
    save_json(output, result)
