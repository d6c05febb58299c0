"""Warm starts (`xstilts.warm`): jobs run as children of a resident process, through the same command line,
with the same streams, exit status, signals and results as a cold start; without one they start cold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from tests.test_variants import ROOT, prepared
from xstilts import warm
from xstilts.layout import Layout
from xstilts.models import load_encoder


@pytest.fixture(scope="module")
def resident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[warm.Resident]:
    started = warm.start(tmp_path_factory.mktemp("warm") / "warm.log")
    assert started is not None
    yield started
    warm.stop(started)
    assert started.process.returncode == 0 and not started.socket.exists()


def grid(results: Path, tiny_encoder: Path, epochs: int = 2) -> list[str]:
    """Config files of a grid with an sst2 row trained on a tiny prepared SST-2."""
    sst2 = {"lr": 1e-3, "batch_size": 8, "grad_accum": 1, "epochs": epochs, "max_length": 32, "eval_every": 1000}
    overlay = {"results": str(results), "model": str(tiny_encoder), "rows": ["none", "sst2"], "targets": ["tatoeba"],
               "seeds": [3],
               "training": {"save_every": 0, "tasks": {"sst2": sst2}},
               "resources": {"train_intermediate": {"default": {"gpu": 1, "cpus_per_gpu": 1}}}}
    (results / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    return [str(ROOT / "config.yaml"), str(results / "overlay.yaml")]


def job(argv: list[str], cwd: Path, log: Path, socket: Path | None) -> subprocess.Popen:
    """`python -m xstilts ARGV > LOG 2>&1`, as a rule runs it, warm when `socket` is given."""
    env = {k: v for k, v in os.environ.items() if k != warm.SOCKET_ENV}
    env |= {"OMP_NUM_THREADS": "1", **({warm.SOCKET_ENV: str(socket)} if socket else {})}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "xstilts", *argv], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def train_sst2(tiny_encoder: Path, results: Path, socket: Path | None, epochs: int = 2) -> tuple[int, str]:
    results.mkdir(parents=True, exist_ok=True)
    prepared(results, load_encoder(tiny_encoder)[1], n=64)
    files = grid(results, tiny_encoder, epochs)
    log = results / "job.log"
    done = job(["train", "intermediate", "sst2", "--seed", "3", "--configfile", *files], results, log, socket)
    return done.wait(timeout=600), log.read_text()


def test_a_warm_job_trains_as_a_cold_one(resident: warm.Resident, tiny_encoder: Path, tmp_path: Path) -> None:
    """Same weights, same summary line on the job's own log, exit 0; the job ran warm (no fallback said on its
    log)."""
    code_warm, log_warm = train_sst2(tiny_encoder, tmp_path / "warm", resident.socket)
    code_cold, log_cold = train_sst2(tiny_encoder, tmp_path / "cold", None)
    assert code_warm == code_cold == 0, log_warm + log_cold
    assert "warm start unavailable" not in log_warm and '"best_step"' in log_warm
    weights = [load_file(str(Layout(tmp_path / name).encoder("sst2", 3) / "model.safetensors"))
               for name in ("warm", "cold")]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])


def test_exit_status_and_streams_pass_through(resident: warm.Resident, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    files = [str(ROOT / "config.yaml")]
    done = job(["evaluate", "none", "xnli", "--configfile", *files], tmp_path, log, resident.socket)
    assert done.wait(timeout=120) == 2
    assert "data set 'xnli' is not prepared: results/data/eval/xnli/meta.json is missing" in log.read_text()
    # an unexpected error: exit 1 and its traceback on the job's log, as a cold start (the status reads it)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{not json")
    (tmp_path / "grid.yaml").write_text(f"model: {tmp_path / 'model'}\nrows: [none, untrained]\n")
    done = job(["init-untrained", "--configfile", *files, str(tmp_path / "grid.yaml")], tmp_path, log, resident.socket)
    assert done.wait(timeout=120) == 1
    assert "Traceback (most recent call last)" in log.read_text()


def test_the_stop_signal_reaches_the_trainer_and_it_resumes(resident: warm.Resident, tiny_encoder: Path,
                                                           tmp_path: Path) -> None:
    """SIGTERM to the client (as SLURM or Snakemake send it) reaches the warm trainer: it saves its state
    and exits 75, the client exits 75; the next start resumes from the state and finishes."""
    results = tmp_path / "results"
    results.mkdir()
    prepared(results, load_encoder(tiny_encoder)[1], n=64)
    files = grid(results, tiny_encoder, epochs=30)  # 240 steps: long enough to be stopped
    log = results / "job.log"
    client = job(["train", "intermediate", "sst2", "--seed", "3", "--configfile", *files], results, log,
                 resident.socket)
    deadline = time.monotonic() + 300
    while "train:" not in log.read_text() and time.monotonic() < deadline:  # the trainer's progress bar
        time.sleep(0.2)
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=300) == 75, log.read_text()
    assert "state saved" in log.read_text()
    assert (Layout(results).state("intermediate", "sst2", "seed=3") / "state.pt").is_file()
    again = job(["train", "intermediate", "sst2", "--seed", "3", "--configfile", *files], results, log,
                resident.socket)
    assert again.wait(timeout=600) == 0, log.read_text()
    assert "resumed from step" in log.read_text() and Layout(results).encoder("sst2", 3).is_dir()


def test_without_a_resident_process_a_job_starts_cold_and_says_so(tiny_encoder: Path, tmp_path: Path) -> None:
    code, log = train_sst2(tiny_encoder, tmp_path, tmp_path / "no-such-socket")
    assert code == 0
    assert "xstilts: warm start unavailable" in log and "starting cold" in log and '"best_step"' in log


def test_a_job_longer_than_the_idle_time_keeps_the_resident_process_for_the_next(tiny_encoder: Path,
                                                                                 tmp_path: Path) -> None:
    """The idle time counts from the end of the last job: a training that outlasts it does not end the resident
    process, and the job after it starts warm too."""
    path = tmp_path / "socket"
    code = "import sys; from pathlib import Path; from xstilts.warm import serve; serve(Path(sys.argv[1]), idle=0.2)"
    process = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    resident = warm.Resident(path, process)
    try:
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        for run in ("first", "second"):  # the first trains for seconds, 10x the idle time and more
            code_run, log = train_sst2(tiny_encoder, tmp_path / run, path, epochs=40)
            assert code_run == 0 and "warm start unavailable" not in log, log
    finally:
        warm.stop(resident)
    assert process.returncode == 0 and not path.exists()
