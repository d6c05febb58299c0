# Tables and plots from every cell's scores (a local rule: seconds of CPU).


localrules:
    aggregate,


rule aggregate:
    input:
        [GRID.scores(r, t, s) for r, t, s in GRID.cells()],
    output:
        TABLES,
    params:
        rows=GRID.rows,
        targets=GRID.targets,
    log:
        f"{R}/logs/aggregate.log",
    shell:
        "xstilts aggregate --scores {R}/scores --out {R}/tables --rows {params.rows}"
        " --targets {params.targets} --checkpoints {R}/checkpoints > {log} 2>&1"
