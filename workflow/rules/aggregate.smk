# Tables, plots, results/README.md and results/report.html from every cell's scores (a local rule:
# seconds of CPU). After a failed run the Snakefile's `onerror` writes them from the cells that exist.


localrules:
    aggregate,


rule aggregate:
    input:
        [GRID.scores(r, t, s) for r, t, s in GRID.cells()],
    output:
        TABLES,
        REPORT,
    params:
        args=shlex.join(aggregate_args()),
    conda:
        "../../envs/xstilts.yaml"
    log:
        f"{R}/logs/aggregate.log",
    shell:
        "xstilts aggregate {params.args} > {log} 2>&1"
