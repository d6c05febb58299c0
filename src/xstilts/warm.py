"""Warm starts for local runs: a resident process with torch, transformers and the package imported (nothing
else initialised: no threads, no CUDA context) forks one child per job, so a job skips the seconds of imports.

A local run starts it (`start`, the Snakefile's `onstart`) and stops it (`stop`, `onsuccess`/`onerror`); it
also ends by itself after `IDLE_S` without a job. The rules' command line stays `python -m xstilts ...`: the
CLI, a light client that imports neither torch nor transformers, hands a job that imports them
(`cli.WARM_COMMANDS`) to the resident process with its arguments, working directory, environment and
standard streams (the job's log, passed as file descriptors: `socket.send_fds`), forwards SIGTERM, SIGUSR1,
SIGINT and SIGHUP to the job (a trainer saves its state and exits 75), and exits with the job's exit status.
A missing or dead resident process never fails a job: the client says so on the job's log and runs the job
itself (`run` returns None).

Why not `multiprocessing`'s forkserver: it serves the Python process that started it (its own pickled
targets and an authentication key); here the clients are unrelated processes that Snakemake starts.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.cli import OFFLINE_ENV

SOCKET_ENV = "XSTILTS_WARM"  # the resident process's socket, for the jobs of a local run
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP)
IDLE_S = 900.0  # the resident process ends after this long without a job


def _send(conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fds:
        sent = socket.send_fds(conn, [data], fds)
        data = data[sent:]
    conn.sendall(data)


def _receive(conn: socket.socket, maxfds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One newline-ended JSON message (None: the other side closed) and the descriptors sent with it."""
    data, fds, *_ = socket.recv_fds(conn, 1 << 16, maxfds) if maxfds else (conn.recv(1 << 16), [])
    while data and not data.endswith(b"\n"):
        more = conn.recv(1 << 16)
        if not more:
            break
        data += more
    return (json.loads(data) if data.endswith(b"\n") else None), list(fds)


# --------------------------------------------------------------------------------------------------
# The resident process


# What the warm jobs import: torch and transformers' XLM-R (through the package), the tokenizer and model
# classes `Auto*` resolves lazily at the first load, the config's validation.
PRELOAD = ("jsonschema", "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto",
           "transformers.models.xlm_roberta.modeling_xlm_roberta",
           "transformers.models.xlm_roberta.tokenization_xlm_roberta", "xstilts.jobs", "xstilts.training",
           "xstilts.evaluation", "xstilts.demo.pretrain")


def preload() -> None:
    """Import `PRELOAD`; nothing is run."""
    for module in PRELOAD:
        importlib.import_module(module)


def serve(path: Path, idle: float = IDLE_S) -> None:
    """Accept jobs on the socket `path` until a `shutdown` message or `idle` seconds without a job (none running,
    none started). Single threaded (it forks): each job runs in a child of a runner process that waits for it
    and reports."""
    preload()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    server.settimeout(1.0)  # wake up to reap finished runners (their CPU time then counts as ours)
    last, running = time.monotonic(), set()
    try:
        while running or time.monotonic() - last < idle:
            with contextlib.suppress(ChildProcessError):
                while pid := os.waitpid(-1, os.WNOHANG)[0]:
                    running.discard(pid)
                    last = time.monotonic()  # idle from the end of the last job, however long it ran
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            with conn:
                conn.settimeout(None)
                request, fds = _receive(conn, maxfds=3)
                if request is None or request.get("shutdown"):
                    for fd in fds:
                        os.close(fd)
                    if request is not None:
                        break
                    continue
                if (runner := os.fork()) == 0:
                    server.close()
                    _runner(conn, request, fds)
                running.add(runner)
                for fd in fds:
                    os.close(fd)
    finally:
        server.close()
        Path(path).unlink(missing_ok=True)


def _runner(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Fork the job, tell the client its pid, wait for it, tell the client its exit status; never returns."""
    pid = os.fork()
    if pid == 0:
        conn.close()
        _job(request, fds)
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        _send(conn, {"pid": pid})
    status = os.waitpid(pid, 0)[1]
    with contextlib.suppress(OSError):
        _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    os._exit(0)


def _job(request: dict[str, Any], fds: list[int]) -> None:
    """The job itself: the client's streams, directory, environment and threads, then the CLI; never returns."""
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    import torch

    if threads := os.environ.get("OMP_NUM_THREADS"):  # read by OpenMP when torch was imported: set it again
        torch.set_num_threads(int(threads))
    from xstilts.cli import main

    code = 1
    try:
        sys.argv = ["xstilts", *request["argv"]]
        code = main(request["argv"], warm=False)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:  # as a cold start shows it: the traceback on the job's log
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


# --------------------------------------------------------------------------------------------------
# The client (the CLI of a job)


def run(argv: list[str]) -> int | None:
    """Run a job in the resident process named by `SOCKET_ENV` and return its exit status; None when there
    is none to run it (then the caller runs the job itself; the reason is on stderr, the job's log)."""
    path = os.environ.get(SOCKET_ENV)
    if not path:
        return None
    job: dict[str, int] = {}
    pending: list[int] = []  # signals that came before the job's pid

    def forward(signum: int, _frame: Any) -> None:
        if "pid" not in job:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(job["pid"], signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        _send(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
        started, _ = _receive(conn)
        reason = "the resident process did not start the job"
    except OSError as err:
        started, reason = None, str(err)
    if started is None:
        conn.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"xstilts: warm start unavailable ({reason}): starting cold", file=sys.stderr, flush=True)
        for sig in pending:  # a stop asked for while connecting: as if the job had got it at once
            os.kill(os.getpid(), sig)
        return None
    job["pid"] = pid = started["pid"]
    for sig in pending:
        forward(sig, None)
    with conn:
        finished, _ = _receive(conn)
    if finished is not None:
        code = finished["exit"]
        return code if code >= 0 else 128 - code
    # the runner is gone: stop the job (a trainer saves its state) and run it cold, which resumes
    print("xstilts: warm start lost the job's runner: stopping the job and starting cold", file=sys.stderr, flush=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return None


# --------------------------------------------------------------------------------------------------
# Starting and stopping (the Snakefile's hooks)


@dataclass(frozen=True)
class Resident:
    """A started resident process."""

    socket: Path
    process: subprocess.Popen


def start(log: Path, timeout: float = 120.0) -> Resident | None:
    """Start a resident process (its output to `log`) and wait until it accepts jobs; None (said on stderr)
    if it does not: the run then starts every job cold."""
    folder = Path(tempfile.mkdtemp(prefix="xstilts-warm-"))
    path = folder / "socket"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "xstilts.warm", str(path)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, **OFFLINE_ENV, "TOKENIZERS_PARALLELISM": "false"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            return Resident(path, process)
        time.sleep(0.1)
    process.kill()
    process.wait()
    print(f"xstilts: the warm-start process did not come up (see {log}): jobs start cold", file=sys.stderr)
    return None


def stop(resident: Resident) -> None:
    """Ask the resident process to end, wait for it (its jobs' CPU time is then accounted), remove its socket."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(resident.socket))
        _send(conn, {"shutdown": True})
    try:
        resident.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        resident.process.kill()
        resident.process.wait()
    with contextlib.suppress(OSError):
        resident.socket.unlink(missing_ok=True)
        resident.socket.parent.rmdir()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
