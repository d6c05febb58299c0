"""Data parallelism: `xstilts train --nproc 2` on the CPU (gloo, two processes under torchrun) ends
with the weights of a one-process run on the same batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.test_variants import prepared
from xstilts.models import load_encoder


def train(tiny_encoder: Path, data_dir: Path, out: Path, nproc: int) -> dict:
    # Dropout off and even batches: two halves' mean gradients average to the whole batch's.
    hparams = {"sst2": {"lr": 1e-3, "batch_size": 16, "grad_accum": 2, "epochs": 2, "max_length": 32,
                        "dropout": 0.0, "eval_every": 3}}
    cmd = [sys.executable, "-m", "xstilts.cli", "train", "--phase", "target", "--tasks", "sst2",
           "--init", str(tiny_encoder), "--data", str(data_dir), "--out", str(out), "--state",
           str(out.parent / f"state{nproc}"), "--hparams", json.dumps(hparams), "--seed", "4", "--nproc", str(nproc)]
    # One thread per process in both runs (torchrun's default): the same kernels, the same sums.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])


def test_two_processes_train_like_one(tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    data_dir = prepared(tmp_path, tokenizer, n=96)
    one = train(tiny_encoder, data_dir, tmp_path / "one", nproc=1)
    two = train(tiny_encoder, data_dir, tmp_path / "two", nproc=2)
    assert one["steps"] == two["steps"] == 6  # 96 rows / 16 per batch x 2 epochs / 2 accumulated
    assert one["best_step"] == two["best_step"]
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("one", "two"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    assert not (tmp_path / "state2").exists()  # the first process cleaned the state after saving
