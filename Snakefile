# mvcl: contrastive audio-video representations of music videos (Veldkamp et al. 2023, and beyond).
# This file is the table of contents: configuration, validation, the stages, and the final targets.
from snakemake.utils import min_version, validate

from mvcl.configuration import drop_removed

min_version("9.0")


configfile: "config.yaml"


# A --configfile removes a configuration or ablation entry by setting it to null (mvcl.configuration).
drop_removed(config)
validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
# The study: data, segments, features, contrastive training, Table 1, Table 2 and RQ1, neighbours.
include: "rules/data.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/retrieval.smk"
include: "rules/probe.smk"
include: "rules/qualitative.smk"
# Beyond the study: the ablation, the coupling sweep, cold start, RQ2 with people.
include: "rules/ablation.smk"
include: "rules/sweep.smk"
include: "rules/cold_start.smk"
include: "rules/rq2.smk"


rule all:
    default_target: True
    input:
        PLAN.final_targets(),
