"""Rule gather_features: join feature shards into one float32 array row-aligned with segments.parquet."""

import numpy as np
import pandas as pd

from mvcl.features.gather import gather_shards
from mvcl.io import save_npy
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
segments = pd.read_parquet(snakemake.input.segments, columns=["video_id", "segment", "shard"])
features = gather_shards(segments, [np.load(path, mmap_mode="r") for path in snakemake.input.shards])
log.info(
    "gathered %s features %s; %d rows not finite",
    snakemake.wildcards.encoder,
    features.shape,
    int((~np.isfinite(features.reshape(len(features), -1)).all(axis=1)).sum()),
)
save_npy(snakemake.output.features, features)
