"""Rule demo_new_videos: the demo's new videos, re-encodes of a few catalog videos (a known answer)."""

from pathlib import Path

from mvcl.data.ingest import read_metadata
from mvcl.demo.reencode import reencode_some
from mvcl.io import save_csv
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
metadata = read_metadata(snakemake.input.metadata)
out_dir = Path(snakemake.output.metadata).parent
new = reencode_some(metadata, out_dir, snakemake.params.reencodes, snakemake.params.seed)
log.info("re-encoded %s as new videos", ", ".join(new["title"]))
save_csv(snakemake.output.metadata, new)
