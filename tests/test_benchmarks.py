"""The GPU benchmark's own code on the CPU (benchmarks/gpu.py needs CUDA to run for real): it refuses in one
line without a GPU; its length draws, data and training and evaluation steps work on a tiny architecture, with
torch's CUDA calls as no-ops and a reference in place of the varlen kernel."""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.test_packing import reference_varlen
from xstilts import packing
from xstilts.architectures import ARCHITECTURES, Architecture
from xstilts.settings import Execution

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 0)
    monkeypatch.setattr(packing, "varlen_attn", reference_varlen)
    monkeypatch.setitem(ARCHITECTURES, "tiny", Architecture(layers=2, hidden=32, heads=4, intermediate=64, vocab=300))
    monkeypatch.setattr(module, "STEPS", 2)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_gpu_benchmark_refuses_in_one_line_without_cuda() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == "benchmarks/gpu.py: no CUDA device here; run it on a GPU machine"


def test_gpu_benchmark_draws_nli_and_qa_like_lengths(gpu: ModuleType) -> None:
    nli, qa = gpu.lengths("nli", 4000), gpu.lengths("qa", 4000)
    assert min(nli) >= 8 and max(nli) <= 128 and 35 <= statistics.median(nli) <= 45
    assert min(qa) >= 64 and max(qa) <= 384 and 200 <= statistics.median(qa) <= 240
    feats = gpu.features("nli", 50, vocab=300)
    assert feats.lengths == gpu.lengths("nli", 50) and max(max(r) for r in feats.columns["input_ids"]) < 300


@pytest.mark.parametrize("attention", ["sdpa", packing.VARLEN])
def test_gpu_benchmark_trains_and_evaluates(gpu: ModuleType, attention: str) -> None:
    result = gpu.training("tiny", "nli", attention)
    assert result["tokens_per_s"] > 0 and result["mfu"] > 0
    assert gpu.evaluation("tiny", attention, n=64) > 0


def test_gpu_benchmark_trains_sharded_on_one_process(gpu: ModuleType) -> None:
    """The XL measurement's path: FSDP on a process group of one (CPU offload takes effect on CUDA only)."""
    result = gpu.training("tiny", "qa", packing.VARLEN, Execution(parallel="fsdp", cpu_offload=True), steps=2)
    assert result["tokens_per_s"] > 0
