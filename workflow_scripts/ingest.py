"""Rule ingest: metadata CSV -> manifest.parquet (usable videos with split) + rejected.csv (file, reason)."""

from tqdm import tqdm

from mvcl.data.ingest import ingest, read_metadata
from mvcl.io import save_csv, save_parquet
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
metadata = read_metadata(snakemake.input.metadata)
manifest, rejected = ingest(
    metadata,
    min_duration_s=snakemake.params.min_duration_s,
    split_fractions=snakemake.params.split,
    missing_values=snakemake.params.missing_values,
    progress=lambda rows: tqdm(rows, total=len(metadata), desc="probing videos", mininterval=5),
)
log.info(
    "%d videos usable, %d rejected; splits: %s",
    len(manifest),
    len(rejected),
    manifest["split"].value_counts().to_dict(),
)
save_parquet(snakemake.output.manifest, manifest)
save_csv(snakemake.output.rejected, rejected)
