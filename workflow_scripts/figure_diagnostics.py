"""Rule figure_diagnostics: alignment vs uniformity, modality gap and separation of every configuration."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.report.figures.diagnostics import plot_diagnostics

log = log_to(snakemake.log[0])
with atomic_path(snakemake.output.figure) as temporary:
    plot_diagnostics(pd.read_csv(snakemake.input.table), temporary)
