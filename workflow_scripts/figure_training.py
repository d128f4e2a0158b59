"""Rule figure_training: loss curves of all configurations."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.report.figures.training import plot_training

log_to(snakemake.log[0])
histories = {
    name: pd.read_csv(path)
    for name, path in zip(snakemake.params.configurations, snakemake.input.histories, strict=True)
}
with atomic_path(snakemake.output.figure) as temporary:
    plot_training(histories, temporary)
