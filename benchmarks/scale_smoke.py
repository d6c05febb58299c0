"""Real sizes on a small machine: XLM-R Large's architecture with random weights through xstilts' phase-(iii)
training loop on the CPU (a classification head, sequences of 256 tokens), stopped as if preempted after the
first of two optimiser steps (its resumable state saved), resumed in a new model, finished, then one evaluation
batch. Prints `name: value` lines: peak memory (resident set), the state's size on disk and the time to save and
to load it, seconds per step. `python benchmarks/scale_smoke.py [--model xlm-roberta-large] [--batch 4]`: heavy
(about 10 GB of memory, minutes on 2 cores); not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import tempfile
import time
from pathlib import Path

import torch
from gpu import Tokenizer, encoder  # benchmarks/gpu.py: the same random-weight architectures

from xstilts import training
from xstilts.architectures import ARCHITECTURES
from xstilts.errors import Preempted
from xstilts.evaluation import predict
from xstilts.families import family
from xstilts.features import Features
from xstilts.models import TransferModel, build_model
from xstilts.settings import HParams

FAMILY = family("pair_classification")
CPU = torch.device("cpu")


def model(name: str) -> TransferModel:
    return build_model(encoder(name, "sdpa"), {"t": {"family": FAMILY.name, "num_labels": 3}})


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def timed(method: str, laps: dict[str, float]) -> None:
    """Time every call of a `training.DataParallel` method into `laps[method]`."""
    original = getattr(training.DataParallel, method)

    def wrapper(self: training.DataParallel, *args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            laps[method] = laps.get(method, 0.0) + time.perf_counter() - start

    setattr(training.DataParallel, method, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xlm-roberta-large", choices=sorted(ARCHITECTURES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    a = parser.parse_args()
    hp = HParams(lr=1e-5, batch_size=a.batch, grad_accum=1, epochs=1.0, max_length=a.length, eval_every=10_000)
    g = torch.Generator().manual_seed(0)
    rows = [[0, *torch.randint(5, 250_000, (a.length - 2,), generator=g).tolist(), 2] for _ in range(2 * a.batch)]
    feats = Features({"input_ids": rows, "labels": [i % 3 for i in range(len(rows))]}, [a.length] * len(rows))
    task = training.TaskData("t", FAMILY, feats, None, hp)
    laps: dict[str, float] = {}
    for method in ("save", "load"):
        timed(method, laps)
    print(f"threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(dir="/tmp") as state:
        start = time.perf_counter()
        first = model(a.model)
        print(f"build_seconds: {time.perf_counter() - start:.1f}")
        start = time.perf_counter()
        with contextlib.suppress(Preempted):  # after the first step, its state saved
            training.train(first, Tokenizer(), [task], optim=hp, seed=0, device=CPU, state_dir=Path(state),
                           stop_after=1)
        print(f"first_step_seconds: {time.perf_counter() - start - laps['save']:.1f}")
        print(f"state_save_seconds: {laps['save']:.1f}")
        print(f"state_gb: {sum(p.stat().st_size for p in Path(state).rglob('*') if p.is_file()) / 1e9:.2f}")
        print(f"peak_memory_after_save_gb: {peak_gb():.1f}")
        del first
        resumed = model(a.model)  # a new process would build it so: only the state carries over
        start = time.perf_counter()
        run = training.train(resumed, Tokenizer(), [task], optim=hp, seed=0, device=CPU, state_dir=Path(state))
        print(f"state_load_seconds: {laps['load']:.1f}")
        print(f"resumed_step_seconds: {time.perf_counter() - start - laps['load']:.1f}")
        print(f"steps: {run.step}")
    start = time.perf_counter()
    outputs = predict(resumed, "t", FAMILY, Features(feats.columns, feats.lengths), pad_id=1, batch_size=len(rows),
                      device=CPU)
    print(f"evaluation_batch_seconds: {time.perf_counter() - start:.1f} ({len(outputs)} sequences)")
    print(f"peak_memory_gb: {peak_gb():.1f}")


if __name__ == "__main__":
    main()
