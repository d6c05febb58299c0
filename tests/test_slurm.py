"""The workflow on a real SLURM cluster: a throw-away one-node cluster on loopback (.ci/slurm/start.sh:
this machine's CPUs, 2 fake GPUs, no accounting database), driven by the literal `snakemake --profile
slurm`, with HOME at a temporary folder: the profile there is the one `make slurm-profile` installs,
its EDIT line set to the test partition, and Snakemake adds the workflow's profiles/default by itself.

- a reduced demo grid runs as SLURM jobs (GPU rules with their GPU request), scores and tables land;
- `xstilts rerun` of one cell whose training first gets the workflow's pre-timeout signal (its time
  limit is cut short, so slurmctld sends it), then is cancelled: both times Snakemake's retry resumes
  from the saved state, the cell ends with the scores of the uninterrupted run, no other cell is touched;
- `xstilts submit` (submitit) of one cell, whose training is signalled and requeued, and resumes;
- a site's minimal profile (executor, jobs and a partition, where /etc/xdg/snakemake/slurm would be)
  plus the workflow profile finishes one row of that grid with the same job requests;
- a training sharded by FSDP as one job of two SLURM tasks, signalled, retried and resumed from its shards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.test_profiles import MINIMAL_SITE_PROFILE, install_profile, profile_env, site_profile
from xstilts.config import load_config

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CELL_STATE = Path("results/state/target/none/pawsx/seed=1")
CELL_LOG = Path("results/logs/target/none/pawsx/seed=1.log")
# On config.yaml and the demo's overlay: rows [none, sst2], one classification and one retrieval target;
# PAWS-X and SST-2 train for some seconds (320 and 160 steps); resumable state every 2 steps; jobs sized
# for the test node (these sizes replace config.yaml's, overrides included).
OVERLAY = """
rows: [none, sst2]
targets: [pawsx, tatoeba]
languages:
  pawsx: [en, zh]
  tatoeba: [de, fr]
resources:
  train_intermediate: {default: {gpu: 1, cpus_per_gpu: 1, mem_mb: 2000, runtime: 10}}
  train_target: {default: {gpu: 1, cpus_per_gpu: 1, mem_mb: 2000, runtime: 10}}
  evaluate: {default: {gpu: 1, cpus_per_gpu: 1, mem_mb: 2000, runtime: 10}}
training:
  save_every: 2
  defaults: {epochs: 1, batch_size: 16}
  tasks:
    pawsx: {epochs: 40, eval_every: 100}
    sst2: {epochs: 20}
demo:
  sizes: {train: 120, dev: 40, eval: 30, corpus: 300}
  model: {vocab_size: 1000, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, mlm_steps: 20}
"""
# One cell of that grid for the site's minimal profile: one SLURM job (an evaluation of the base model).
SITE_OVERLAY = """
rows: [none]
targets: [tatoeba]
"""
# Status checks after 1 s, not the workflow profile's 40 s: on the command line, the one place that
# overrides the workflow profile.
FAST_CHECKS = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on loopback now (so that a cluster of another test run can coexist)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def trainer(work: Path, job: tuple[str, ...]) -> int | None:
    """The process id of the running trainer of `job` (the arguments that name it, e.g. `train target none
    pawsx`) under `work` (the oldest such process: a child it forks has the same command line for a moment)."""
    found = {}
    wanted = [w.encode() for w in job]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            named = any(args[i:i + len(wanted)] == wanted for i in range(len(args)))
            if named and b"xstilts" in args and os.readlink(proc / "cwd") == str(work):
                found[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[19])
        except OSError:  # not a process, or gone
            continue
    return min(found, key=found.get) if found else None


def held(pid: int) -> bool:
    """Whether the process `pid` is stopped and no SIGTERM waits for it (slurmstepd sends SIGCONT
    with its signals, so a signalled process goes on, or has already ended)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except FileNotFoundError:
        return False
    term = 1 << (signal.SIGTERM - 1)
    return status["State"].split()[0] == "T" and not any(int(status[k], 16) & term for k in ("SigPnd", "ShdPnd"))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Cluster:
    """A running test cluster and the environment that reaches it (env.sh of start.sh)."""

    def __init__(self, state: Path) -> None:
        dump = subprocess.run(["bash", "-c", f"source {state / 'env.sh'} && env -0"], check=True,
                              capture_output=True, text=True).stdout
        self.env = dict(line.split("=", 1) for line in dump.split("\0") if "=" in line)

    def run(self, *cmd: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
        done = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{cmd}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    def states(self) -> dict[str, str]:
        """Every job the controller still knows (MinJobAge=600): id -> state."""
        out = self.run("squeue", "-h", "-t", "all", "-o", "%i|%T")
        return dict(line.split("|") for line in out.split())

    def show(self, job: str) -> dict[str, str]:
        return dict(re.findall(r"(\w+)=(\S*)", self.run("scontrol", "show", "job", job)))

    def final_state(self, job: str, timeout: float = 180.0) -> str:
        return wait_for(f"job {job} to end", lambda: (state := self.states().get(job)) in FINAL_STATES and state,
                        timeout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Starts the cluster for this module and stops it in the finalizer, daemons and all."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (.ci/slurm/start.sh)")
    state = Path(tempfile.mkdtemp(prefix="xstilts-slurm-", dir="/tmp"))
    state.chmod(0o755)  # munged runs as user munge and must enter it
    ports = dict(zip(("SLURM_CI_CTLD_PORT", "SLURM_CI_SLURMD_PORT"), map(str, free_ports(2)), strict=True))
    try:
        subprocess.run([ROOT / ".ci/slurm/start.sh", state / "cluster"], check=True, capture_output=True,
                       text=True, env={**os.environ, **ports})
        yield Cluster(state / "cluster")
    finally:
        subprocess.run([ROOT / ".ci/slurm/stop.sh", state / "cluster"], check=False, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def write_config(work: Path, *overlays: str) -> Path:
    """config.yaml, the demo's overlay and the overlays merged as Snakemake merges `--configfile`s, except
    that OVERLAY's job sizes replace config.yaml's, in one file."""
    files = []
    for i, overlay in enumerate((OVERLAY, *overlays)):
        files.append(work / f"overlay{i}.yaml")
        files[-1].write_text(overlay)
    config = load_config([ROOT / "config.yaml", ROOT / "profiles/demo/demo-config.yaml", *files])
    config["resources"] = yaml.safe_load(OVERLAY)["resources"]
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work / "config.yaml"


def installed_profile(env: dict[str, str]) -> None:
    """`make slurm-profile`'s install into HOME, then the user's edit of its EDIT line: the test partition."""
    done = install_profile(env)
    assert done.returncode == 0, done.stderr
    installed = Path(env["HOME"]) / ".config" / "snakemake" / "slurm" / "config.yaml"
    text = installed.read_text()
    assert text.count('slurm_partition="gpu"') == 1
    installed.write_text(text.replace('slurm_partition="gpu"', 'slurm_partition="debug"'))


class Workdir:
    """A grid's working directory, the environment whose HOME (and site folder) holds the `slurm`
    profile, and how to run `snakemake --profile slurm` (or `xstilts rerun`) on it."""

    def __init__(self, cluster: Cluster, work: Path, *overlays: str) -> None:
        self.cluster, self.work, self.results = cluster, work, work / "results"
        self.env = profile_env(work / "home", work / "site", base=cluster.env)
        self.config = write_config(work, *overlays)

    def args(self) -> list[str]:
        """What follows `--profile slurm`: directory, config file, quick status checks."""
        return ["--directory", str(self.work), "--configfile", str(self.config), *FAST_CHECKS]

    def snakemake(self, *more: str) -> float:
        """`snakemake --profile slurm` on the grid; returns the seconds it took."""
        start = time.perf_counter()
        self.cluster.run(BIN / "snakemake", "--profile", "slurm", *self.args(), *more, env=self.env)
        return time.perf_counter() - start

    def slurm_jobs(self) -> dict[str, str]:
        """SLURM job id -> rule, from the plugin's logs (.snakemake/slurm_logs/rule_NAME/.../ID.log)."""
        logs = (self.work / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log")
        return {p.stem: p.relative_to(self.work / ".snakemake" / "slurm_logs").parts[0][5:] for p in logs}

    def scores(self, row: str, target: str) -> pd.DataFrame:
        path = self.results / "scores" / f"intermediate={row}" / f"target={target}" / "seed=1" / "scores.parquet"
        return pd.read_parquet(path)[["language", "split", "metric", "value"]]

    def snapshot(self) -> dict[str, int]:
        return {str(p.relative_to(self.results)): p.stat().st_mtime_ns for p in self.results.rglob("*")
                if p.is_file() and not {"logs", "state"} & set(p.parts)}


@pytest.fixture(scope="module")
def grid(cluster: Cluster) -> Iterator[Workdir]:
    """The reduced grid run through the SLURM profile (in its own folder: pytest's numbered temporary
    folders are removed by pytest runs started beside this one)."""
    work = Path(tempfile.mkdtemp(prefix="xstilts-slurm-grid-", dir="/tmp"))
    try:
        grid = Workdir(cluster, work)
        installed_profile(grid.env)
        print(f"\nSLURM grid: {grid.snakemake():.0f} s")
        yield grid
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_grid_runs_as_slurm_jobs_with_gpu_requests(grid: Workdir) -> None:
    jobs = grid.slurm_jobs()
    # Only the GPU rules went to SLURM (data, demo pretraining and tables are local rules).
    assert sorted(jobs.values()) == ["evaluate"] * 4 + ["train_intermediate"] + ["train_target"] * 2
    states = grid.cluster.states()
    assert {job: states.get(job) for job in jobs} == dict.fromkeys(jobs, "COMPLETED")
    for job in jobs:
        info = grid.cluster.show(job)
        assert info["TresPerJob"] == "gres:gpu:1", info
        assert info["Partition"] == "debug" and info["TimeLimit"] == "00:10:00"
    scores = pd.read_parquet(grid.results / "scores")
    assert set(zip(scores["intermediate"], scores["target"], strict=True)) == {
        (r, t) for r in ("none", "sst2") for t in ("pawsx", "tatoeba")}
    transfer = pd.read_parquet(grid.results / "tables" / "transfer.parquet")
    assert transfer[["pawsx", "tatoeba"]].notna().all().all()
    assert (grid.results / "tables" / "delta.md").is_file()


@pytest.fixture(scope="module")
def interrupted_rerun(grid: Workdir) -> dict[str, Any]:
    """`xstilts rerun none pawsx --profile slurm`; its training gets the pre-timeout signal, then the retry
    is cancelled, then the second retry (the profile has `retries: 2`) finishes. Returns what was seen."""
    cluster, work = grid.cluster, grid.work
    seen: dict[str, Any] = {"before": grid.snapshot(), "scores_before": grid.scores("none", "pawsx")}
    known = set(grid.slurm_jobs())
    start = time.perf_counter()
    rerun = subprocess.Popen([BIN / "xstilts", "rerun", "none", "pawsx", "--profile", "slurm", *grid.args()],
                             cwd=ROOT, env=grid.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def next_training_job() -> str:
        job = wait_for("the next train_target job", lambda: [j for j, r in grid.slurm_jobs().items()
                                                            if r == "train_target" and j not in known])[0]
        known.add(job)
        return job

    def step_in_log(pattern: str, above: int = -1) -> int:
        """The step that the training's log names in `pattern`, once it is above `above` (the log of an
        earlier attempt stays until the next one starts)."""

        def step() -> int | None:
            found = re.search(pattern, (work / CELL_LOG).read_text()) if (work / CELL_LOG).is_file() else None
            return int(found[1]) if found and int(found[1]) > above else None

        return wait_for(f"{pattern!r} above {above} in {CELL_LOG}", step)

    try:
        # 1. Time limit cut to 2 minutes: the workflow's --signal=TERM@300 is now due, and slurmctld sends
        #    it at its next time-limit check (every 30 s). The trainer is held (SIGSTOP) until the signal
        #    waits for it, as if its training were long. It saves its state and exits 75; Snakemake retries.
        first = next_training_job()
        wait_for("resumable state", (work / CELL_STATE / "state.pt").is_file)
        pid = wait_for("the trainer's process", lambda: trainer(work, ("train", "target", "none", "pawsx")))
        os.kill(pid, signal.SIGSTOP)
        cluster.run("scontrol", "update", f"JobId={first}", "TimeLimit=2")
        wait_for("the pre-timeout SIGTERM", lambda: not held(pid), timeout=90)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        seen["saved"] = step_in_log(r"stopped at step (\d+)/\d+; state saved")
        seen["first"] = (first, cluster.final_state(first))
        # 2. The retry resumes from that state; once it has saved again, it is cancelled.
        second = next_training_job()
        seen["resumed"] = step_in_log(r"resumed from step (\d+)/")
        resumed_at = (work / CELL_STATE / "state.pt").stat().st_mtime_ns
        wait_for("a newer state", lambda: (work / CELL_STATE / "state.pt").stat().st_mtime_ns > resumed_at)
        cluster.run("scancel", second)
        seen["second"] = (second, cluster.final_state(second))
        # 3. The second retry resumes again and finishes; then the evaluation and the tables.
        third = next_training_job()
        seen["resumed_again"] = step_in_log(r"resumed from step (\d+)/", above=seen["resumed"])
        output, _ = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, output[-4000:]
        seen["third"] = (third, cluster.final_state(third))
    except BaseException:  # pytest.fail too
        if rerun.returncode is None:  # a wait above failed: end it (the cluster's stop cancels its jobs)
            rerun.kill()
            print(rerun.communicate()[0][-4000:])
        raise
    print(f"\nSLURM rerun with a signal and a cancel: {time.perf_counter() - start:.0f} s")
    seen["after"] = grid.snapshot()
    seen["scores_after"] = grid.scores("none", "pawsx")
    return seen


def test_pre_timeout_signal_saves_state_and_the_retry_resumes(interrupted_rerun: dict[str, Any]) -> None:
    # FAILED (exit 75 after saving), not TIMEOUT: the signal came before the limit.
    assert interrupted_rerun["first"][1] == "FAILED"
    assert interrupted_rerun["saved"] > 0
    assert interrupted_rerun["resumed"] == interrupted_rerun["saved"]


def test_cancelled_job_is_retried_and_resumes(interrupted_rerun: dict[str, Any]) -> None:
    assert interrupted_rerun["second"][1] == "CANCELLED"
    assert interrupted_rerun["resumed_again"] > interrupted_rerun["resumed"]
    assert interrupted_rerun["third"][1] == "COMPLETED"


def test_interrupted_cell_ends_with_the_uninterrupted_scores(interrupted_rerun: dict[str, Any]) -> None:
    pd.testing.assert_frame_equal(interrupted_rerun["scores_after"], interrupted_rerun["scores_before"])


def test_rerun_touches_that_cell_and_the_tables_only(interrupted_rerun: dict[str, Any]) -> None:
    before, after = interrupted_rerun["before"], interrupted_rerun["after"]
    changed = {p for p in before if after.get(p) != before[p]}
    assert "scores/intermediate=none/target=pawsx/seed=1/scores.parquet" in changed
    assert "checkpoints/target/none/pawsx/seed=1/model.safetensors" in changed
    assert "tables/transfer.md" in changed
    assert "predictions/intermediate=none/target=pawsx/seed=1/predictions.parquet" in changed
    allowed = ("scores/intermediate=none/target=pawsx/", "predictions/intermediate=none/target=pawsx/",
               "checkpoints/target/none/pawsx/", "tables/",
               "checkpoints/manifest.parquet", "README.md", "report.html")  # the last three: aggregate's
    assert sorted(p for p in changed if not p.startswith(allowed)) == []
    assert set(after) == set(before)


def submitit_logs(grid: Workdir, job: str) -> str:
    """What submitit's tasks of `job` wrote (stdout and stderr, every attempt)."""
    return "".join(f"--- {p.name}\n{p.read_text()}" for p in sorted((grid.results / "submitit").rglob(f"{job}_*log.*")))


def test_submitit_cell_is_requeued_on_the_signal_and_resumes(grid: Workdir) -> None:
    """`xstilts submit sst2:tatoeba` after removing that cell and the sst2 encoder: phase (ii) and the
    evaluation as two submitit arrays; USR1 (submitit's pre-timeout signal) during the training makes
    the trainer save, submitit requeue it, and the requeued task resume; the scores are the grid's."""
    cluster, work = grid.cluster, grid.work
    expected = grid.scores("sst2", "tatoeba")
    encoder = grid.results / "checkpoints" / "intermediate" / "sst2" / "seed=1"
    shutil.rmtree(encoder)
    (grid.results / "scores" / "intermediate=sst2" / "target=tatoeba" / "seed=1" / "scores.parquet").unlink()
    start = time.perf_counter()
    out = cluster.run(BIN / "xstilts", "submit", "sst2:tatoeba", "--configfile", grid.config, "--profile", "slurm",
                      "--directory", work, env=grid.env)
    jobs = dict(line.split(" ", 1)[::-1] for line in out.splitlines())
    training = jobs["train intermediate sst2 1"]  # each job's id, then its spec's key
    evaluation = jobs["evaluate sst2 tatoeba 1"]
    info = cluster.show(training)
    assert info["TresPerJob"] == "gres:gpu:1" and info["Partition"] == "debug" and info["Requeue"] == "1"
    assert cluster.show(evaluation)["Dependency"].startswith(f"afterok:{training.split('_')[0]}")
    state = work / "results" / "state" / "intermediate" / "sst2" / "seed=1" / "state.pt"
    wait_for("resumable state of the submitit training", state.is_file)
    cluster.run("scancel", "--signal=USR1", training)
    wait_for("the requeue", lambda: cluster.show(training)["JobState"] == "PENDING"
             and int(cluster.show(training)["Restarts"]) >= 1)
    cluster.run("scontrol", "update", f"JobId={training}", "StartTime=now")  # SLURM holds it 2 minutes
    for job in (training, evaluation):
        state = cluster.final_state(job)
        assert state == "COMPLETED", f"{job} ended {state}: {cluster.show(job)}\n{submitit_logs(grid, job)}"
    print(f"\nsubmitit cell with a requeue: {time.perf_counter() - start:.0f} s")
    logs = submitit_logs(grid, training)
    assert "resumed from step" in logs and "Requeued job" in logs
    pd.testing.assert_frame_equal(grid.scores("sst2", "tatoeba"), expected)


def test_minimal_site_profile_and_the_workflow_profile_run_the_same_jobs(grid: Workdir) -> None:
    """`snakemake --profile slurm` where `slurm` is a site's minimal profile (executor, jobs, partition):
    the workflow profile brings the rest (status checks by squeue, without which this cluster's jobs
    would never be seen to end; the pre-timeout signal); its jobs ask SLURM for what the grid's did."""
    work = Path(tempfile.mkdtemp(prefix="xstilts-slurm-site-", dir="/tmp"))
    try:
        site = Workdir(grid.cluster, work, SITE_OVERLAY)
        site_profile(work / "site", {**MINIMAL_SITE_PROFILE, "default-resources": ['slurm_partition="debug"']})
        print(f"\nSLURM grid with a minimal site profile: {site.snakemake('--verbose'):.0f} s")
        jobs = site.slurm_jobs()
        assert list(jobs.values()) == ["evaluate"]
        assert site.scores("none", "tatoeba")["value"].between(0, 100).all()
        assert pd.read_parquet(site.results / "tables" / "transfer.parquet")["tatoeba"].notna().all()
        # scontrol does not show the signal: the plugin's sbatch calls in Snakemake's log (--verbose) do.
        calls = re.findall(r"^sbatch call: (.*)$", "".join(p.read_text() for p in work.glob(".snakemake/log/*.log")),
                           flags=re.M)
        assert len(calls) == 1 and all(" -p debug " in c and " --signal=TERM@300 " in c for c in calls), calls
        fields = ("Partition", "TimeLimit", "TresPerJob", "MinMemoryNode", "NumCPUs", "Requeue", "JobState")

        def request(job: str) -> tuple[str, ...]:
            info = grid.cluster.show(job)
            return tuple(info[f] for f in fields)

        grid_requests = {(rule, request(job)) for job, rule in grid.slurm_jobs().items()}
        for job, rule in jobs.items():
            assert (rule, request(job)) in grid_requests, (rule, grid.cluster.show(job))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# A phase-(iii) training of sst2's row on PAWS-X as an FSDP job of two SLURM tasks on the one node (one torchrun
# each, one process each: two processes), saving its sharded state every 2 of its 48 steps.
FSDP_OVERLAY = """
execution:
  rows: {sst2: {parallel: fsdp}}
training:
  tasks:
    pawsx: {epochs: 6, eval_every: 100, dropout: 0.0}
"""
FSDP_RESOURCES = {"gpu": 2, "cpus_per_gpu": 1, "mem_mb": 2000, "runtime": 10, "tasks_per_node": 2}
FSDP_STATE = Path("results/state/target/sst2/pawsx/seed=1")
FSDP_LOG = Path("results/logs/target/sst2/pawsx/seed=1.log")


def test_fsdp_job_of_two_tasks_is_signalled_and_resumes(grid: Workdir) -> None:
    """`xstilts rerun sst2 pawsx` on a copy of the grid's results, its training an FSDP job of two tasks: srun
    starts both, their torchrun agents meet at the job's first host; SIGTERM to the job's steps (as the
    pre-timeout signal) makes both workers save their shards, the retry resumes from them on two new tasks and
    ends with the weights of an uninterrupted two-process run of the same training."""
    work = Path(tempfile.mkdtemp(prefix="xstilts-slurm-fsdp-", dir="/tmp"))
    try:
        run = Workdir(grid.cluster, work, FSDP_OVERLAY)
        config = yaml.safe_load(run.config.read_text())
        config["resources"]["train_target"]["tasks"] = {"pawsx": FSDP_RESOURCES}
        run.config.write_text(yaml.safe_dump(config))
        installed_profile(run.env)
        shutil.copytree(grid.results, run.results)  # data, base model, sst2's encoder (no Snakemake metadata)
        reference = work / "reference"
        shutil.copytree(grid.results, reference / "results")
        start = time.perf_counter()
        rerun = subprocess.Popen([BIN / "xstilts", "rerun", "sst2", "pawsx", "--profile", "slurm", *run.args()],
                                 cwd=ROOT, env=run.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            first = wait_for("the FSDP training job", lambda: [j for j, r in run.slurm_jobs().items()
                                                              if r == "train_target"])[0]
            wait_for("a sharded state", lambda: list((work / FSDP_STATE).glob("step-*/rng-1.pt")))
            grid.cluster.run("scancel", "--signal=TERM", first)

            def logged(pattern: str) -> int | None:  # (each attempt's log replaces the one before)
                found = re.search(pattern, (work / FSDP_LOG).read_text()) if (work / FSDP_LOG).is_file() else None
                return int(found[1]) if found else None

            saved = wait_for("the saved shards", lambda: logged(r"stopped at step (\d+)/48; state saved"))
            resumed = wait_for("the resumed training", lambda: logged(r"resumed from step (\d+)/48"))
            output, _ = rerun.communicate(timeout=600)
            assert rerun.returncode == 0, output[-4000:]
        except BaseException:
            if rerun.returncode is None:
                rerun.kill()
                print(rerun.communicate()[0][-4000:])
            raise
        print(f"\nSLURM FSDP job of two tasks, signalled and resumed: {time.perf_counter() - start:.0f} s")
        jobs = [j for j, r in run.slurm_jobs().items() if r == "train_target"]
        assert len(jobs) == 2 and grid.cluster.final_state(first) == "FAILED"  # stopped, then retried
        info = grid.cluster.show(first)
        assert info["NumTasks"] == "2" and info["TresPerJob"] == "gres:gpu:2", info
        assert saved >= 2 and resumed == saved
        model = run.results / "checkpoints" / "target" / "sst2" / "pawsx" / "seed=1"
        facts = json.loads(pd.read_parquet(model / "manifest.parquet")["run_facts"].iat[0])
        assert (facts["parallel"], facts["processes"]) == ("fsdp", 2)
        assert run.scores("sst2", "pawsx")["value"].between(0, 100).all()
        # the same training uninterrupted, two processes on this machine (no SLURM: one torchrun starting both,
        # ranks 0 and 1 as the two tasks were): the same weights
        shutil.rmtree(reference / "results" / "checkpoints" / "target" / "sst2" / "pawsx", ignore_errors=True)
        local = {**os.environ, "OMP_NUM_THREADS": "2"}  # the job's threads (its shell's OMP_NUM_THREADS)
        config["results"] = str(reference / "results")
        config["resources"]["train_target"]["tasks"]["pawsx"] = {**FSDP_RESOURCES, "tasks_per_node": 1}
        (reference / "config.yaml").write_text(yaml.safe_dump(config))
        done = subprocess.run([BIN / "xstilts", "train", "target", "sst2", "pawsx", "--configfile",
                               reference / "config.yaml"], cwd=reference, env=local, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        ours = load_file(str(model / "model.safetensors"))
        uninterrupted = load_file(str(reference / "results" / model.relative_to(run.results) / "model.safetensors"))
        for name, value in uninterrupted.items():
            assert torch.equal(ours[name], value), name
    finally:
        shutil.rmtree(work, ignore_errors=True)
