# Phase (i): the pretrained encoder as a local folder, so that GPU jobs run with the hub offline.
if GRID.demo:

    localrules:
        demo_pretrain,

    rule demo_pretrain:
        input:
            demo_inputs(),
        output:
            directory(f"{R}/base_model"),
        params:
            spec=json.dumps((config.get("demo") or {}).get("model", {})),
        conda:
            "../../envs/xstilts.yaml"
        log:
            f"{R}/logs/demo_pretrain.log",
        shell:
            "xstilts demo-pretrain --corpus {input[0]}/corpus --out {output} --spec {params.spec:q}"
            " > {log} 2>&1"

elif GRID.base_model() != config["model"]:

    localrules:
        fetch_model,

    rule fetch_model:
        output:
            directory(f"{R}/base_model"),
        params:
            model=config["model"],
        conda:
            "../../envs/xstilts.yaml"
        log:
            f"{R}/logs/fetch_model.log",
        shell:
            "xstilts fetch-model {params.model:q} --out {output} > {log} 2>&1"
