"""Rule provenance: the weights actually used by both encoders, in results/provenance.json."""

import json

from mvcl.io import save_json
from mvcl.logs import log_to
from mvcl.provenance import merge_video_provenance, musicnn_provenance

log = log_to(snakemake.log[0])
video = merge_video_provenance([json.loads(open(path).read()) for path in snakemake.input.video])
provenance = {
    "audio": musicnn_provenance(snakemake.params.audio_encoder["model"]),
    "video": video,
    "video_encoder": snakemake.params.video_encoder,
    "audio_encoder": snakemake.params.audio_encoder,
}
log.info("provenance: %s", provenance)
save_json(snakemake.output.provenance, provenance)
