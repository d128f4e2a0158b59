"""Rule figure_ablation: ranks, probe AUCs and loss bounds of every one-factor change of `base`."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.report.figures.ablation import plot_ablation

log_to(snakemake.log[0])
with atomic_path(snakemake.output.figure) as temporary:
    plot_ablation(pd.read_csv(snakemake.input.table), temporary)
