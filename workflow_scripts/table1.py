"""Rule table1: results/table1.csv and results/table1.md (median ranks over replicates with two-level
intervals, Holm-corrected tests against chance and the reference, the study's computation)."""

import json
from pathlib import Path

import pandas as pd

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.plan import ABLATION_REFERENCE
from mvcl.report.table1 import best_epoch, table1, table1_markdown
from mvcl.retrieval import SMALL_TEST_VIDEOS, RetrievalRecord, against_reference

log = log_to(snakemake.log[0])
names = snakemake.params.configurations
records = {
    name: RetrievalRecord.load(path) for name, path in zip(names, snakemake.input.metrics, strict=True)
}
ranks = {name: pd.read_parquet(path) for name, path in zip(names, snakemake.input.ranks, strict=True)}
comparisons = against_reference(
    ranks, ABLATION_REFERENCE, snakemake.params.evaluation["bootstrap"], snakemake.params.seed
)
per_name = len(snakemake.input.histories) // len(names)
best_epochs = {
    name: [
        best_epoch(pd.read_csv(path)) for path in snakemake.input.histories[i * per_name : (i + 1) * per_name]
    ]
    for i, name in enumerate(names)
}
table = table1(
    records,
    snakemake.params.study_configurations,
    comparisons,
    best_epochs,
    encoders=snakemake.params.encoders,
)
videos = table["n_test_videos"].iloc[0]
if videos < SMALL_TEST_VIDEOS:
    log.warning(
        "the test split holds %d videos (fewer than %d): Table 1's intervals rest on a small collection",
        videos,
        SMALL_TEST_VIDEOS,
    )
save_csv(snakemake.output.table, table)
provenance = json.loads(Path(snakemake.input.provenance).read_text())
with atomic_path(snakemake.output.markdown) as temporary:
    temporary.write_text(table1_markdown(table, provenance))
log.info("\n%s", table.to_string())
