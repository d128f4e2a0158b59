"""Rule figure_embedding_map: t-SNE of one configuration's test embeddings, by genre and by modality."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import embedding_map
from mvcl.qualitative.neighbours import load_embeddings
from mvcl.report.figures.diagnostics import plot_embedding_map

log = log_to(snakemake.log[0])
configuration = snakemake.wildcards.configuration
points = embedding_map(
    pd.read_parquet(snakemake.input.manifest),
    pd.read_parquet(snakemake.input.segments),
    *load_embeddings(snakemake.input.embeddings),
    seed=snakemake.params.seed,
    max_segments=snakemake.params.max_segments,
)
log.info("t-SNE of %d points (%s)", len(points), configuration)
with atomic_path(snakemake.output.figure) as temporary:
    plot_embedding_map(points, temporary, title=f"Test segments of configuration {configuration} (t-SNE)")
