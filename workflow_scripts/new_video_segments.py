"""Rule new_video_segments: one new video's segment rows (from its params) as its own one-shard table."""

import pandas as pd

from mvcl.data.segments import SEGMENT_COLUMNS
from mvcl.io import save_parquet
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
rows = pd.DataFrame(snakemake.params.rows).assign(shard=0)[SEGMENT_COLUMNS]
log.info("video %s: %d segments", rows["video_id"].iloc[0], len(rows))
save_parquet(snakemake.output.segments, rows.astype({"segment": "int32", "shard": "int32"}))
