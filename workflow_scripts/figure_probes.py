"""Rule figure_probes: bar chart of Table 2 with 95% intervals, and RQ1's paired differences."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.report.figures.probes import plot_probes

log_to(snakemake.log[0])
with atomic_path(snakemake.output.figure) as temporary:
    plot_probes(pd.read_csv(snakemake.input.table), temporary, pd.read_csv(snakemake.input.rq1))
