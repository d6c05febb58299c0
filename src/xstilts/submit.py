"""Cells of the grid as SLURM job arrays through submitit, for work from Python or a notebook.

    from xstilts.config import load_config
    from xstilts.submit import submit
    for spec, job in submit([("mnli", "xnli", 1)], config=load_config([Path("config.yaml")])):
        print(spec.key, job.job_id)   # job.result() waits for it

The jobs are the workflow's own (a phase-(ii) training, a phase-(iii) training, an evaluation): the grid's
job specs, run by the functions its rules run (`xstilts.jobs.run`) into the same `results/` layout, so the grid's tables
include them. They are sized like Snakemake's jobs: config `resources` per phase and task, partition,
account and GPU model from the cluster profile's `default-resources`, the signal's lead from the
workflow profile's `set-resources` (profiles/default). A cell's jobs form three
arrays, each waiting for the one before (afterok); a training shared by several cells runs once, and a
job whose output exists is not submitted. Each task is a `submitit.helpers.Checkpointable`: on the
signal before the time limit (or on preemption) the trainer saves its state at the next step, submitit
requeues the task, and the requeued task resumes from that state (`results/state/`), exactly.
A training of several processes runs as the Snakemake rules run it (`xstilts.launch`): one SLURM task per
launcher (`nodes` x `tasks_per_node`), each a torchrun agent in this process (`elastic_launch`) whose workers
meet the other tasks' in a c10d rendezvous; on the signal every worker saves its shard, then the job is requeued.
"""

from __future__ import annotations

import ast
import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import astuple
from itertools import groupby
from pathlib import Path
from typing import Any

import submitit
import yaml

from xstilts.grid import Cell, Grid
from xstilts.launch import SIGNAL_LEAD_S, slurm_rendezvous
from xstilts.settings import JobSize
from xstilts.specs import EvaluateSpec, InitUntrainedSpec, TrainSpec, from_json
from xstilts.status import output

STAGES = ("train_intermediate", "train_target", "evaluate")
WORKFLOW_PROFILE = Path("profiles/default")  # the workflow's own settings, which Snakemake adds to every run



class SubmitError(ValueError):
    """Cells that cannot be submitted (not in the configured grid, or their data not prepared)."""


def profile_file(profile: Path | str) -> Path:
    """A Snakemake profile's YAML file, found as `snakemake --profile` finds it: a file, a folder, or a name
    looked up in the working directory, ~/.config/snakemake, then /etc/xdg/snakemake."""
    from snakemake.cli import get_profile_dir

    found = get_profile_dir(str(profile))
    if found is None:
        raise SubmitError(f"no Snakemake profile {str(profile)!r}: give a folder with a config.yaml, or a name "
                          "under ~/.config/snakemake or /etc/xdg/snakemake (`make slurm-profile` installs `slurm`)")
    return found[1].resolve()


def profile_settings(profiles: Sequence[Path | str]) -> dict[str, Any]:
    """The settings of these profiles, a later one replacing an earlier one's keys (as the workflow profile
    does the --profile's)."""
    settings: dict[str, Any] = {}
    for profile in profiles:
        settings.update(yaml.safe_load(profile_file(profile).read_text()) or {})
    return settings


def profile_resources(profiles: Sequence[Path | str], rule: str) -> dict[str, Any]:
    """The resources that Snakemake gives a job of `rule` from these profiles (`profile_settings`):
    `default-resources` (slurm_partition, slurm_account, gpu_model, ...), then the rule's `set-resources`
    (slurm_extra)."""
    settings = profile_settings(profiles)
    return {**_resources(settings.get("default-resources")),
            **_resources((settings.get("set-resources") or {}).get(rule))}


def _resources(entries: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Resources as a profile writes them (NAME=VALUE strings or a mapping), values evaluated as literals."""
    pairs = entries.items() if isinstance(entries, Mapping) else (str(e).partition("=")[::2] for e in entries or [])
    out: dict[str, Any] = {}
    for name, value in pairs:
        try:
            out[name.strip()] = ast.literal_eval(value.strip()) if isinstance(value, str) else value
        except (ValueError, SyntaxError):
            out[name.strip()] = value.strip()
    return out


def plan(grid: Grid, cells: Sequence[Cell]) -> list[list[TrainSpec | EvaluateSpec]]:
    """The jobs that the cells still need, one list per stage (phase ii, phase iii, evaluation)."""
    stages: list[dict[tuple[str, ...], TrainSpec | EvaluateSpec]] = [{}, {}, {}]
    for row, target, seed in cells:
        for spec in grid.cell_jobs(row, target, seed):
            if isinstance(spec, TrainSpec | EvaluateSpec):
                stage = 2 if isinstance(spec, EvaluateSpec) else 0 if spec.phase == "intermediate" else 1
                stages[stage][spec.key] = spec
    return [[spec for _, spec in sorted(stage.items()) if not output(spec).exists()] for stage in stages]


def prepared_inputs(grid: Grid, cells: Sequence[Cell]) -> list[str]:
    """What the login node prepares for these cells (local rules): base model, data caches, the
    untrained control's encoder: every input of their jobs that no job of theirs makes."""
    jobs = [spec for row, target, seed in cells for spec in grid.cell_jobs(row, target, seed)
            if not isinstance(spec, InitUntrainedSpec)]
    made = {output(spec) for spec in jobs}
    return sorted({str(path) for spec in jobs for path in spec.inputs.values() if path not in made})


class GridJob(submitit.helpers.Checkpointable):
    """What each array task runs. submitit's own signal is USR1 (see `sbatch_parameters`): before and
    after training its handler checkpoints (the same call again) and requeues at once; during training
    the trainer takes USR1 and TERM over, saves its state at the next step and raises `Preempted` (a
    training of several processes: this task's torchrun agent waits for its workers to save), and then
    submitit's handler requeues."""

    def __call__(self, spec: TrainSpec | EvaluateSpec) -> str:
        from torch.distributed.elastic.multiprocessing import SignalException

        from xstilts.errors import Preempted
        from xstilts.jobs import run

        requeue = signal.getsignal(signal.SIGUSR1)  # submitit's checkpoint-and-requeue handler
        try:
            if isinstance(spec, TrainSpec) and spec.size.processes > 1:
                if "preempted" in _launch(spec).values():
                    raise Preempted(f"{' '.join(spec.key)}: state saved")
            else:
                run(spec)
            return str(output(spec))
        except (Preempted, SignalException):
            if callable(requeue):
                requeue(signal.SIGUSR1, None)  # requeues and exits
            raise


def _launch(spec: TrainSpec) -> dict[int, str]:
    """This task's torchrun agent, its workers training `spec` with the job's other tasks' (the rendezvous of
    `xstilts.launch`); each worker's outcome."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    meet = slurm_rendezvous(os.environ)
    config = LaunchConfig(min_nodes=meet.agents, max_nodes=meet.agents, nproc_per_node=spec.size.processes_per_task,
                          run_id=meet.run_id, rdzv_backend="c10d", rdzv_endpoint=meet.endpoint,
                          rdzv_configs={"is_host": meet.is_host}, max_restarts=0,
                          signals_to_handle="SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", shutdown_timeout=SIGNAL_LEAD_S)
    return elastic_launch(config, _train_worker)(spec.to_json())


def _train_worker(spec: dict[str, Any]) -> str:
    """One worker of a training of several processes: "done", or "preempted" when it saved its state."""
    from xstilts.errors import Preempted
    from xstilts.jobs import train

    try:
        train(from_json(spec))
    except Preempted:
        return "preempted"
    return "done"


def sbatch_parameters(size: JobSize, profile: Mapping[str, Any]) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters for a job of this size: the sbatch options that the
    Snakemake SLURM plugin passes for the same job (--gpus or --gres, --cpus-per-gpu, --mem, -t, -p,
    -A), the requeue flag and the signal before the time limit."""
    lead = re.search(r"--signal=(?:\w+:)?\w+@(\d+)", str(profile.get("slurm_extra", "")))
    delay = int(lead.group(1)) if lead else SIGNAL_LEAD_S
    extra: dict[str, Any] = {"cpus_per_gpu": size.cpus_per_gpu, "signal": f"USR1@{delay}", "requeue": True,
                             "kill_on_invalid_dep": "yes"}
    # one task: --gpus (as the Snakemake plugin asks); several: each task's own (--gpus-per-task)
    gpus, option = (size.gpu, "gpus") if size.tasks == 1 else (size.gpu // size.tasks_per_node, "gpus_per_task")
    if gpus:
        extra[option] = f"{profile['gpu_model']}:{gpus}" if profile.get("gpu_model") else gpus
    if profile.get("gres"):
        extra["gres"] = profile["gres"]
    params: dict[str, Any] = {
        "time": size.runtime, "mem": f"{size.mem_mb}M", "signal_delay_s": delay,
        "additional_parameters": extra,
        "setup": [f"export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS={size.threads}",
                  "export SUBMITIT_PREEMPT_SIGNAL=USR1"],
    }
    if size.tasks > 1:
        params.update(nodes=size.nodes, ntasks_per_node=size.tasks_per_node)
    for name, key in (("partition", "slurm_partition"), ("account", "slurm_account")):
        if profile.get(key):
            params[name] = str(profile[key])
    return params


def submit(cells: Sequence[Cell], *, config: Mapping[str, Any], profile: Path | str = Path("profiles/slurm"),
           folder: Path | None = None, workflow_profile: Path = WORKFLOW_PROFILE
           ) -> list[tuple[TrainSpec | EvaluateSpec, submitit.Job]]:
    """Submit what the cells need (see the module's docstring); returns each job's spec with its array task.
    `profile` is the cluster profile (a folder, or a name as for `snakemake --profile`).

    Paths in `config` are taken relative to the current directory (the workflow's directory)."""
    grid = Grid({**config, "results": str(Path(config["results"]).resolve())})
    outside = sorted(set(cells) - set(grid.cells()))
    if outside:
        raise SubmitError(f"not cells of the configured grid (rows x targets x seeds): {outside}")
    missing = [p for p in prepared_inputs(grid, cells) if not Path(p).exists()]
    if missing:
        raise SubmitError("prepare the data on the login node first, e.g. `snakemake --profile "
                          f"{profile} --configfile ... {' '.join(missing)}`")
    profiles = [profile_file(profile), *([workflow_profile] if workflow_profile.exists() else [])]
    executor = submitit.SlurmExecutor(folder=folder or grid.layout.submitit)
    runner = GridJob()
    jobs: list[tuple[TrainSpec | EvaluateSpec, submitit.Job]] = []
    after: list[str] = []
    for rule, specs in zip(STAGES, plan(grid, cells), strict=True):
        defaults = profile_resources(profiles, rule)
        stage: list[tuple[TrainSpec | EvaluateSpec, submitit.Job]] = []
        for size, group in groupby(sorted(specs, key=lambda s: astuple(s.size)), key=lambda s: s.size):
            params = sbatch_parameters(size, defaults)
            if after:
                params["additional_parameters"]["dependency"] = "afterok:" + ":".join(after)
            executor.update_parameters(job_name=f"xstilts_{rule}", **params)
            group_specs = list(group)
            stage += zip(group_specs, executor.map_array(runner, group_specs), strict=True)
        if stage:
            after = sorted({job.job_id.split("_")[0] for _, job in stage})
            jobs += stage
    return jobs


def parse_cells(names: Sequence[str], grid: Grid, seed: int | None = None) -> list[Cell]:
    """`ROW:TARGET` names (every cell of the grid when none) for the given seed (else every seed)."""
    seeds = [seed] if seed is not None else grid.seeds
    if not names:
        return [c for c in grid.cells() if c[2] in seeds]
    cells = []
    for name in names:
        row, sep, target = name.partition(":")
        if not sep:
            raise SubmitError(f"{name!r}: a cell is ROW:TARGET, e.g. mnli:xnli")
        cells += [(row, target, s) for s in seeds]
    return cells
