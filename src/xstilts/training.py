"""The training loop for every phase and task family, single- or multi-task, resumable.

Read top to bottom: a *plan* fixes every micro-batch of the run up front (length-grouped batches per
task, interleaved by the multi-task sampler), so a resumed run replays exactly the same batches; the
loop runs optimiser steps over the plan, evaluates on the English dev sets, keeps the best weights, and
saves a resumable state every `save_every` steps and when SLURM signals (SIGTERM/SIGUSR1). The processes of a
job share the work data-parallel (`DataParallel`: DDP, the whole model in every process) or sharded (`Sharded`:
FSDP2, its resumable state sharded through torch.distributed.checkpoint), as `Execution.parallel` says. The loop
syncs with the device once per optimiser step (the micro-batches' losses), and logs tokens/s and MFU per step.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
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
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from xstilts import devices, packing, runtime
from xstilts.architectures import TRAINING_PASSES, Architecture
from xstilts.errors import Preempted, TrainingError
from xstilts.evaluation import autocast, score_table
from xstilts.families import Family, Scoring
from xstilts.features import Features, length_grouped_batches
from xstilts.models import TransferModel
from xstilts.results_io import atomic_path, write_parquet
from xstilts.settings import Execution, HParams, Sampling


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


Best = dict[str, torch.Tensor]  # the weights at the best dev step, as the strategy keeps them


class DataParallel:
    """Data parallelism over the processes that torchrun starts (one per GPU; gloo on the CPU).

    Every process takes its share of the rows of every micro-batch; DDP averages the gradients, and
    synchronises only on the last micro-batch of an optimiser step. One process alone: a no-op. The first
    process evaluates, keeps the best weights (on the host) and writes the resumable state (`state.pt`).
    """

    sharded = False

    def __init__(self, model: TransferModel, device: torch.device) -> None:
        on = dist.is_available() and dist.is_initialized()
        self.model, self.device = model.to(device), device  # NCCL reduces CUDA tensors, gloo CPU ones
        self.world, self.rank = (dist.get_world_size(), dist.get_rank()) if on else (1, 0)
        # Multi-task steps use one head each, and the encoder's pooler is never used.
        self.net = DistributedDataParallel(model, find_unused_parameters=True) if self.world > 1 else model

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

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The processes' mean of `values` (each process's losses: the whole batch's loss is logged)."""
        if self.world > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
            values /= self.world
        return values

    def snapshot(self, best: Best | None) -> Best | None:
        """The current weights as the new best (the first process's host copy; the others keep none)."""
        if self.rank != 0:
            return best
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.model.state_dict().items()}

    def restore(self, best: Best | None) -> None:
        if best is not None:  # (the first process's: the only one that saves)
            self.model.load_state_dict(best)

    def save(self, state_dir: Path, opt: torch.optim.Optimizer, sched: Any, run: RunState, best: Best | None) -> None:
        if self.rank == 0:
            state_dir.mkdir(parents=True, exist_ok=True)
            if best is not None:
                with atomic_path(state_dir / "best.safetensors") as tmp:
                    save_file(best, str(tmp))
            payload = {"model": self.model.state_dict(), "optimizer": opt.state_dict(),
                       "scheduler": sched.state_dict(), **_rng_state(), "run": _run_payload(run)}
            with atomic_path(state_dir / "state.pt") as tmp:
                torch.save(payload, tmp)
        self.barrier()

    def load(self, state_dir: Path, opt: torch.optim.Optimizer, sched: Any) -> tuple[RunState, Best | None]:
        path = state_dir / "state.pt"
        if not path.is_file():
            return RunState(), None
        payload = torch.load(path, weights_only=True, map_location="cpu")  # nothing is unpickled
        self.model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        sched.load_state_dict(payload["scheduler"])
        _set_rng_state(payload)
        best_file = state_dir / "best.safetensors"
        return _run_state(payload["run"]), load_file(str(best_file)) if best_file.is_file() else None


class Sharded(DataParallel):
    """FSDP2 over the job's processes (one is enough: a process group of one). One unit per transformer layer,
    the rest (embeddings, heads) in the root unit; on GPUs bf16 compute with fp32 master weights and fp32
    gradient reductions, on the CPU fp32; with `cpu_offload` the shards and the optimiser live on the host.
    Gradients are reduce-scattered after every micro-batch (accumulating unsharded ones would hold a whole
    model's). Every process evaluates (a forward pass needs them all) and keeps its shard of the best weights.
    The resumable state is a torch.distributed.checkpoint directory per saved step, `step-NNNNNNNN`, written
    whole as `.step-NNNNNNNN.tmp` and then renamed (the newest complete one is loaded), that loads on any
    number of processes.
    """

    sharded = True

    def __init__(self, model: TransferModel, device: torch.device, execution: Execution) -> None:
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

        self.model, self.device = model, device  # fully_shard moves each process's shards to its device
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        cuda = device.type == "cuda"
        options = {"mp_policy": MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                   if cuda else MixedPrecisionPolicy(),
                   # (on the CPU the shards are in host memory already)
                   "offload_policy": CPUOffloadPolicy() if execution.cpu_offload and cuda else OffloadPolicy()}
        for layer in transformer_layers(model.encoder):
            fully_shard(layer, **options)
        fully_shard(model, **options)
        self.net = model

    def accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def snapshot(self, best: Best | None) -> Best:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return {k: v.detach().clone() for k, v in get_model_state_dict(self.model).items()}

    def restore(self, best: Best | None) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        if best is not None:
            set_model_state_dict(self.model, best)

    def save(self, state_dir: Path, opt: torch.optim.Optimizer, sched: Any, run: RunState, best: Best | None) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        name = f"step-{run.step:08d}"
        tmp, final = state_dir / f".{name}.tmp", state_dir / name
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)  # a crashed attempt's
        self.barrier()
        model_state, optim_state = get_state_dict(self.model, opt)
        dcp.save({"model": model_state, "optim": optim_state, **({"best": best} if best is not None else {})},
                 checkpoint_id=tmp)
        torch.save(_rng_state(), tmp / f"rng-{self.rank}.pt")
        if self.rank == 0:
            torch.save({"scheduler": sched.state_dict(), "run": _run_payload(run)}, tmp / "run.pt")
        self.barrier()
        if self.rank == 0:
            os.replace(tmp, final)
            for old in _saved_steps(state_dir)[:-1]:
                shutil.rmtree(old, ignore_errors=True)
        self.barrier()

    def load(self, state_dir: Path, opt: torch.optim.Optimizer, sched: Any) -> tuple[RunState, Best | None]:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

        saved = _saved_steps(state_dir)
        if not saved:
            return RunState(), None
        latest = saved[-1]
        model_state, optim_state = get_state_dict(self.model, opt)  # (initialises the optimiser's moments)
        keys = dcp.FileSystemReader(str(latest)).read_metadata().state_dict_metadata
        owners = {k.rsplit(".", 1)[0] for k in keys}  # parameters that had moments when saved (not the pooler)
        optim_state["state"] = {p: v for p, v in optim_state["state"].items() if f"optim.state.{p}" in owners}
        state: dict[str, Any] = {"model": model_state, "optim": optim_state}
        if any(k.startswith("best.") for k in keys):
            state["best"] = {k: v.detach().clone() for k, v in model_state.items()}
        dcp.load(state, checkpoint_id=latest)  # resharded onto this run's processes
        set_state_dict(self.model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"],
                       options=StateDictOptions(strict=False))  # (parameters without moments: as saved)
        payload = torch.load(latest / "run.pt", weights_only=True)  # nothing is unpickled
        sched.load_state_dict(payload["scheduler"])
        rng = latest / f"rng-{self.rank}.pt"  # on more processes than saved, the new ones take the first's
        _set_rng_state(torch.load(rng if rng.is_file() else latest / "rng-0.pt", weights_only=True))
        return _run_state(payload["run"]), state.get("best")


def strategy(model: TransferModel, device: torch.device, execution: Execution) -> DataParallel:
    """How this job's processes share the model (their process group is up when there are several)."""
    return Sharded(model, device, execution) if execution.parallel == "fsdp" else DataParallel(model, device)


def transformer_layers(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's transformer layers: the modules of its module list that holds the most parameters."""
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise TrainingError(f"cannot find the transformer layers of {type(encoder).__name__} to shard")
    return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters())))


def gathered_state(model: TransferModel) -> dict[str, torch.Tensor] | None:
    """A sharded model's whole weights, gathered once onto the first process's host (the others get {}); None
    when the model is not sharded (every process holds it whole). Every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.tensor import DTensor

    if not any(isinstance(p, DTensor) for p in model.parameters()):
        return None
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _saved_steps(state_dir: Path) -> list[Path]:
    """The complete sharded states in a state directory, oldest first."""
    return sorted(state_dir.glob("step-*")) if state_dir.is_dir() else []


def _rng_state() -> dict[str, Any]:
    state = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def _run_payload(run: RunState) -> dict[str, Any]:
    return {**asdict(run), "log": pd.DataFrame(run.log).to_dict("list")}


def _run_state(payload: dict[str, Any]) -> RunState:
    run = dict(payload)
    log = pd.DataFrame(run.pop("log")).to_dict("records")
    return RunState(**run, log=log)


class Throughput:
    """This process's real tokens and model FLOPs over the seconds spent computing them (dev evaluations and
    state saves left out): the tokens/s and MFU of the training log."""

    def __init__(self, model: TransferModel, device: torch.device) -> None:
        self.arch = Architecture.from_config(model.encoder.config.to_dict())
        self.peak = devices.peak_flops(runtime.device_name(device), torch.get_num_threads())
        self.tokens, self.flops, self.seconds = 0, 0.0, 0.0

    def add(self, attention_mask: torch.Tensor, mlm: bool) -> None:
        """A micro-batch's real tokens and FLOPs, from its mask on the host (no device sync)."""
        lengths = attention_mask.reshape(-1, attention_mask.shape[-1]).sum(1).tolist()
        self.tokens += sum(lengths)
        self.flops += TRAINING_PASSES * self.arch.forward_flops(lengths, mlm=mlm)

    def entry(self) -> dict[str, float]:
        if self.seconds <= 0:
            return {"tokens_per_s": 0.0, "mfu": float("nan")}
        return {"tokens_per_s": self.tokens / self.seconds, "mfu": devices.mfu(self.flops, self.seconds, self.peak)}


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


def train(model: TransferModel, tokenizer: PreTrainedTokenizerBase, tasks: list[TaskData], *, optim: HParams,
          seed: int, device: torch.device, state_dir: Path, sampling: Sampling | None = None, save_every: int = 0,
          stop_after: int | None = None, execution: Execution | None = None) -> RunState:
    """Train `model` on `tasks` with the optimiser settings `optim` (lr, warmup, accumulation, clipping,
    evaluation cadence, patience); on return it holds the weights that scored best on the dev sets.
    Without `eval_every` it evaluates once per epoch of the longest scored task. `execution` says how the
    processes share the model (ddp by default).

    `stop_after` ends the run as if preempted after that many steps (tests of resumption).
    """
    torch.manual_seed(seed)
    hp = optim
    plan = make_plan(tasks, seed, sampling)
    steps = math.ceil(len(plan) / hp.grad_accum)
    epochs = max([t.hp.epochs for t in tasks if t.dev is not None] or [1.0])
    eval_every = hp.eval_every or max(1, math.ceil(steps / max(1.0, epochs)))
    par = strategy(model, device, execution or Execution())
    opt = _optimizer(model, hp)
    sched = get_linear_schedule_with_warmup(opt, int(hp.warmup * steps), steps)
    run, best = par.load(state_dir, opt, sched)
    if run.step and par.rank == 0:
        print(f"resumed from step {run.step}/{steps} ({state_dir})", flush=True)
    stop = StopSignal()
    pad = tokenizer.pad_token_id
    packed, first_position = packing.packs(model.encoder), packing.position_offset(model.encoder.config)
    speed = Throughput(model, device)
    bar = tqdm(total=steps, initial=run.step, desc="train", mininterval=2.0, dynamic_ncols=True,
               disable=par.rank != 0)
    clock = time.perf_counter()
    resumed_wall = run.log[-1].get("wall_s", 0.0) if run.log else 0.0  # wall seconds of earlier attempts
    while run.step < steps:
        model.train()
        started = time.perf_counter()
        micro = plan[run.step * hp.grad_accum:(run.step + 1) * hp.grad_accum]
        losses = []
        for i, (t, rows) in enumerate(micro):
            task = tasks[t]
            host = task.family.collate(task.train, par.shard(rows), pad)
            speed.add(host["attention_mask"], mlm=task.family.name == "mlm")
            if packed:  # the boundaries of the rows, found on the host
                host["packing"] = packing.pack(host["attention_mask"], first_position)
            batch = {k: v.to(device, non_blocking=True) for k, v in host.items()}
            with par.accumulating(last=i == len(micro) - 1):
                with autocast(device):
                    loss, _ = par.net(task.name, batch)
                (loss / len(micro)).backward()
            losses.append(loss.detach())
        values = par.mean(torch.stack(losses)).tolist()  # a step's one sync (check, log), every backward queued
        total_loss = 0.0
        for (t, _), value in zip(micro, values, strict=True):
            if not math.isfinite(value):
                raise TrainingError(f"loss is {value} at step {run.step} on task {tasks[t].name!r}: "
                                    f"training diverged; lower `lr` (now {hp.lr}) or check the data")
            total_loss += value / len(micro)
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        run.step += 1
        speed.seconds += time.perf_counter() - started
        entry = {"step": run.step, "loss": total_loss, "lr": sched.get_last_lr()[0], **speed.entry(),
                 "dev_metric": float("nan"), "wall_s": resumed_wall + time.perf_counter() - clock}
        if run.step % eval_every == 0 or run.step == steps:  # by the first process (sharded: by all of them)
            dev = dev_metrics(model, tokenizer, tasks, device) if par.rank == 0 or par.sharded else {}
            entry["dev_metric"] = par.from_first(float(np.mean(list(dev.values()))) if dev else 0.0)
            if entry["dev_metric"] > run.best_metric:
                run.best_metric, run.best_step, run.evals_since_best = entry["dev_metric"], run.step, 0
                best = par.snapshot(best)
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
            par.save(state_dir, opt, sched, run, best)
            if interrupted:
                bar.close()
                raise Preempted(f"stopped at step {run.step}/{steps}; state saved in {state_dir}")
    bar.close()
    par.restore(best)
    return run


def write_log(run: RunState, path: Path) -> None:
    """The per-step training log as parquet: step, loss, lr, tokens/s and MFU of the first process (over its
    compute time: evaluations and saves left out), dev metric, wall seconds so far (earlier attempts included)."""
    columns = ["step", "loss", "lr", "tokens_per_s", "mfu", "dev_metric", "wall_s"]
    write_parquet(pd.DataFrame(run.log, columns=columns), path)
