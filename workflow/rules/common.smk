# Helpers shared by the rules: the grid (xstilts.grid), paths, wildcard constraints, CLI arguments.
import json
from pathlib import Path

from xstilts.catalogue import TARGETS
from xstilts.grid import Grid, check_config

check_config(config)
GRID = Grid(config)
R = str(GRID.results)
TABLES = [f"{R}/tables/transfer.md", f"{R}/tables/delta.md"]
REPORT = [f"{R}/README.md", f"{R}/report.html"]


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
