"""Rule figure_embedding_map (one job for every configuration): t-SNE of each configuration's test
embeddings, by genre and by modality."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import embedding_map
from mvcl.qualitative.neighbours import load_embeddings
from mvcl.report.figures.diagnostics import plot_embedding_map

log = log_to(snakemake.log[0])
params = snakemake.params
manifest = pd.read_parquet(snakemake.input.manifest)
segments = pd.read_parquet(snakemake.input.segments)
maps = zip(params.configurations, snakemake.input.embeddings, snakemake.output.figures, strict=True)
for configuration, embeddings, figure in maps:
    points = embedding_map(
        manifest,
        segments,
        *load_embeddings(embeddings),
        seed=params.seed,
        max_segments=params.max_segments,
    )
    log.info("t-SNE of %d points (%s)", len(points), configuration)
    with atomic_path(figure) as temporary:
        plot_embedding_map(points, temporary, title=f"Test segments of configuration {configuration} (t-SNE)")
