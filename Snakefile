# mvcl: contrastive audio-video representations of music videos (Veldkamp et al. 2023, and beyond).
# This file is the table of contents: configuration, validation, the stages, and the final targets.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/tags.smk"
include: "rules/segments.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/probe.smk"
include: "rules/figures.smk"
include: "rules/sweep.smk"
include: "rules/ablation.smk"
include: "rules/recommend.smk"


rule all:
    default_target: True
    input:
        PLAN.final_targets(),
