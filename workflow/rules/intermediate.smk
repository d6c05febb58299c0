# Phase (ii): intermediate-task training, one job per row and seed; only the encoder is kept. The
# untrained control's "phase (ii)" is the base model's architecture with random weights (seconds of CPU).


localrules:
    init_untrained,


rule train_intermediate:
    wildcard_constraints:
        row=alternatives(GRID.trained_rows),
    input:
        encoder=GRID.base_model(),
        data=row_data,
    output:
        directory(f"{R}/checkpoints/intermediate/{{row}}/seed={{seed}}"),
    params:
        data=f"{R}/data/train",
        tasks=lambda wildcards: GRID.row_tasks(wildcards.row),
        hparams=lambda wildcards: GRID.hparams_json(GRID.row_tasks(wildcards.row)),
        sampling=json.dumps(config.get("multitask", {})),
        mlm=lambda wildcards: json.dumps(GRID.row_mlm(wildcards.row)),
        state=lambda wildcards: GRID.state("intermediate", wildcards.row, f"seed={wildcards.seed}"),
        save_every=config["training"].get("save_every", 0),
        nproc=job_processes("train_intermediate"),
        deterministic=DETERMINISTIC,
    threads: job_threads("train_intermediate")
    resources:
        **job_resources("train_intermediate"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/intermediate/{{row}}/seed={{seed}}.log",
    shell:
        "OMP_NUM_THREADS={threads} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 exec xstilts train --phase intermediate --tasks {params.tasks} --init {input.encoder}"
        " --data {params.data} --out {output} --state {params.state} --hparams {params.hparams:q}"
        " --sampling {params.sampling:q} --mlm {params.mlm:q} --seed {wildcards.seed} --save-every {params.save_every} --nproc {params.nproc}"
        " {params.deterministic} > {log} 2>&1"


rule init_untrained:
    input:
        GRID.base_model(),
    output:
        directory(f"{R}/checkpoints/intermediate/{UNTRAINED_ROW}/seed={{seed}}"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/intermediate/{UNTRAINED_ROW}/seed={{seed}}.log",
    shell:
        "xstilts init-untrained --like {input} --out {output} --seed {wildcards.seed} > {log} 2>&1"
