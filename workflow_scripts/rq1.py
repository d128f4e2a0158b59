"""Rule rq1: results/rq1.csv and results/rq1.md, each CL representation against its frozen counterpart."""

import json
from pathlib import Path

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.report.rq1 import rq1, rq1_markdown
from mvcl.retrieval import RetrievalRecord

log = log_to(snakemake.log[0])
results = {}
for path in map(Path, snakemake.input.results):
    results[(path.parent.name, path.stem)] = json.loads(path.read_text())
pairs = [tuple(pair) for pair in snakemake.params.pairs]
names = snakemake.params.configurations
records = {
    name: RetrievalRecord.load(path) for name, path in zip(names, snakemake.input.retrieval, strict=True)
}
heads = {"" if name == names[0] else name: record for name, record in records.items()}  # "": the study's rows
table = rq1(results, pairs, snakemake.params.resamples, snakemake.params.seed, heads)
provenance = json.loads(Path(snakemake.input.provenance).read_text())
save_csv(snakemake.output.table, table)
with atomic_path(snakemake.output.markdown) as temporary:
    temporary.write_text(rq1_markdown(table, provenance))
log.info("\n%s", "\n".join(table["sentence"]))
