# Alignment probes (config `alignment`): one job per phase-(ii) encoder and seed (the baseline's and the
# untrained control's included), on the prepared data of the grid's parallel targets; sized as an evaluation.


rule align:
    input:
        unpack(spec_inputs("align")),
    output:
        L.alignment("{row}", "{seed}"),
    params:
        spec=spec_digest("align"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    threads: job_threads("align")
    resources:
        **job_resources("align"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        L.log("alignment", "{row}", "seed={seed}"),
    shell:
        "OMP_NUM_THREADS={threads} {params.xstilts} align {wildcards.row} --seed {wildcards.seed}"
        " --configfile {params.config} > {log} 2>&1"
