"""Rule retrieval: correct cross-modal ranks on the test split (and the study's computation beside them)."""

import numpy as np
import pandas as pd

from mvcl.evaluate.retrieval import median_rank, study_median_rank
from mvcl.io import save_json
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
embeddings = np.load(snakemake.input.embeddings)
segments = pd.read_parquet(snakemake.input.segments, columns=["split"])
test = segments["split"].to_numpy() == "test"
finite = np.isfinite(embeddings["audio"]).all(axis=1) & np.isfinite(embeddings["video"]).all(axis=1)
rows = np.flatnonzero(test & finite)
if (test & ~finite).any():
    log.warning("%d test segments without features are left out", int((test & ~finite).sum()))
audio, video = embeddings["audio"][rows], embeddings["video"][rows]
settings = snakemake.params.retrieval
metrics = median_rank(audio, video, settings["pool_size"], snakemake.params.seed)
if settings["study_protocol"]:
    metrics.update(study_median_rank(audio, video, settings["pool_size"]))
metrics["configuration"] = snakemake.wildcards.configuration
log.info("%s", metrics)
save_json(snakemake.output.metrics, metrics)
