# Data: every task loaded once into the local parquet cache (local rules: the login node has the internet).


localrules:
    demo_data,
    prepare_dataset,
    prepare_target,


rule demo_data:
    output:
        directory(GRID.demo_data().out),
    params:
        spec=spec_digest("demo_data"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        GRID.demo_data().log,
    shell:
        "{XSTILTS} demo-data --configfile {CONFIG} > {log} 2>&1"


rule prepare_dataset:
    input:
        unpack(spec_inputs("prepare_dataset")),
    output:
        L.train_data("{dataset}") / META_FILE,
    params:
        spec=spec_digest("prepare_dataset"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("prepare", "{dataset}"),
    shell:
        "{XSTILTS} prepare dataset {wildcards.dataset} --configfile {CONFIG} > {log} 2>&1"


rule prepare_target:
    input:
        unpack(spec_inputs("prepare_target")),
    output:
        L.eval_data("{target}") / META_FILE,
    params:
        spec=spec_digest("prepare_target"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("prepare", "{target}"),
    shell:
        "{XSTILTS} prepare target {wildcards.target} --configfile {CONFIG} > {log} 2>&1"
