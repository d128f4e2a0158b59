"""Rule retrieval: correct cross-modal ranks on the test split with intervals (and the study's computation)."""

import numpy as np
import pandas as pd

from mvcl.io import save_json, save_parquet
from mvcl.logs import log_to
from mvcl.retrieval import evaluate_retrieval
from mvcl.vectors import usable_rows

log = log_to(snakemake.log[0])
embeddings = np.load(snakemake.input.embeddings)
audio, video = embeddings["audio"], embeddings["video"]
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "split"])
rows = usable_rows(segments, "test", audio, video)
unusable = int(((segments["split"] == "test").to_numpy() & ~rows).sum())
if unusable:
    log.warning("%d test segments without features are left out", unusable)
settings, evaluation = snakemake.params.retrieval, snakemake.params.evaluation
metrics, ranks = evaluate_retrieval(
    audio[rows],
    video[rows],
    segments["video_id"].to_numpy()[rows],
    pool_size=settings["pool_size"],
    seed=snakemake.params.seed,
    candidates=settings["candidates"],
    resamples=evaluation["bootstrap"],
    permutations=evaluation["permutations"],
    study_protocol=settings["study_protocol"],
)
metrics["configuration"] = snakemake.wildcards.configuration
log.info("%s", metrics)
save_json(snakemake.output.metrics, metrics)
save_parquet(snakemake.output.ranks, pd.DataFrame(ranks))
