"""How a training job's processes start: torchrun on one node, one torchrun per SLURM task across nodes.

`xstilts train` replaces itself step by step (`next_command`): a job of several tasks (`JobSize.tasks`) runs
`srun`, one task per launcher (submitit starts its tasks itself); in each task, or in a job of one task with
several processes, it becomes a torchrun agent; torchrun's workers train. Agents of several tasks meet in a
c10d rendezvous at the first host of `SLURM_JOB_NODELIST`, on a port derived from the job id, with the job id as
the rendezvous id (a requeued job keeps its id and meets again). SLURM's signals reach every process of the
step: every worker saves its shard. Everything here is a pure function of a job size and SLURM's environment.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xstilts.settings import JobSize

# Seconds before the time limit that SLURM signals a job (profiles/default's `--signal=TERM@300`): the time a
# stopped training has to save its state. torchrun waits as long for its workers before it kills them.
SIGNAL_LEAD_S = 300
# Rendezvous ports: PORT_BASE + job id modulo PORT_SPAN, below Linux's ephemeral ports (32768 and up).
PORT_BASE, PORT_SPAN = 15000, 15000
IN_SRUN = "XSTILTS_SRUN"  # set for the tasks that `xstilts train` started with srun
# The resources a GPU rule gives the Snakemake SLURM plugin (`slurm_resources`).
SLURM_RESOURCES = ("gpu", "cpus_per_gpu", "mem_mb", "runtime", "nodes", "tasks", "tasks_per_gpu", "mpi",
                   "cpus_per_task")

_BRACKETS = re.compile(r"\[([^\]]*)\]")


def hostnames(nodelist: str) -> list[str]:
    """A SLURM hostlist expression expanded, in order: `gpu[01-02],gpu07` -> gpu01, gpu02, gpu07; ranges keep
    their zero padding; several bracket groups in one name (`r[1-2]n[1-2]`) multiply."""
    hosts: list[str] = []
    for item in _split_top_level(nodelist):
        parts = _BRACKETS.split(item)  # literal, group, literal, group, ..., literal
        choices = [[part] if i % 2 == 0 else _expand_group(part) for i, part in enumerate(parts)]
        hosts += ["".join(combo) for combo in itertools.product(*choices)]
    return hosts


def _split_top_level(nodelist: str) -> list[str]:
    """The comma-separated items of a hostlist, commas inside brackets kept."""
    items, depth, current = [], 0, ""
    for char in nodelist.strip():
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise ValueError(f"unbalanced brackets in SLURM hostlist {nodelist!r}")
    return [item for item in [*items, current] if item]


def _expand_group(group: str) -> list[str]:
    """`01-03,07` -> 01, 02, 03, 07."""
    out = []
    for piece in group.split(","):
        first, _, last = piece.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"bad range {piece!r} in a SLURM hostlist")
        out += [f"{n:0{len(first)}d}" for n in range(int(first), int(last or first) + 1)]
    return out


def rendezvous_port(job_id: int | str) -> int:
    """The job's rendezvous port: the same for every task of the job and for a requeue of it."""
    return PORT_BASE + int(job_id) % PORT_SPAN


@dataclass(frozen=True)
class Rendezvous:
    """Where a job's torchrun agents meet: the c10d store's host and port, the run id, how many agents."""

    host: str
    port: int
    run_id: str
    agents: int
    is_host: bool  # whether this agent hosts the store (SLURM's task 0, on the first host)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def slurm_rendezvous(env: Mapping[str, str]) -> Rendezvous:
    """The rendezvous of the SLURM job this process is a task of (SLURM_JOB_NODELIST, SLURM_JOB_ID, which an
    array task has of its own and a requeued job keeps, SLURM_NTASKS, SLURM_PROCID)."""
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    missing = [v for v in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID") if v not in env] + \
        ([] if nodelist else ["SLURM_JOB_NODELIST"])
    if missing:
        raise RuntimeError(f"not a task of a SLURM job ({', '.join(missing)} unset): a job of several tasks "
                           "starts under srun")
    job = env["SLURM_JOB_ID"]
    return Rendezvous(host=hostnames(nodelist)[0], port=rendezvous_port(job), run_id=job,
                      agents=int(env["SLURM_NTASKS"]), is_host=env["SLURM_PROCID"] == "0")


def torchrun_args(size: JobSize, rendezvous: Rendezvous | None) -> list[str]:
    """torchrun's options for a launcher of a job of this size: standalone on one task, else the rendezvous."""
    common = [f"--nproc-per-node={size.processes_per_task}", "--max-restarts=0",
              f"--shutdown-timeout={SIGNAL_LEAD_S}"]
    if rendezvous is None:
        return ["--standalone", *common]
    return [f"--nnodes={rendezvous.agents}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rendezvous.endpoint}",
            f"--rdzv-id={rendezvous.run_id}", f"--rdzv-conf=is_host={int(rendezvous.is_host)}", *common]


def srun_command(size: JobSize, argv: Sequence[str]) -> list[str]:
    """`srun` starting `python -m xstilts ARGV` once per task of a job of several tasks, each task bound to its
    GPUs and CPUs; a failed task ends them all."""
    gpus = [f"--gpus-per-task={size.gpu // size.tasks_per_node}"] if size.gpu else []
    return ["srun", f"--nodes={size.nodes}", f"--ntasks={size.tasks}", f"--ntasks-per-node={size.tasks_per_node}",
            f"--cpus-per-task={size.cpus_per_gpu * size.processes_per_task}", *gpus, "--kill-on-bad-exit=1",
            f"--export=ALL,{IN_SRUN}=1", sys.executable, "-m", "xstilts", *argv]


def next_command(size: JobSize, env: Mapping[str, str], argv: Sequence[str]) -> list[str] | None:
    """What `xstilts ARGV` (a training of this size) becomes next: srun for a job of several tasks not yet
    started by it, torchrun where this process is to start several workers, None where it trains itself."""
    if "LOCAL_RANK" in env:  # a torchrun worker
        return None
    if size.tasks > 1 and IN_SRUN not in env:
        return srun_command(size, argv)
    if size.processes > 1:
        rendezvous = slurm_rendezvous(env) if size.tasks > 1 else None
        return [sys.executable, "-m", "torch.distributed.run", *torchrun_args(size, rendezvous), "-m", "xstilts",
                *argv]
    return None


def slurm_resources(size: JobSize) -> dict[str, Any]:
    """The resources (SLURM_RESOURCES) a rule gives the Snakemake SLURM plugin for a job of this size: GPUs (the
    whole job's), CPUs per GPU, memory per node, minutes; for several tasks also nodes, tasks, and `mpi` (the
    plugin then runs the rule's command without its own `srun -n1`, and asks for --ntasks; `tasks_per_gpu: 0`
    keeps it from reading the tasks as --ntasks-per-gpu). None: not passed (Snakemake drops it)."""
    several = size.tasks > 1
    return {"gpu": size.gpus, "cpus_per_gpu": size.cpus_per_gpu, "mem_mb": size.mem_mb, "runtime": size.runtime,
            "nodes": size.nodes if several else None, "tasks": size.tasks if several else None,
            "tasks_per_gpu": 0 if several and size.gpu else None, "mpi": "srun" if several else None,
            # CPU-only: --cpus-per-task (else the plugin asks for the job's threads per task)
            "cpus_per_task": size.cpus_per_gpu if several and not size.gpu else None}
