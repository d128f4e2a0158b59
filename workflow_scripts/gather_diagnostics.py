"""Rule gather_diagnostics: every per-configuration record under results/metrics/ -> one row per configuration."""

import json
from pathlib import Path

from mvcl.io import save_csv
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import merge_records

log = log_to(snakemake.log[0])
records = {configuration: [] for configuration in snakemake.params.configurations}
for path in map(Path, snakemake.input.parts):
    records[path.parent.name].append(json.loads(path.read_text()))
table = merge_records(records)
log.info("%d configurations, columns %s", len(table), ", ".join(table.columns))
save_csv(snakemake.output.table, table)
