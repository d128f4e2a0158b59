"""Rule provenance: the encoders a run used and the weights behind them, in results/provenance.json."""

from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.provenance import encoders_provenance, records_by_encoder

log = log_to(snakemake.log[0])
provenance = encoders_provenance(
    snakemake.params.encoders,
    records_by_encoder(snakemake.input.records),
    snakemake.params.audio_encoder,
    snakemake.params.video_encoder,
)
log.info("provenance: %s", provenance)
save_json(snakemake.output.provenance, provenance)
