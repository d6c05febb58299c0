# xstilts: the X-STILTs grid as a Snakemake workflow. See README.md.
from pathlib import Path

from snakemake.utils import min_version

from xstilts.config import load_config

min_version("9.0")


configfile: "config.yaml"


# Merged by xstilts from the files Snakemake read (config.yaml where it exists: Snakemake skips it when it is
# missing and --configfile is given, as under --directory; then the --configfile files; then --config), since
# Snakemake keeps a null under an empty mapping laid over it (`alignment: {}` over config.yaml's null); checked
# against the schema (workflow/schemas/config.schema.yaml, its settings and task names filled from the package)
# and the catalogue, a refusal in a few lines naming the key or value and its file; path placeholders expanded.
config.update(load_config([*[f for f in ["config.yaml"] if Path(f).exists()], *workflow.overwrite_configfiles],
                          overrides=dict(workflow.config_settings.config)))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/intermediate.smk"
include: "workflow/rules/target.smk"
include: "workflow/rules/alignment.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    default_target: True
    input:
        GRID.aggregate().outputs.values(),


onstart:
    start_warm()


onsuccess:
    stop_warm()


onerror:
    stop_warm()
    refresh_partial_report()
