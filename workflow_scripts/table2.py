"""Rule table2: results/table2.csv (long form) and results/table2.md (laid out like the study's Table 2)."""

import json
from pathlib import Path

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.report.table2 import table2, table2_markdown, table2_notes

log = log_to(snakemake.log[0])
results = {}
for path in map(Path, snakemake.input.results):
    results[(path.parent.name, path.stem)] = json.loads(path.read_text())
table = table2(results, snakemake.params.resamples, snakemake.params.seed)
notes = table2_notes(table)
if notes:
    log.warning("Table 2 rests on a small collection: %s", "; ".join(notes))
provenance = json.loads(Path(snakemake.input.provenance).read_text())
save_csv(snakemake.output.table, table)
with atomic_path(snakemake.output.markdown) as temporary:
    temporary.write_text(table2_markdown(table, provenance, snakemake.params.configuration))
log.info("\n%s", table.to_string())
