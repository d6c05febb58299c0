"""The training loop for every phase and task family, single- or multi-task, resumable.

Read top to bottom: a *plan* fixes every micro-batch of the run up front (length-grouped batches per
task, interleaved by the multi-task sampler), so a resumed run replays exactly the same batches; the
loop runs optimiser steps over the plan, evaluates on the English dev sets, keeps the best weights, and
saves a resumable state every `save_every` steps and when SLURM signals (SIGTERM/SIGUSR1).
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from xstilts.errors import Preempted, TrainingError
from xstilts.evaluation import autocast, score_table
from xstilts.families import Family, Scoring
from xstilts.features import Features, length_grouped_batches
from xstilts.models import TransferModel
from xstilts.results_io import atomic_path, write_parquet
from xstilts.settings import HParams, Sampling


@dataclass
class TaskData:
    """One task's training features, its dev table (None: not scored, e.g. mixed-in MLM batches) and how
    its dev predictions are scored; `hp` its data settings (batch size, epochs, lengths)."""

    name: str
    family: Family
    train: Features
    dev: pd.DataFrame | None
    hp: HParams
    scoring: Scoring | None = None


@dataclass
class RunState:
    step: int = 0
    best_metric: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)


def make_plan(tasks: list[TaskData], seed: int, sampling: Sampling | None = None) -> list[tuple[int, list[int]]]:
    """Every micro-batch of the run as (task index, row indices), fixed by the seed."""
    sampling = sampling or Sampling()
    streams, totals = [], []
    for t, task in enumerate(tasks):
        per_epoch = math.ceil(len(task.train) / task.hp.batch_size)
        total = max(1, math.ceil(per_epoch * task.hp.epochs))
        stream: list[list[int]] = []
        epoch = 0
        while len(stream) < total:
            g = torch.Generator().manual_seed(seed * 1_000_003 + t * 7_919 + epoch)
            stream += length_grouped_batches(task.train.lengths, task.hp.batch_size, g)
            epoch += 1
        streams.append(stream[:total])
        totals.append(total)
    g = torch.Generator().manual_seed(seed)
    if len(tasks) == 1 or sampling.method == "proportional":
        order = torch.cat([torch.full((n,), t) for t, n in enumerate(totals)])
        order = order[torch.randperm(len(order), generator=g)].tolist()
    else:
        sizes = torch.tensor([float(len(t.train)) for t in tasks])
        weights = (sizes ** (1 / sampling.temperature) if sampling.method == "temperature"
                   else sizes.clamp(max=sampling.cap))
        order = torch.multinomial(weights / weights.sum(), sum(totals), replacement=True, generator=g).tolist()
    cursor = [0] * len(tasks)
    plan = []
    for t in order:
        plan.append((t, streams[t][cursor[t] % totals[t]]))
        cursor[t] += 1
    return plan


class StopSignal:
    """Remembers that SIGTERM or SIGUSR1 arrived, so the loop can save its state at a step boundary."""

    def __init__(self) -> None:
        self.received: int | None = None
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.received = signum


class DataParallel:
    """Data parallelism over the processes that torchrun starts (one per GPU; gloo on the CPU).

    Every process takes its share of the rows of every micro-batch; DDP averages the gradients, and
    synchronises only on the last micro-batch of an optimiser step. One process alone: a no-op.
    """

    def __init__(self, model: TransferModel) -> None:
        on = dist.is_available() and dist.is_initialized()
        self.world, self.rank = (dist.get_world_size(), dist.get_rank()) if on else (1, 0)
        # Multi-task steps use one head each, and the encoder's pooler is never used.
        self.net = DistributedDataParallel(model, find_unused_parameters=True) if self.world > 1 else model
        self.device = next(model.parameters()).device  # NCCL reduces CUDA tensors, gloo CPU ones

    def shard(self, rows: list[int]) -> list[int]:
        return rows[self.rank::self.world] or rows[:1]  # a batch smaller than the world: repeat a row

    def accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        return self.net.no_sync() if self.world > 1 and not last else contextlib.nullcontext()

    def from_first(self, value: float) -> float:
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _optimizer(model: TransferModel, hp: HParams) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=hp.lr, fused=True)  # fused kernels on CUDA and CPU alike


def dev_metrics(model: TransferModel, tokenizer: PreTrainedTokenizerBase, tasks: list[TaskData],
                device: torch.device) -> dict[str, float]:
    """The model-selection metric of each task on its English dev set."""
    out = {}
    for task in (t for t in tasks if t.dev is not None and t.scoring is not None):
        dev = task.dev.iloc[: task.hp.max_dev_examples] if task.hp.max_dev_examples else task.dev
        scores = score_table(model, task.name, task.scoring, dev, tokenizer, max_length=task.hp.max_length,
                             doc_stride=task.hp.doc_stride, batch_size=task.hp.eval_batch_size, device=device)
        out[task.name] = scores[task.scoring.metric]
    return out


def _save_state(state_dir: Path, model: TransferModel, opt: torch.optim.Optimizer, sched: Any,
                run: RunState, best: dict[str, torch.Tensor] | None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    if best is not None:
        with atomic_path(state_dir / "best.safetensors") as tmp:
            save_file(best, str(tmp))
    payload = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
               "rng": torch.get_rng_state(), "run": {**asdict(run), "log": pd.DataFrame(run.log).to_dict("list")}}
    if torch.cuda.is_available():
        payload["cuda_rng"] = torch.cuda.get_rng_state_all()
    with atomic_path(state_dir / "state.pt") as tmp:
        torch.save(payload, tmp)


def _load_state(state_dir: Path, model: TransferModel, opt: torch.optim.Optimizer, sched: Any
                ) -> tuple[RunState, dict[str, torch.Tensor] | None]:
    path = state_dir / "state.pt"
    if not path.is_file():
        return RunState(), None
    payload = torch.load(path, weights_only=True, map_location="cpu")  # nothing is unpickled
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng"])
    if "cuda_rng" in payload and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    run = payload["run"]
    log = pd.DataFrame(run.pop("log")).to_dict("records")
    best_file = state_dir / "best.safetensors"
    best = load_file(str(best_file)) if best_file.is_file() else None
    return RunState(**run, log=log), best


def train(model: TransferModel, tokenizer: PreTrainedTokenizerBase, tasks: list[TaskData], *, optim: HParams,
          seed: int, device: torch.device, state_dir: Path, sampling: Sampling | None = None, save_every: int = 0,
          stop_after: int | None = None) -> RunState:
    """Train `model` on `tasks` with the optimiser settings `optim` (lr, warmup, accumulation, clipping,
    evaluation cadence, patience); on return it holds the weights that scored best on the dev sets.
    Without `eval_every` it evaluates once per epoch of the longest scored task.

    `stop_after` ends the run as if preempted after that many steps (tests of resumption).
    """
    torch.manual_seed(seed)
    hp = optim
    plan = make_plan(tasks, seed, sampling)
    steps = math.ceil(len(plan) / hp.grad_accum)
    epochs = max([t.hp.epochs for t in tasks if t.dev is not None] or [1.0])
    eval_every = hp.eval_every or max(1, math.ceil(steps / max(1.0, epochs)))
    model.to(device)
    opt = _optimizer(model, hp)
    sched = get_linear_schedule_with_warmup(opt, int(hp.warmup * steps), steps)
    run, best = _load_state(state_dir, model, opt, sched)
    if run.step:
        print(f"resumed from step {run.step}/{steps} ({state_dir})", flush=True)
    stop = StopSignal()
    par = DataParallel(model)
    pad = tokenizer.pad_token_id
    bar = tqdm(total=steps, initial=run.step, desc="train", mininterval=2.0, dynamic_ncols=True,
               disable=par.rank != 0)
    tokens, clock = 0, time.perf_counter()
    resumed_wall = run.log[-1].get("wall_s", 0.0) if run.log else 0.0  # wall seconds of earlier attempts
    while run.step < steps:
        model.train()
        micro = plan[run.step * hp.grad_accum:(run.step + 1) * hp.grad_accum]
        total_loss = 0.0
        for i, (t, rows) in enumerate(micro):
            task = tasks[t]
            host = task.family.collate(task.train, par.shard(rows), pad)
            tokens += int(host["attention_mask"].sum())  # counted on the host: no device sync
            batch = {k: v.to(device, non_blocking=True) for k, v in host.items()}
            with par.accumulating(last=i == len(micro) - 1):
                with autocast(device):
                    loss, _ = par.net(task.name, batch)
                (loss / len(micro)).backward()
            value = loss.item()  # the one sync of a micro-batch (check and log), once backward is queued
            if not math.isfinite(value):
                raise TrainingError(f"loss is {value} at step {run.step} on task {task.name!r}: "
                                    f"training diverged; lower `lr` (now {hp.lr}) or check the data")
            total_loss += value / len(micro)
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        run.step += 1
        elapsed = time.perf_counter() - clock
        entry = {"step": run.step, "loss": total_loss, "lr": sched.get_last_lr()[0],
                 "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0, "dev_metric": float("nan"),
                 "wall_s": resumed_wall + elapsed}
        if run.step % eval_every == 0 or run.step == steps:  # evaluated once, by the first process
            dev = dev_metrics(model, tokenizer, tasks, device) if par.rank == 0 else {}
            entry["dev_metric"] = par.from_first(float(np.mean(list(dev.values()))) if dev else 0.0)
            if entry["dev_metric"] > run.best_metric:
                run.best_metric, run.best_step, run.evals_since_best = entry["dev_metric"], run.step, 0
                if par.rank == 0:
                    best = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
            else:
                run.evals_since_best += 1
        run.log.append(entry)
        bar.update(1)
        bar.set_postfix(loss=f"{total_loss:.3f}", dev=f"{run.best_metric:.1f}", tok_s=f"{entry['tokens_per_s']:.0f}")
        early = hp.patience and run.evals_since_best >= hp.patience
        if early:
            break
        due = save_every and run.step % save_every == 0
        interrupted = par.any(stop.received is not None or (stop_after is not None and run.step >= stop_after))
        if (due or interrupted) and run.step < steps:
            if par.rank == 0:
                _save_state(state_dir, model, opt, sched, run, best)
            par.barrier()
            if interrupted:
                bar.close()
                raise Preempted(f"stopped at step {run.step}/{steps}; state saved in {state_dir}")
    bar.close()
    if best is not None:  # (the first process's: the only one that saves)
        model.load_state_dict(best)
    return run


def write_log(run: RunState, path: Path) -> None:
    """The per-step training log (step, loss, lr, tokens/s, dev metric, wall seconds so far) as parquet."""
    columns = ["step", "loss", "lr", "tokens_per_s", "dev_metric", "wall_s"]
    write_parquet(pd.DataFrame(run.log, columns=columns), path)
