"""Rule probe: one Table 2 cell (task x representation), repeated over seeds."""

import numpy as np
import pandas as pd
import torch

from mvcl.data.tags import read_msd_tags
from mvcl.evaluate.probe import probe_settings, probe_task
from mvcl.evaluate.probe_data import video_representation
from mvcl.io import save_json
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
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
representation = video_representation(snakemake.wildcards.representation, segments, level=level, **arrays)
tags = read_msd_tags(inputs.tags) if "tags" in inputs.keys() else None
result = probe_task(
    snakemake.wildcards.task,
    representation,
    pd.read_parquet(inputs.manifest),
    snakemake.params.probe,
    snakemake.params.seed,
    snakemake.params.device,
    tags=tags,
)
log.info(
    "%s / %s: %s",
    snakemake.wildcards.task,
    snakemake.wildcards.representation,
    {key: result[key] for key in ("n_train", "n_test_videos", "mean", "std") if key in result},
)
save_json(snakemake.output.result, result)
