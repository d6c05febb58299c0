# Phase (iii): target-task training on English, one job per (row, training set, seed), shared by the
# targets that train on the same data (XQuAD and MLQA on SQuAD); then one evaluation job per cell.


rule train_target:
    input:
        unpack(spec_inputs("train_target")),
    output:
        directory(L.target_model("{row}", "{trainset}", "{seed}")),
    params:
        spec=spec_digest("train_target"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    threads: job_threads("train_target")
    resources:
        **job_resources("train_target"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("target", "{row}", "{trainset}", "seed={seed}"),
    shell:
        "OMP_NUM_THREADS={threads} exec {params.xstilts} train target {wildcards.row} {wildcards.trainset}"
        " --seed {wildcards.seed} --configfile {params.config} > {log} 2>&1"


rule evaluate:
    input:
        unpack(spec_inputs("evaluate")),
    output:
        scores=L.scores("{row}", "{target}", "{seed}"),
        predictions=L.predictions("{row}", "{target}", "{seed}"),
    params:
        spec=spec_digest("evaluate"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("evaluate", "{row}", "{target}", "seed={seed}"),
    shell:
        "OMP_NUM_THREADS={threads} {params.xstilts} evaluate {wildcards.row} {wildcards.target} --seed {wildcards.seed}"
        " --configfile {params.config} > {log} 2>&1"
