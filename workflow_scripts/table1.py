"""Rule table1: results/table1.csv and results/table1.md (correct ranks with intervals, tests, the study's)."""

import json
from pathlib import Path

import pandas as pd

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.report.table1 import table1, table1_markdown
from mvcl.retrieval import SMALL_TEST_VIDEOS, against_reference

REFERENCE = "base"

log = log_to(snakemake.log[0])
names = snakemake.params.configurations
metrics = {
    name: json.loads(Path(path).read_text())
    for name, path in zip(names, snakemake.input.metrics, strict=True)
}
ranks = {name: pd.read_parquet(path) for name, path in zip(names, snakemake.input.ranks, strict=True)}
comparisons = against_reference(
    {name: {column: table[column].to_numpy() for column in table} for name, table in ranks.items()},
    REFERENCE,
    snakemake.params.evaluation["bootstrap"],
    snakemake.params.seed,
)
for name, comparison in comparisons.items():
    metrics[name].update(comparison)
table = table1(metrics, snakemake.params.study_configurations, REFERENCE, snakemake.params.encoders)
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
    temporary.write_text(table1_markdown(table, provenance, REFERENCE))
log.info("\n%s", table.to_string())
