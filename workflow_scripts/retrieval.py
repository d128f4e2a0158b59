"""Rule retrieval: correct cross-modal ranks of every replicate of one configuration on the test split, with
two-level intervals over replicates and test videos (and the study's computation)."""

import numpy as np
import pandas as pd

from mvcl.io import save_parquet
from mvcl.logs import log_to
from mvcl.plan import replicate_seed
from mvcl.retrieval import evaluate_retrieval
from mvcl.vectors import usable_rows

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "split"])
embeddings = [np.load(path) for path in snakemake.input.embeddings]
rows = np.logical_and.reduce(
    [usable_rows(segments, "test", emb["audio"], emb["video"]) for emb in embeddings]
)
unusable = int(((segments["split"] == "test").to_numpy() & ~rows).sum())
if unusable:
    log.warning("%d test segments without features (in some replicate) are left out", unusable)
settings, evaluation, seed = snakemake.params.retrieval, snakemake.params.evaluation, snakemake.params.seed
record, ranks = evaluate_retrieval(
    [(emb["audio"][rows], emb["video"][rows]) for emb in embeddings],
    segments["video_id"].to_numpy()[rows],
    pool_size=settings["pool_size"],
    seed=seed,
    configuration=snakemake.wildcards.configuration,
    seeds=[replicate_seed(seed, replicate) for replicate in snakemake.params.replicates],
    candidates=settings["candidates"],
    resamples=evaluation["bootstrap"],
    permutations=evaluation["permutations"],
    study_protocol=settings["study_protocol"],
)
log.info("%s", record.flat())
record.save(snakemake.output.metrics)
save_parquet(snakemake.output.ranks, ranks)
