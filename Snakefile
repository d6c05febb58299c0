# xstilts: the X-STILTs grid as a Snakemake workflow. See README.md.
from snakemake.utils import min_version, validate

from xstilts.config import resolve_config

min_version("9.0")


configfile: "config.yaml"


# The one config loader (xstilts.config): refuses a bad config in a few lines, expands {results} and {demo};
# Snakemake's own validation stays as a second guard.
config.update(resolve_config(config))


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
        GRID.aggregate().outputs.values(),


onerror:
    refresh_partial_report()
