"""Data parallelism: `xstilts train intermediate ...` with a job size of two GPUs runs two processes under
torchrun (gloo on the CPU) and ends with the weights of a one-process run on the same batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml
from safetensors.torch import load_file

from tests.test_variants import ROOT, prepared
from xstilts.layout import Layout
from xstilts.models import load_encoder


def train(tiny_encoder: Path, results: Path, nproc: int) -> dict:
    # Dropout off and even batches: two halves' mean gradients average to the whole batch's.
    sst2 = {"lr": 1e-3, "batch_size": 16, "grad_accum": 2, "epochs": 2, "max_length": 32, "dropout": 0.0,
            "eval_every": 3}
    overlay = {"results": str(results), "model": str(tiny_encoder), "rows": ["none", "sst2"], "targets": ["tatoeba"],
               "seeds": [4], "training": {"save_every": 0, "tasks": {"sst2": sst2}},
               "resources": {"train_intermediate": {"default": {"gpu": nproc}}}}  # one process per GPU
    (results / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [sys.executable, "-m", "xstilts", "train", "intermediate", "sst2", "--seed", "4",
           "--configfile", str(ROOT / "config.yaml"), str(results / "overlay.yaml")]
    # One thread per process in both runs (torchrun's default): the same kernels, the same sums.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=results)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])


def test_two_processes_train_like_one(tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    runs = {}
    for name, nproc in (("one", 1), ("two", 2)):
        prepared(tmp_path / name, tokenizer, n=96)
        runs[name] = train(tiny_encoder, tmp_path / name, nproc=nproc)
    one, two = runs["one"], runs["two"]
    assert one["steps"] == two["steps"] == 6  # 96 rows / 16 per batch x 2 epochs / 2 accumulated
    assert one["best_step"] == two["best_step"]
    model = {name: Layout(tmp_path / name).encoder("sst2", 4) for name in runs}
    a, b = (load_file(str(model[name] / "model.safetensors")) for name in ("one", "two"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    for name, nproc in (("one", 1), ("two", 2)):  # the processes that trained, as the job size asked
        assert json.loads((model[name] / "_spec.json").read_text())["job_size"]["gpu"] == nproc
        facts = json.loads(pd.read_parquet(model[name] / "manifest.parquet")["run_facts"].iat[0])
        assert facts["processes"] == nproc
    assert not Layout(tmp_path / "two").state("intermediate", "sst2", "seed=4").exists()  # cleaned after saving
