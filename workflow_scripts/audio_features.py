"""Rule audio_features: one shard of segments.parquet -> frozen musicnn features [rows, D] (float32 .npy)."""

from mvcl.data.segments import read_shard
from mvcl.device import start_torch_job
from mvcl.features.audio import extract_audio_features
from mvcl.io import save_npy
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
start_torch_job(snakemake.threads)
segments = read_shard(snakemake.input.segments, snakemake.params.shard)
encoder = snakemake.params.audio_encoder
features = extract_audio_features(
    segments,
    model=encoder["model"],
    layer=encoder["layer"],
    window=encoder["window"],
    sample_rate=snakemake.params.sample_rate,
    batch_size=encoder["batch_size"],
    device=snakemake.params.device,
    progress=False,
    decode_workers=encoder["decode_workers"],
)
save_npy(snakemake.output.features, features)  # atomic: a temporary file in the same folder, then os.replace
