"""How a job's processes start (xstilts.launch): SLURM hostlists, the rendezvous derived from SLURM's
environment on multi-node values, the commands `xstilts train` becomes, what the Snakemake SLURM plugin and
submitit ask SLURM for."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from snakemake_executor_plugin_slurm.submit_string import get_submit_command

from tests.grids import ROOT
from xstilts.config import ConfigError, load_config
from xstilts.launch import (
    IN_SRUN,
    PORT_BASE,
    PORT_SPAN,
    hostnames,
    next_command,
    rendezvous_port,
    slurm_rendezvous,
    slurm_resources,
)
from xstilts.settings import JobSize
from xstilts.submit import sbatch_parameters

TWO_NODES = JobSize(gpu=4, cpus_per_gpu=8, mem_mb=64000, runtime=240, nodes=2)
ARGV = ["train", "target", "none", "pawsx", "--seed", "1", "--configfile", "results/config.yaml"]


@pytest.mark.parametrize(("nodelist", "hosts"), [
    ("gpu07", ["gpu07"]),
    ("gpu[01-04],gpu07", ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07"]),
    ("gpu[09-11]", ["gpu09", "gpu10", "gpu11"]),
    ("node[1,3-4],login", ["node1", "node3", "node4", "login"]),
    ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
    ("a-1.b,c[8-9].cluster", ["a-1.b", "c8.cluster", "c9.cluster"]),
])
def test_hostlist_expressions_expand_in_slurms_order(nodelist: str, hosts: list[str]) -> None:
    assert hostnames(nodelist) == hosts


def test_bad_hostlists_are_refused() -> None:
    for bad in ("gpu[01-04", "gpu[a-b]"):
        with pytest.raises(ValueError):
            hostnames(bad)


def test_rendezvous_of_a_multi_node_job_is_the_same_for_every_task() -> None:
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[01-04],gpu07", "SLURM_NTASKS": "5"}
    tasks = [slurm_rendezvous({**env, "SLURM_PROCID": str(i)}) for i in range(5)]
    assert {(r.endpoint, r.run_id, r.agents) for r in tasks} == {("gpu01:19242", "4242", 5)}
    assert [r.is_host for r in tasks] == [True, False, False, False, False]  # task 0 holds the store
    assert slurm_rendezvous({**env, "SLURM_JOB_NODELIST": "", "SLURM_NODELIST": "n[3-4]",
                             "SLURM_PROCID": "1"}).host == "n3"
    with pytest.raises(RuntimeError, match=r"SLURM_JOB_ID, SLURM_JOB_NODELIST unset"):
        slurm_rendezvous({"SLURM_NTASKS": "2", "SLURM_PROCID": "0"})


def test_rendezvous_ports_stay_in_their_range_and_differ_between_neighbouring_jobs() -> None:
    ports = [rendezvous_port(job) for job in range(1, 40_000, 7)]
    assert all(PORT_BASE <= p < PORT_BASE + PORT_SPAN < 32768 for p in ports)  # below the ephemeral range
    assert len({rendezvous_port(job) for job in range(1000, 1100)}) == 100


def test_xstilts_train_becomes_srun_then_torchrun_agents_then_trains() -> None:
    env = {"SLURM_JOB_ID": "77", "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_NTASKS": "2", "SLURM_PROCID": "1"}
    srun = next_command(TWO_NODES, env, ARGV)
    assert srun[:7] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--cpus-per-task=32",
                        "--gpus-per-task=4", "--kill-on-bad-exit=1"]
    assert srun[7:] == [f"--export=ALL,{IN_SRUN}=1", sys.executable, "-m", "xstilts", *ARGV]
    agent = next_command(TWO_NODES, {**env, IN_SRUN: "1"}, ARGV)
    assert agent[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert agent[3:10] == ["--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu01:15077", "--rdzv-id=77",
                           "--rdzv-conf=is_host=0", "--nproc-per-node=4", "--max-restarts=0"]
    assert agent[-len(ARGV) - 2:] == ["-m", "xstilts", *ARGV]
    assert next_command(TWO_NODES, {**env, IN_SRUN: "1", "LOCAL_RANK": "3"}, ARGV) is None  # a worker trains
    one_node = JobSize(gpu=2, cpus_per_gpu=8, mem_mb=1, runtime=1)
    assert "--standalone" in next_command(one_node, {}, ARGV)  # no SLURM needed
    assert next_command(JobSize(gpu=1, cpus_per_gpu=8, mem_mb=1, runtime=1), {}, ARGV) is None


def test_tasks_per_node_share_the_nodes_gpus() -> None:
    size = JobSize(gpu=2, cpus_per_gpu=1, mem_mb=2000, runtime=10, tasks_per_node=2)
    assert (size.tasks, size.processes_per_task, size.processes, size.threads) == (2, 1, 2, 2)
    assert "--gpus-per-task=1" in next_command(size, {}, ARGV)
    cpu = JobSize(gpu=0, cpus_per_gpu=3, mem_mb=1, runtime=1, nodes=2)
    assert (cpu.processes, cpu.gpus) == (2, 0) and not any(a.startswith("--gpus") for a in next_command(cpu, {}, ARGV))
    with pytest.raises(ValueError, match="does not divide"):
        JobSize(gpu=3, cpus_per_gpu=1, mem_mb=1, runtime=1, tasks_per_node=2)


def _sbatch(resources: dict, threads: int = 8) -> str:
    """The sbatch call the Snakemake SLURM plugin makes for a job with these resources (None: dropped, as
    Snakemake drops resources that evaluate to None)."""
    present = {k: v for k, v in resources.items() if v is not None}
    job = SimpleNamespace(resources=SimpleNamespace(get=present.get, **present), threads=threads)
    params = {"run_uuid": "x", "slurm_logfile": "log", "comment_str": "c", "account": "", "partition": "-p gpu",
              "workdir": ""}
    return get_submit_command(job, params)


def test_the_plugin_asks_for_nodes_tasks_and_gpus_of_a_multi_node_job() -> None:
    call = _sbatch(slurm_resources(TWO_NODES))
    assert " --nodes=2" in call and " --ntasks=2" in call
    assert "--ntasks-per-gpu" not in call and "--cpus-per-gpu=8" in call and "--mem 64000" in call
    single = _sbatch(slurm_resources(JobSize(gpu=1, cpus_per_gpu=8, mem_mb=32000, runtime=240)))
    assert "--nodes" not in single and "--ntasks" not in single and "--cpus-per-gpu=8" in single
    assert slurm_resources(TWO_NODES)["gpu"] == 8  # the plugin's --gpus is the job's total
    cpu = _sbatch(slurm_resources(JobSize(gpu=0, cpus_per_gpu=2, mem_mb=1, runtime=1, tasks_per_node=2)))
    assert "--ntasks=2" in cpu and "--cpus-per-task=2" in cpu


def test_submitit_asks_for_tasks_per_node_and_each_tasks_gpus() -> None:
    params = sbatch_parameters(TWO_NODES, {"gpu_model": "h100"})
    assert params["nodes"] == 2 and params["ntasks_per_node"] == 1
    assert params["additional_parameters"]["gpus_per_task"] == "h100:4"
    assert "gpus" not in params["additional_parameters"]
    single = sbatch_parameters(JobSize(gpu=1, cpus_per_gpu=8, mem_mb=1, runtime=1), {})
    assert "nodes" not in single and single["additional_parameters"]["gpus"] == 1


def test_an_evaluation_of_several_processes_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"resources.evaluate.default: an evaluation runs one process, not 2"):
        load_config([ROOT / "config.yaml"], overrides={"resources": {"evaluate": {"default": {"nodes": 2}}}})
    with pytest.raises(ConfigError, match=r"resources.train_target.tasks.squad: tasks_per_node=3 does not divide"):
        load_config([ROOT / "config.yaml"],
                    overrides={"resources": {"train_target": {"tasks": {"squad": {"tasks_per_node": 3}}}}})
