"""Rule rq2: how often each representation's similarity agrees with people's judgements (bootstrap CIs)."""

from mvcl.beyond.rq2 import agreement_table, annotator_agreement, load_spaces, markdown, read_judgements
from mvcl.io import atomic_path, save_csv
from mvcl.logs import log_to

log = log_to(snakemake.log[0])
inputs = snakemake.input
settings = snakemake.params.rq2
spaces = load_spaces(inputs.segments, inputs.audio, inputs.video, inputs.embeddings, snakemake.params.seed)
judgements = read_judgements(list(inputs.judgements))
table = agreement_table(judgements, spaces, replicates=settings["bootstrap"], seed=snakemake.params.seed)
pairs, fleiss, complete = annotator_agreement(judgements)
log.info("\n%s\nFleiss' kappa %.3f over %d triplets", table.to_string(index=False), fleiss, complete)
save_csv(snakemake.output.table, table)
save_csv(snakemake.output.annotators, pairs)
with atomic_path(snakemake.output.markdown) as temporary:
    temporary.write_text(markdown(table, pairs, fleiss, complete), encoding="utf-8")
