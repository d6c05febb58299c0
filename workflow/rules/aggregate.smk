# Tables, plots, results/README.md and results/report.html from every cell's scores (a local rule:
# seconds of CPU). After a failed run the Snakefile's `onerror` writes them from the cells that exist.


localrules:
    aggregate,


rule aggregate:
    input:
        GRID.aggregate().cells,
        GRID.aggregate().alignments,
    output:
        **GRID.aggregate().outputs,
    params:
        spec=spec_digest("aggregate"),
        xstilts=untracked(XSTILTS),
        config=untracked(CONFIG),
    conda:
        "../../envs/xstilts.yaml"
    log:
        GRID.aggregate().log,
    shell:
        "{params.xstilts} aggregate --configfile {params.config} > {log} 2>&1"
