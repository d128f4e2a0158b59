"""Rule loss_floor: best validation loss of one configuration against its chance loss and its loss floor."""

import pandas as pd

from mvcl.beyond.ablation import loss_floor_record
from mvcl.io import save_json
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
history = pd.read_csv(snakemake.input.history)
record = loss_floor_record(history, snakemake.params.settings, snakemake.params.segments_per_video)
log.info("%s: %s", snakemake.wildcards.configuration, record)
save_json(snakemake.output.record, record)
