"""Rule recommendations_html: each new video beside its recommended catalog videos, to watch and listen."""

import pandas as pd

from mvcl.logs import log_to
from mvcl.report.recommendations import write_recommendations_page

log = log_to(snakemake.log[0])
table = pd.read_csv(snakemake.input.table, dtype={"new_video_id": str, "video_id": str})
write_recommendations_page(table, snakemake.output.page, snakemake.params.configuration)
log.info("wrote %s: %d new videos", snakemake.output.page, table["new_video_id"].nunique())
