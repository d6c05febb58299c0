# Phase (i): the pretrained encoder as a local folder, so that GPU jobs run with the hub offline.
if GRID.demo:

    localrules:
        demo_pretrain,

    rule demo_pretrain:
        input:
            unpack(spec_inputs("demo_pretrain")),
        output:
            directory(GRID.demo_pretrain().out),
        params:
            spec=spec_digest("demo_pretrain"),
            xstilts=untracked(XSTILTS),
            config=untracked(CONFIG),
        conda:
            "../../envs/xstilts.yaml"
        log:
            GRID.demo_pretrain().log,
        shell:
            "{params.xstilts} demo-pretrain --configfile {params.config} > {log} 2>&1"

elif GRID.base_model == L.base_model:

    localrules:
        fetch_model,

    rule fetch_model:
        output:
            directory(GRID.fetch_model().out),
        params:
            spec=spec_digest("fetch_model"),
            xstilts=untracked(XSTILTS),
            config=untracked(CONFIG),
        conda:
            "../../envs/xstilts.yaml"
        log:
            GRID.fetch_model().log,
        shell:
            "{params.xstilts} fetch-model --configfile {params.config} > {log} 2>&1"
