"""Rule figure_coupling: median rank of each sweep configuration against demo.av_coupling, with intervals."""

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import read_coupling_sweep
from mvcl.report.figures.diagnostics import plot_coupling_sweep
from mvcl.retrieval import RetrievalRecord

log = log_to(snakemake.log[0])
records = {
    tuple(key): RetrievalRecord.load(path).flat()
    for key, path in zip(snakemake.params.sweep_keys, snakemake.input.retrieval, strict=True)
}
table = read_coupling_sweep(records)
log.info("coupling sweep:\n%s", table.to_string(index=False))
save_csv(snakemake.output.table, table)
with atomic_path(snakemake.output.figure) as temporary:
    plot_coupling_sweep(table, temporary, demo_coupling=snakemake.params.demo_coupling)
