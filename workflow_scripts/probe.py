"""Rules probe and probe_configuration: every Table 2 cell of one representation (each task), over seeds."""

import numpy as np
import pandas as pd

from mvcl.data.tags import read_msd_tags
from mvcl.device import start_torch_job
from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.probe.data import video_representation
from mvcl.probe.train import probe_settings, probe_task

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
inputs = snakemake.input
arrays = {}
if "audio_features" in inputs.keys():
    arrays["audio_features"] = np.load(inputs.audio_features, mmap_mode="r")
if "video_features" in inputs.keys():
    arrays["video_features"] = np.load(inputs.video_features, mmap_mode="r")
if "embeddings" in inputs.keys():
    embeddings = np.load(inputs.embeddings)
    arrays.update(audio_embeddings=embeddings["audio"], video_embeddings=embeddings["video"])
segments = pd.read_parquet(inputs.segments, columns=["video_id", "segment", "split"])
level = probe_settings(snakemake.params.probe)["level"]
name = snakemake.wildcards.representation
representation = video_representation(snakemake.params.role, segments, level=level, **arrays)
manifest = pd.read_parquet(inputs.manifest)
tags = read_msd_tags(inputs.tags) if "tags" in inputs.keys() else None
for task, output in zip(snakemake.params.tasks, snakemake.output.results, strict=True):
    result = probe_task(
        task,
        representation,
        manifest,
        snakemake.params.probe,
        snakemake.params.seed,
        snakemake.params.device,
        tags=tags,
    )
    summary = {key: result[key] for key in ("n_train", "n_test_videos", "mean", "std") if key in result}
    log.info("%s / %s: %s", task, name, summary)
    save_json(output, result)
