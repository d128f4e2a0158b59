"""Rule simulate_judgements: the demo's simulated annotators judge every triplet by latent similarity."""

import pandas as pd

from mvcl.beyond.rq2 import simulate_judgements
from mvcl.io import save_csv
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
triplets = pd.read_csv(snakemake.input.triplets, dtype=str)
judgements = simulate_judgements(
    triplets, pd.read_parquet(snakemake.params.latents), snakemake.params.noise, snakemake.params.seed
)
log.info(
    "%d judgements by %d simulated annotators (noise %s); share choosing a: %.2f",
    len(judgements), judgements["annotator"].nunique(), snakemake.params.noise,
    (judgements["choice"] == "a").mean(),
)  # fmt: skip
save_csv(snakemake.output.judgements, judgements)
