# Phase (ii): intermediate-task training, one job per row and seed; only the encoder is kept. The
# untrained control's "phase (ii)" is the base model's architecture with random weights (seconds of CPU).


localrules:
    init_untrained,


rule train_intermediate:
    wildcard_constraints:
        row=alternatives(GRID.trained_rows),
    input:
        unpack(spec_inputs("train_intermediate")),
    output:
        directory(L.encoder("{row}", "{seed}")),
    params:
        spec=spec_digest("train_intermediate"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    threads: job_threads("train_intermediate")
    resources:
        **job_resources("train_intermediate"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("intermediate", "{row}", "seed={seed}"),
    shell:
        "OMP_NUM_THREADS={threads} exec {params.xstilts} train intermediate {wildcards.row} --seed {wildcards.seed}"
        " --configfile {params.config} > {log} 2>&1"


rule init_untrained:
    input:
        unpack(spec_inputs("init_untrained")),
    output:
        directory(L.encoder(UNTRAINED_ROW, "{seed}")),
    params:
        spec=spec_digest("init_untrained"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("intermediate", UNTRAINED_ROW, "seed={seed}"),
    shell:
        "{params.xstilts} init-untrained --seed {wildcards.seed} --configfile {params.config} > {log} 2>&1"
