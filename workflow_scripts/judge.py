"""Rule judge: triplets (seed, two candidates from different representations or random) and the judge page."""

import hashlib

import pandas as pd

from mvcl.beyond.rq2 import draw_triplets, load_spaces
from mvcl.io import save_csv
from mvcl.logs import log_to
from mvcl.report.judge import write_judge_page

log = log_to(snakemake.log[0])
settings = snakemake.params.rq2
inputs = snakemake.input
spaces = load_spaces(inputs.segments, inputs.audio, inputs.video, inputs.embeddings, snakemake.params.seed)
manifest = pd.read_parquet(inputs.manifest)
seed_ids = manifest.loc[manifest["split"].isin(settings["seed_splits"]), "video_id"].tolist()
triplets = draw_triplets(
    spaces,
    seed_ids,
    seeds=settings["seeds"],
    pairs_per_seed=settings["pairs_per_seed"],
    neighbours=settings["neighbours"],
    seed=snakemake.params.seed,
)
log.info(
    "%d triplets of %d seeds; representations %s; candidate sources: %s",
    len(triplets), triplets["seed"].nunique(), ", ".join(spaces),
    pd.concat([triplets["source_a"], triplets["source_b"]]).value_counts().to_dict(),
)  # fmt: skip
save_csv(snakemake.output.triplets, triplets)
page_id = hashlib.sha256(triplets.to_csv(index=False).encode()).hexdigest()[:16]
paths = manifest.set_index("video_id")["path"].to_dict()
write_judge_page(triplets, paths, snakemake.output.page, page_id)
