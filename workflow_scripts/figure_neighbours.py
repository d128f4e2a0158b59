"""Rule figure_neighbours (one job for every level and mode): each sheet's neighbour table (CSV) and its
contact sheet, in the order of `params.sheets`."""

import math

import pandas as pd

from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to
from mvcl.qualitative.neighbours import MODE_NAMES, load_embeddings, neighbours_for
from mvcl.report.figures.neighbours import plot_neighbour_sheet

log = log_to(snakemake.log[0])
params = snakemake.params
manifest = pd.read_parquet(snakemake.input.manifest)
segments = pd.read_parquet(snakemake.input.segments)
audio, video = load_embeddings(snakemake.input.embeddings)
sheets = zip(params.sheets, snakemake.output.tables, snakemake.output.figures, strict=True)
for (level, mode), table_path, figure_path in sheets:
    table, (agreement, chance) = neighbours_for(
        level,
        mode,
        manifest,
        segments,
        audio,
        video,
        seeds=params.seeds[level],
        k=params.k,
        seed=params.seed,
    )
    log.info(
        "%d seed %s, %d neighbours each, by the %s embedding of %s; same genre as the seed: %.1f%% (chance %.1f%%)",
        table["seed"].nunique(), level, table["rank"].max(), MODE_NAMES[mode], params.configuration,
        100 * agreement, 100 * chance,
    )  # fmt: skip
    save_csv(table_path, table)
    title = f"Nearest test {level} by the {MODE_NAMES[mode]} embedding (configuration {params.configuration})"
    if not math.isnan(agreement):  # the corpus has genres
        title += f"\nneighbours share the seed's genre in {agreement:.0%} of cases (random candidates: {chance:.0%})"
    with atomic_path(figure_path) as temporary:
        plot_neighbour_sheet(table, segments, temporary, level=level, title=title)
