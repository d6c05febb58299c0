"""Sharded training (`execution.parallel: fsdp`, FSDP2 on two CPU processes over gloo): `xstilts train` trains as
one unsharded process does, up to float rounding; stopped and resumed it ends exactly as uninterrupted; its
sharded state resumes on another number of processes; its checkpoint is a plain Hugging Face folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.test_variants import ROOT, prepared
from xstilts.layout import Layout
from xstilts.models import load_encoder

SEED = 4
# Dropout off and even batches: two halves' mean gradients average to the whole batch's.
SST2 = {"lr": 1e-3, "batch_size": 16, "grad_accum": 2, "epochs": 2, "max_length": 32, "dropout": 0.0, "eval_every": 3}


def train(tiny_encoder: Path, results: Path, nproc: int, parallel: str = "fsdp", stop_after: int | None = None
          ) -> subprocess.CompletedProcess:
    overlay = {"results": str(results), "model": str(tiny_encoder), "rows": ["none", "sst2"], "targets": ["tatoeba"],
               "seeds": [SEED], "training": {"save_every": 0, "tasks": {"sst2": SST2}},
               "execution": {"defaults": {"parallel": parallel}},
               "resources": {"train_intermediate": {"default": {"gpu": nproc}}}}  # one process per GPU
    (results / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [sys.executable, "-m", "xstilts", "train", "intermediate", "sst2", "--seed", str(SEED),
           "--configfile", str(ROOT / "config.yaml"), str(results / "overlay.yaml"),
           *(["--stop-after", str(stop_after)] if stop_after else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per process in every run: the same kernels
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=results)
    assert (done.returncode == 0) == (stop_after is None), done.stdout[-2000:] + done.stderr[-4000:]
    return done


def weights(results: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Layout(results).encoder("sst2", SEED) / "model.safetensors"))


def log(results: Path) -> pd.DataFrame:
    return pd.read_parquet(Layout(results).encoder("sst2", SEED) / "training_log.parquet")


def state(results: Path) -> Path:
    return Layout(results).state("intermediate", "sst2", f"seed={SEED}")


@pytest.fixture(scope="module")
def runs(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One unsharded process; two sharded processes straight through; two stopped after 3 of 6 steps, then
    resumed on two processes and (a copy of the same state) on one."""
    _, tokenizer = load_encoder(tiny_encoder)
    folders = {}
    for name in ("one", "fsdp", "stopped"):
        folders[name] = tmp_path_factory.mktemp(name)
        prepared(folders[name], tokenizer, n=96)
    train(tiny_encoder, folders["one"], nproc=1, parallel="ddp")
    train(tiny_encoder, folders["fsdp"], nproc=2)
    stopped = train(tiny_encoder, folders["stopped"], nproc=2, stop_after=3)
    assert "stopped at step 3/6; state saved" in stopped.stderr
    folders["saved"] = tmp_path_factory.mktemp("saved")
    shutil.copytree(state(folders["stopped"]), folders["saved"] / "state")
    folders["resumed_on_one"] = tmp_path_factory.mktemp("resumed_on_one")
    shutil.copytree(folders["stopped"], folders["resumed_on_one"], dirs_exist_ok=True)
    assert "resumed from step 3/6" in train(tiny_encoder, folders["stopped"], nproc=2).stdout
    train(tiny_encoder, folders["resumed_on_one"], nproc=1)
    return folders


def test_fsdp_two_processes_follow_the_loss_curve_of_one(runs: dict[str, Path]) -> None:
    one, two = log(runs["one"]), log(runs["fsdp"])
    assert len(one) == len(two) == 6  # 96 rows / 16 per batch x 2 epochs / 2 accumulated
    assert two["loss"].tolist() == pytest.approx(one["loss"].tolist(), rel=1e-4)
    assert two["dev_metric"].dropna().tolist() == one["dev_metric"].dropna().tolist()
    a, b = weights(runs["one"]), weights(runs["fsdp"])
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)


def test_fsdp_checkpoint_is_a_plain_hugging_face_folder(runs: dict[str, Path], tiny_encoder: Path) -> None:
    folder = Layout(runs["fsdp"]).encoder("sst2", SEED)
    encoder, _ = load_encoder(folder)  # what phase (iii) and evaluation load
    assert all(type(p) is torch.nn.Parameter for p in encoder.parameters())
    facts = json.loads(pd.read_parquet(folder / "manifest.parquet")["run_facts"].iat[0])
    assert (facts["parallel"], facts["processes"]) == ("fsdp", 2)
    assert not state(runs["fsdp"]).exists()  # cleaned after saving
    assert {"tokens_per_s", "mfu"} <= set(log(runs["fsdp"]).columns) and (log(runs["fsdp"])["mfu"] > 0).all()


def test_fsdp_state_is_sharded_and_written_whole(runs: dict[str, Path]) -> None:
    saved = runs["saved"] / "state"
    assert [p.name for p in saved.iterdir()] == ["step-00000003"]  # no temporary left, one complete step
    files = {p.name for p in (saved / "step-00000003").iterdir()}
    assert {".metadata", "run.pt", "rng-0.pt", "rng-1.pt"} <= files
    assert sum(name.endswith(".distcp") for name in files) == 2  # a shard per process


def test_fsdp_preempted_and_resumed_ends_identical(runs: dict[str, Path]) -> None:
    straight, resumed = log(runs["fsdp"]), log(runs["stopped"])
    assert resumed["loss"].tolist() == straight["loss"].tolist()
    a, b = weights(runs["fsdp"]), weights(runs["stopped"])
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_fsdp_state_resumes_on_another_number_of_processes(runs: dict[str, Path]) -> None:
    straight, resumed = log(runs["fsdp"]), log(runs["resumed_on_one"])
    assert resumed["loss"].tolist()[:3] == straight["loss"].tolist()[:3]  # the steps before the stop, restored
    assert resumed["loss"].tolist() == pytest.approx(straight["loss"].tolist(), rel=1e-4)
    a, b = weights(runs["fsdp"]), weights(runs["resumed_on_one"])
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
    facts = json.loads(pd.read_parquet(Layout(runs["resumed_on_one"]).encoder("sst2", SEED) / "manifest.parquet")
                       ["run_facts"].iat[0])
    assert facts["processes"] == 1
