"""Rule demo_dataset: the seeded synthetic music-video corpus (MP4s, metadata.csv and MSD-style tags)."""

from pathlib import Path

from tqdm import tqdm

from mvcl.data.tags import read_msd_tags, write_lastfm_db
from mvcl.demo.synthetic import generate_corpus
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
demo = snakemake.params.demo
out_dir = Path(snakemake.output.metadata).parent
bar = tqdm(total=demo["videos"], desc="synthesising videos", mininterval=5)
metadata = generate_corpus(
    out_dir,
    videos=demo["videos"],
    duration_s=demo["duration_s"],
    fps=demo["fps"],
    size=tuple(demo["size"]),
    genres=demo["genres"],
    tags=demo["tags"],
    msd_fraction=demo["msd_fraction"],
    av_coupling=demo["av_coupling"],
    seed=snakemake.params.seed,
    progress=lambda done: bar.update(1),
    workers=snakemake.threads,
)
bar.close()
tags = Path(snakemake.output.tags)
if tags.suffix == ".db":
    # Real MSD users have Last.fm's lastfm_tags.db: ship the demo's tags in that form too.
    write_lastfm_db(read_msd_tags(out_dir / "msd_tags.csv"), tags)
log.info("wrote %d videos and tags to %s", len(metadata), out_dir)
