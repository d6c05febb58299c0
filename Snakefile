# xstilts: the X-STILTs grid as a Snakemake workflow. See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/intermediate.smk"
include: "workflow/rules/target.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    default_target: True
    input:
        TABLES,


onerror:
    refresh_partial_report()
