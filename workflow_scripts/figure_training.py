"""Rule figure_training: loss curves of all configurations."""

import pandas as pd

from mvcl.figures.training import plot_training
from mvcl.io import atomic_path
from mvcl.logs import log_to

log_to(snakemake.log[0])
histories = {
    name: pd.read_csv(path)
    for name, path in zip(snakemake.params.configurations, snakemake.input.histories, strict=True)
}
with atomic_path(snakemake.output.figure) as temporary:
    plot_training(histories, temporary)
