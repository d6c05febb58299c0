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
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    conda:
        "../../envs/xstilts.yaml"
    log:
        GRID.demo_data().log,
    shell:
        "{params.xstilts} demo-data --configfile {params.config} > {log} 2>&1"


rule prepare_dataset:
    input:
        unpack(spec_inputs("prepare_dataset")),
    output:
        L.train_data("{dataset}") / META_FILE,
    params:
        spec=spec_digest("prepare_dataset"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("prepare", "{dataset}"),
    shell:
        "{params.xstilts} prepare dataset {wildcards.dataset} --configfile {params.config} > {log} 2>&1"


rule prepare_target:
    input:
        unpack(spec_inputs("prepare_target")),
    output:
        L.eval_data("{target}") / META_FILE,
    params:
        spec=spec_digest("prepare_target"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("prepare", "{target}"),
    shell:
        "{params.xstilts} prepare target {wildcards.target} --configfile {params.config} > {log} 2>&1"
