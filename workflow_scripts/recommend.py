"""Rule recommend: each new video's top-k catalog videos by cosine of the aggregated embedding."""

import pandas as pd

from mvcl.beyond.recommend import recommend
from mvcl.io import save_csv
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
table = recommend(
    pd.read_parquet(snakemake.input.new),
    pd.read_parquet(snakemake.input.catalog),
    pd.read_parquet(snakemake.input.new_manifest),
    pd.read_parquet(snakemake.input.manifest),
    k=snakemake.params.k,
)
top = table[table["rank"] == 1]
log.info(
    "%d new videos, %d recommendations each; top: %s",
    table["new_video_id"].nunique(), snakemake.params.k,
    ", ".join(f"{row.new_video_id} -> {row.video_id} ({row.cosine:.3f})" for row in top.itertuples()),
)  # fmt: skip
save_csv(snakemake.output.table, table)
