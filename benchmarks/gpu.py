"""Training and evaluation speed on one CUDA GPU, with nothing downloaded (DESIGN.md section 6's GPU goals).

XLM-R Large's architecture with random weights, trained by xstilts' own loop (`training.train`, bf16 autocast,
the run's tokens/s and MFU from its training log) on random token ids of NLI-like lengths (lognormal around 40
tokens, 8-128) and QA-like lengths (around 220, 64-384), dropout 0 so that every attention kernel trains the same
model: padded (SDPA on length-grouped batches) against packed (padding-free, torch's varlen kernel; FlashAttention 2
too when the flash-attn package is there); evaluation throughput (`evaluation.predict`) padded and packed; then
XLM-R XL sharded by FSDP2 on this one GPU (one process; with CPU offload of its optimiser as well), its peak
memory against `xstilts plan`'s estimate. Goals: MFU >= 0.40 for Large, packed >= 1.5x padded tokens/s on
NLI-like lengths. Prints `name: value` lines; `python benchmarks/gpu.py` with src/ on PYTHONPATH (under 8
minutes on an H200). Without CUDA it stops at once, saying so in one line.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaXLConfig, XLMRobertaXLModel

from xstilts import packing, runtime
from xstilts.architectures import ARCHITECTURES
from xstilts.evaluation import predict
from xstilts.families import family
from xstilts.features import Features
from xstilts.models import build_model
from xstilts.plan import Work, training_memory
from xstilts.settings import Execution, HParams
from xstilts.training import TaskData, train

FAMILY = family("pair_classification")
LENGTHS = {"nli": (40, 0.5, 8, 128, 64), "qa": (220, 0.35, 64, 384, 16)}  # median, sigma, min, max, batch size
STEPS = 30


def lengths(kind: str, n: int, seed: int = 0) -> list[int]:
    """n lengths of one kind, lognormal around the median, cut to the range."""
    median, sigma, low, high, _ = LENGTHS[kind]
    g = torch.Generator().manual_seed(seed)
    drawn = torch.exp(math.log(median) + sigma * torch.randn(n, generator=g))
    return drawn.round().clamp(low, high).long().tolist()


def features(kind: str, n: int, vocab: int) -> Features:
    g = torch.Generator().manual_seed(1)
    rows = [[0, *torch.randint(5, vocab, (k - 2,), generator=g).tolist(), 2] for k in lengths(kind, n)]
    labels = torch.randint(0, 3, (n,), generator=g).tolist()
    return Features({"input_ids": rows, "labels": labels}, [len(r) for r in rows])


def encoder(arch: str, attention: str) -> torch.nn.Module:
    """Random weights in an architecture of the table, no dropout, with an attention implementation."""
    a = ARCHITECTURES[arch]
    xl = a.hidden > 1024
    config = (XLMRobertaXLConfig if xl else XLMRobertaConfig)(
        vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
        intermediate_size=a.intermediate, max_position_embeddings=a.positions, type_vocab_size=1, pad_token_id=1,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation=attention)
    torch.manual_seed(0)
    return (XLMRobertaXLModel if xl else XLMRobertaModel)(config)


class Tokenizer:
    """What the training loop asks of a tokenizer: its padding id."""

    pad_token_id = 1


def training(arch: str, kind: str, attention: str, execution: Execution | None = None, steps: int = STEPS
             ) -> dict[str, float]:
    """`steps` optimiser steps (unsharded: after 3 of warm-up on the same model); the training log's last
    tokens/s and MFU, and the peak GPU memory."""
    dev = runtime.device()
    batch = LENGTHS[kind][4]
    hp = HParams(lr=1e-5, batch_size=batch, grad_accum=1, epochs=1.0, max_length=512, dropout=0.0,
                 eval_every=10_000)
    model = build_model(encoder(arch, attention), {"t": {"family": FAMILY.name, "num_labels": 3}}, dropout=0.0)
    vocab = model.encoder.config.vocab_size
    with runtime.process_group(always=execution is not None), tempfile.TemporaryDirectory() as state:
        for n_steps in ([steps] if execution else [3, steps]):  # (a sharded model is sharded once)
            task = TaskData("t", FAMILY, features(kind, batch * n_steps, vocab), None, hp)
            torch.cuda.reset_peak_memory_stats()
            run = train(model, Tokenizer(), [task], optim=hp, seed=0, device=dev, state_dir=Path(state) / str(n_steps),
                        execution=execution)
            torch.cuda.synchronize()
    results = {"tokens_per_s": run.log[-1]["tokens_per_s"], "mfu": run.log[-1]["mfu"],
               "peak_gb": torch.cuda.max_memory_allocated() / 1e9}
    del model, run
    torch.cuda.empty_cache()
    return results


def evaluation(arch: str, attention: str, n: int = 4096) -> float:
    """Evaluation tokens/s of `predict` on NLI-like lengths (batches of 256)."""
    dev = runtime.device()
    model = build_model(encoder(arch, attention), {"t": {"family": FAMILY.name, "num_labels": 3}}, dropout=0.0)
    model.to(dev)
    feats = features("nli", n, model.encoder.config.vocab_size)
    predict(model, "t", FAMILY, feats, pad_id=1, batch_size=256, device=dev)  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    predict(model, "t", FAMILY, feats, pad_id=1, batch_size=256, device=dev)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del model
    torch.cuda.empty_cache()
    return sum(feats.lengths) / seconds


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py: no CUDA device here; run it on a GPU machine")
    started = time.perf_counter()
    name = torch.cuda.get_device_name()
    print(f"gpu: {name}")
    print(f"torch: {torch.__version__}")
    packed_kernels = [packing.VARLEN] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])
    best_mfu, ratio = 0.0, {}
    for kind in ("nli", "qa"):
        padded = training("xlm-roberta-large", kind, "sdpa")
        print(f"large_{kind}_padded_tokens_per_s: {padded['tokens_per_s']:.0f}")
        print(f"large_{kind}_padded_mfu: {padded['mfu']:.3f}")
        best_mfu = max(best_mfu, padded["mfu"])
        for kernel in packed_kernels:
            packed = training("xlm-roberta-large", kind, kernel)
            label = "packed" if kernel == packing.VARLEN else "packed_flash2"
            print(f"large_{kind}_{label}_tokens_per_s: {packed['tokens_per_s']:.0f}")
            print(f"large_{kind}_{label}_mfu: {packed['mfu']:.3f}")
            print(f"large_{kind}_{label}_over_padded: {packed['tokens_per_s'] / padded['tokens_per_s']:.2f}")
            best_mfu = max(best_mfu, packed["mfu"])
            ratio[(kind, label)] = packed["tokens_per_s"] / padded["tokens_per_s"]
    print(f"large_eval_padded_tokens_per_s: {evaluation('xlm-roberta-large', 'sdpa'):.0f}")
    print(f"large_eval_packed_tokens_per_s: {evaluation('xlm-roberta-large', packing.VARLEN):.0f}")
    print(f"large_best_mfu: {best_mfu:.3f}")
    print(f"mfu_goal_ratio: {best_mfu / 0.40:.2f}")  # >= 1 meets the goal
    print(f"packed_goal_ratio: {max(v for (k, _), v in ratio.items() if k == 'nli') / 1.5:.2f}")  # >= 1 meets it

    xl = ARCHITECTURES["facebook/xlm-roberta-xl"]
    for offload in (False, True):
        label = "xl_fsdp_offload" if offload else "xl_fsdp"
        run = training("facebook/xlm-roberta-xl", "nli", packing.VARLEN,
                       Execution(parallel="fsdp", cpu_offload=offload), steps=3 if offload else 10)
        work = Work(0, 0, "benchmark", batch=LENGTHS["nli"][4], length=LENGTHS["nli"][3])
        planned = training_memory(xl, work, processes=1, sharded=True, offload=offload, checkpointing=False)
        print(f"{label}_tokens_per_s: {run['tokens_per_s']:.0f}")
        print(f"{label}_mfu: {run['mfu']:.3f}")
        print(f"{label}_peak_memory_gb: {run['peak_gb']:.1f}")
        print(f"{label}_planned_memory_gb: {planned.device / 1e9:.1f}")  # padded to the longest: an upper bound
    print(f"xl_params_billions: {xl.params / 1e9:.2f}")
    print(f"gpu_benchmark_seconds: {time.perf_counter() - started:.0f}")


if __name__ == "__main__":
    main()
