"""Rule msd_tags: the tags of the manifest's msd_ids from dataset.msd_tags -> results/data/msd_tags.parquet."""

import pandas as pd

from mvcl.data.tags import collection_tags
from mvcl.io import save_parquet
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
manifest = pd.read_parquet(snakemake.input.manifest, columns=["msd_id"])
save_parquet(snakemake.output.tags, collection_tags(manifest, snakemake.input.tags))
