"""Rule figure_similarities: histograms of positive and negative pair similarity, one panel per configuration."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.qualitative.diagnostics import pair_similarities, test_embeddings
from mvcl.qualitative.neighbours import load_embeddings
from mvcl.report.figures.diagnostics import plot_similarity_histograms

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments)
similarities = {}
for configuration, path in zip(snakemake.params.configurations, snakemake.input.embeddings, strict=True):
    audio, video, video_ids = test_embeddings(segments, *load_embeddings(path))
    similarities[configuration] = pair_similarities(audio, video, video_ids, seed=snakemake.params.seed)
    log.info("%s: %d positive and %d negative pairs", configuration, *map(len, similarities[configuration]))
with atomic_path(snakemake.output.figure) as temporary:
    plot_similarity_histograms(similarities, temporary)
