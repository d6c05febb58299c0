# Phase (iii): target-task training on English, one job per (row, training set, seed), shared by the
# targets that train on the same data (XQuAD and MLQA on SQuAD); then one evaluation job per cell.


rule train_target:
    input:
        encoder=target_encoder,
        data=lambda wildcards: GRID.dataset_meta(wildcards.trainset),
    output:
        directory(f"{R}/checkpoints/target/{{row}}/{{trainset}}/seed={{seed}}"),
    params:
        data=f"{R}/data/train",
        hparams=lambda wildcards: GRID.hparams_json([wildcards.trainset]),
        state=lambda wildcards: GRID.state(
            "target", wildcards.row, wildcards.trainset, f"seed={wildcards.seed}"
        ),
        save_every=config["training"].get("save_every", 0),
        nproc=job_processes("train_target"),
        deterministic=DETERMINISTIC,
    threads: job_threads("train_target")
    resources:
        **job_resources("train_target"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/target/{{row}}/{{trainset}}/seed={{seed}}.log",
    shell:
        "OMP_NUM_THREADS={threads} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 exec xstilts train --phase target --tasks {wildcards.trainset} --init {input.encoder}"
        " --data {params.data} --out {output} --state {params.state} --hparams {params.hparams:q}"
        " --seed {wildcards.seed} --save-every {params.save_every} --nproc {params.nproc} {params.deterministic} > {log} 2>&1"


rule evaluate:
    input:
        unpack(cell_inputs),
    output:
        f"{R}/scores/intermediate={{row}}/target={{target}}/seed={{seed}}/scores.parquet",
    params:
        data=f"{R}/data/eval",
        hparams=eval_hparams,
        retrieval=eval_retrieval,
        deterministic=DETERMINISTIC,
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/evaluate/{{row}}/{{target}}/seed={{seed}}.log",
    shell:
        "OMP_NUM_THREADS={threads} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 xstilts evaluate --target {wildcards.target} --model {input.model} --data {params.data}"
        " --out {output} --hparams {params.hparams:q} --retrieval {params.retrieval:q} --seed {wildcards.seed}"
        " {params.deterministic} > {log} 2>&1"
