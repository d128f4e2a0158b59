"""Rule ablation_table: results/ablation.csv, one row per one-factor change of `base` (and base itself)."""

import json
from pathlib import Path

from mvcl.beyond.ablation import ablation_table
from mvcl.io import save_csv
from mvcl.logs import log_to
from mvcl.retrieval import RetrievalRecord

log = log_to(snakemake.log[0])
params = snakemake.params


def read(path):
    return json.loads(Path(path).read_text())


names, tasks = params.names, params.tasks
retrieval = {
    name: RetrievalRecord.load(path).flat()
    for name, path in zip(names, snakemake.input.retrieval, strict=True)
}
floors = dict(zip(names, map(read, snakemake.input.loss_floor), strict=True))
keys = [(name, task) for name in names for task in tasks]  # the order of snakemake.input.probes
probes = dict(zip(keys, map(read, snakemake.input.probes), strict=True))
table = ablation_table(names, params.changes, retrieval, probes, floors, tasks, params.resamples, params.seed)
save_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())
