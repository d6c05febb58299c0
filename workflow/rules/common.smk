# Helpers shared by the rules: the grid (xstilts.grid), paths, wildcard constraints, CLI arguments.
import json
import shlex
import subprocess
from pathlib import Path

from xstilts.catalogue import TARGETS, UNTRAINED_ROW
from xstilts.grid import Grid

GRID = Grid(config)
R = str(GRID.results)
TABLES = [f"{R}/tables/transfer.md", f"{R}/tables/delta.md"]
REPORT = [f"{R}/README.md", f"{R}/report.html"]
# config `deterministic`: training and evaluation with deterministic kernels only (GPU runs; see README)
DETERMINISTIC = "--deterministic" if config.get("deterministic") else ""


def alternatives(names):
    """A wildcard pattern matching exactly these names (all checked against the catalogue)."""
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


wildcard_constraints:
    row=alternatives(GRID.rows),
    target=alternatives(GRID.targets),
    trainset=alternatives(GRID.trainsets),
    dataset=alternatives(GRID.datasets),
    seed=r"\d+",


def demo_inputs():
    """The demo's generated hub mirror, which every data-preparing rule reads in demo runs."""
    return [f"{R}/demo/hub"] if GRID.demo else []


def demo_translations():
    """Demo only: the generated stand-ins for machine-translated data, per task and language."""
    return {v["task"]: v["translations"]["languages"] for v in GRID.variants.values() if v.get("translations")}


def row_data(wildcards):
    return [GRID.dataset_meta(t) for t in GRID.row_tasks(wildcards.row)]


def target_encoder(wildcards):
    return GRID.encoder(wildcards.row, wildcards.seed)


def cell_inputs(wildcards):
    return {
        "model": GRID.cell_model(wildcards.row, wildcards.target, wildcards.seed),
        "data": GRID.target_meta(wildcards.target),
    }


SIZED_BY = {"train_intermediate": "row", "train_target": "trainset", "evaluate": "target"}


def job_resources(rule):
    """A GPU rule's `resources:` (the SLURM plugin's gpu, cpus_per_gpu, mem_mb, runtime) from config
    `resources`, sized by the wildcard that names the job's task."""

    def get(name):
        return lambda wildcards: GRID.job_size(rule, wildcards[SIZED_BY[rule]]).get(name)

    return {name: get(name) for name in ("gpu", "cpus_per_gpu", "mem_mb", "runtime")}


def job_threads(rule):
    """A GPU job's threads: its CPUs (cpus_per_gpu x gpu, from config `resources`; 4 without)."""

    def threads(wildcards):
        size = GRID.job_size(rule, wildcards[SIZED_BY[rule]])
        return size.get("cpus_per_gpu", 4) * max(1, size.get("gpu", 1))

    return threads


def job_processes(rule):
    """Training processes (one per GPU: data parallel under torchrun when a job has several)."""
    return lambda wildcards: max(1, GRID.job_size(rule, wildcards[SIZED_BY[rule]]).get("gpu") or 1)


def eval_hparams(wildcards):
    trainset = TARGETS[wildcards.target].trainset
    return json.dumps(GRID.hparams(trainset) if trainset else {}, sort_keys=True)


def eval_retrieval(wildcards):
    return json.dumps(GRID.retrieval(wildcards.target), sort_keys=True)


def aggregate_args():
    """`xstilts aggregate` arguments for this grid: tables, manifest, results/README.md, report.html."""
    return ["--scores", f"{R}/scores", "--out", f"{R}/tables", "--rows", *GRID.rows, "--targets", *GRID.targets,
            "--checkpoints", f"{R}/checkpoints", "--seeds", *map(str, GRID.seeds),
            "--variants", json.dumps(config.get("variants") or {}), "--report", R]


def refresh_partial_report():
    """The tables, results/README.md and report.html after a failed run, from the cells that exist,
    the failed and missing ones marked (the aggregate job itself waits for every cell)."""
    if not any(Path(R, "scores").rglob("scores.parquet")):
        return
    log = Path(R, "logs", "aggregate.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(["xstilts", "aggregate", *aggregate_args()], stdout=out, stderr=subprocess.STDOUT)
    print(f"Partial grid: tables and {R}/README.md refreshed (cells marked failed or missing)"
          if done.returncode == 0 else f"Refreshing the tables of the partial grid failed: see {log}")
