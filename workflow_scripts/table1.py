"""Rule table1: results/table1.csv and results/table1.md (correct ranks beside the study's computation)."""

import json
from pathlib import Path

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.report.tables import table1, table1_markdown

log = log_to(snakemake.log[0])
metrics = {
    name: json.loads(Path(path).read_text())
    for name, path in zip(snakemake.params.configurations, snakemake.input.metrics, strict=True)
}
table = table1(metrics, snakemake.params.study_configurations)
save_csv(snakemake.output.table, table)
provenance = json.loads(Path(snakemake.input.provenance).read_text())
with atomic_path(snakemake.output.markdown) as temporary:
    temporary.write_text(table1_markdown(table, provenance))
log.info("\n%s", table.to_string())
