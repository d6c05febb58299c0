# Data: every task loaded once into the local parquet cache (local rules: the login node has the internet).


localrules:
    demo_data,
    prepare_dataset,
    prepare_target,


rule demo_data:
    output:
        directory(f"{R}/demo/hub"),
    params:
        languages=json.dumps({t: GRID.languages(t) for t in GRID.targets}),
        seed=(config.get("demo") or {}).get("seed", 0),
        sizes=json.dumps((config.get("demo") or {}).get("sizes", {})),
        translations=json.dumps(demo_translations()),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/demo_data.log",
    shell:
        "xstilts demo-data --out {output} --languages {params.languages:q} --seed {params.seed}"
        " --sizes {params.sizes:q} --translations {params.translations:q} > {log} 2>&1"


rule prepare_dataset:
    input:
        demo_inputs(),
    output:
        f"{R}/data/train/{{dataset}}/meta.json",
    params:
        sources=GRID.sources_json(),
        task=lambda wildcards: GRID.dataset_source(wildcards.dataset)[0],
        translations=lambda wildcards: json.dumps(GRID.dataset_source(wildcards.dataset)[1]),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/prepare/{{dataset}}.log",
    shell:
        "xstilts prepare dataset {params.task} --out {params.out} --sources {params.sources:q}"
        " --translations {params.translations:q} > {log} 2>&1"


rule prepare_target:
    input:
        demo_inputs(),
    output:
        f"{R}/data/eval/{{target}}/meta.json",
    params:
        sources=GRID.sources_json(),
        languages=lambda wildcards: GRID.languages(wildcards.target),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/prepare/{{target}}.log",
    shell:
        "xstilts prepare target {wildcards.target} --out {params.out} --languages {params.languages}"
        " --sources {params.sources:q} > {log} 2>&1"
