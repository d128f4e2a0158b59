"""Rules audio_features, video_features, encoder_features: one shard of segments.parquet -> one encoder's
features [rows, D] (float32 .npy; R(2+1)D-18's [rows, views, 512]) and their provenance record."""

from mvcl.data.segments import read_shard
from mvcl.features.encoders.contract import ExtractionContext
from mvcl.features.encoders.registry import load_encoder
from mvcl.io import save_json, save_npy
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
segments = read_shard(snakemake.input.segments, snakemake.params.shard)
# an int8 R(2+1)D calibrates on the catalog's segments: this table, or the `calibration` input of a new video's job
calibration = getattr(snakemake.input, "calibration", snakemake.input.segments)
context = ExtractionContext(**snakemake.params.context, threads=snakemake.threads, calibration=calibration)
encoder = load_encoder(snakemake.params.encoder, context)
features, provenance = encoder.extract(segments)
save_npy(snakemake.output.features, features)  # atomic: a temporary file in the same folder, then os.replace
save_json(snakemake.output.provenance, provenance)
