# Helpers shared by the rules: the grid and its job specs (xstilts.grid), the results layout, wildcard
# constraints, and the command every rule runs.
import os
import shlex
import subprocess
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from xstilts.catalogue import UNTRAINED_ROW
from xstilts.grid import Grid
from xstilts.launch import SLURM_RESOURCES, slurm_resources
from xstilts.layout import META_FILE
from xstilts.results_io import write_config
from xstilts import warm

GRID = Grid(config)
L = GRID.layout
# Targets and languages that a missing local source leaves out of this grid (Mewsli-X, UD 2.7): said, not fatal.
for _message in GRID.left_out.values():
    print(f"xstilts: {_message}", file=sys.stderr)
# Jobs read the resolved config of this run (every job builds its spec from it); written only when it changed.
write_config(config, L.config)
CONFIG = str(L.config)
# The package, run by the interpreter that runs this workflow (it imports xstilts above), so nothing has to
# be on PATH; with --use-conda, the rule's environment's.
_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
XSTILTS = "python -m xstilts" if _CONDA else shlex.join([sys.executable, "-m", "xstilts"])


def untracked(value):
    """A rule's param that is no rerun trigger (Snakemake leaves params computed from `input` out of it): the
    interpreter and the config's path say how a job runs, not what it computes (its spec digest says that)."""
    return lambda wildcards, input: value


def alternatives(names):
    """A wildcard pattern matching exactly these names (all checked against the catalogue)."""
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


wildcard_constraints:
    row=alternatives(GRID.rows),
    target=alternatives(GRID.targets),
    trainset=alternatives(GRID.trainsets),
    dataset=alternatives(GRID.datasets),
    seed=r"\d+",


def spec(rule):
    """The job spec of a rule's job, from its wildcards."""
    return lambda wildcards: GRID.spec(rule, **wildcards)


def spec_inputs(rule):
    return lambda wildcards: {k: str(v) for k, v in GRID.spec(rule, **wildcards).inputs.items()}


def spec_digest(rule):
    """What decides the job's outputs: a change reruns that job (Snakemake's params trigger)."""
    return lambda wildcards: GRID.spec(rule, **wildcards).digest


def job_resources(rule):
    """A GPU rule's `resources:` for the SLURM plugin from its spec's size (`xstilts.launch.slurm_resources`:
    GPUs, CPUs per GPU, memory, minutes; nodes and tasks for a job of several tasks)."""

    def get(name):
        return lambda wildcards: slurm_resources(GRID.spec(rule, **wildcards).size)[name]

    return {name: get(name) for name in SLURM_RESOURCES}


def job_threads(rule):
    """A GPU job's threads: its CPUs (cpus_per_gpu x gpu)."""
    return lambda wildcards: GRID.spec(rule, **wildcards).size.threads


def refresh_partial_report():
    """The tables, results/README.md and report.html after a failed run, from the cells that exist,
    the failed and missing ones marked (the aggregate job itself waits for every cell)."""
    if not any(L.scores_dir.rglob("*.parquet")):
        return
    log = GRID.aggregate().log
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run([*shlex.split(XSTILTS), "aggregate", "--configfile", CONFIG], stdout=out,
                              stderr=subprocess.STDOUT)
    print(f"Partial grid: tables and {L.readme} refreshed (cells marked failed, corrupt or missing)"
          if done.returncode == 0 else f"Refreshing the tables of the partial grid failed: see {log}")


RESIDENT = {}


def start_warm():
    """A local run's jobs start warm (`xstilts.warm`): forked from one process that has imported torch and
    transformers once. Never on a cluster (each job its own process on its own node) nor with --sdm conda or
    apptainer (a job runs in its rule's environment); `warm_start: false` in the config turns it off."""
    local = workflow.local_exec and workflow.is_main_process and not workflow.deployment_settings.deployment_method
    if not (config.get("warm_start", True) and local):
        return
    resident = warm.start(L.log("warm_start"))
    if resident is not None:
        RESIDENT["process"] = resident
        os.environ[warm.SOCKET_ENV] = str(resident.socket)  # the jobs' environment


def stop_warm():
    if resident := RESIDENT.pop("process", None):
        os.environ.pop(warm.SOCKET_ENV, None)
        warm.stop(resident)
