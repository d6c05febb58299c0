# Tables, plots, results/README.md and results/report.html from every cell's scores (a local rule:
# seconds of CPU).


localrules:
    aggregate,


rule aggregate:
    input:
        [GRID.scores(r, t, s) for r, t, s in GRID.cells()],
    output:
        TABLES,
        REPORT,
    params:
        scores=lambda wildcards, input: Path(input[0]).parents[3],
        tables=lambda wildcards, output: os.path.dirname(output[0]),
        checkpoints=f"{R}/checkpoints",
        rows=GRID.rows,
        targets=GRID.targets,
        seeds=GRID.seeds,
        variants=json.dumps(config.get("variants") or {}),
        report=lambda wildcards, output: os.path.dirname(output[-1]),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/aggregate.log",
    shell:
        "xstilts aggregate --scores {params.scores} --out {params.tables} --rows {params.rows}"
        " --targets {params.targets} --checkpoints {params.checkpoints} --seeds {params.seeds}"
        " --variants {params.variants:q} --report {params.report} > {log} 2>&1"
