"""Rule figure_segments: the study's Figure 2 for one video of the corpus (the first by id, seeded choice)."""

import pandas as pd

from mvcl.io import atomic_path
from mvcl.logs import log_to
from mvcl.report.figures.segments import plot_segments

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments)
manifest = pd.read_parquet(snakemake.input.manifest)
video = manifest.sample(n=1, random_state=snakemake.params.seed).iloc[0]
log.info("drawing segments of %s (%s)", video.video_id, video.path)
with atomic_path(snakemake.output.figure) as temporary:
    plot_segments(segments, video.video_id, video.duration_s, temporary)
