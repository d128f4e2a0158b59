"""Rule neighbours_html: one page on which every seed and neighbour plays (videos whole, segments their window)."""

from pathlib import Path

import pandas as pd

from mvcl.logs import log_to
from mvcl.report.pages import write_neighbours_page

log = log_to(snakemake.log[0])
tables = {}
for path in snakemake.input.tables:
    level, mode = Path(path).stem.removeprefix("neighbours_").split("_")
    tables[(level, mode)] = pd.read_csv(path)
write_neighbours_page(tables, snakemake.output.page, snakemake.params.configuration)
log.info("wrote %s with %d sections", snakemake.output.page, len(tables))
