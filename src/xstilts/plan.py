"""`xstilts plan`: what a grid costs before it runs, job by job, and whether its `resources` are enough.

Per job (`Grid.jobs`' trainings and evaluations):
- tokens: counted from the prepared caches with the model's tokenizer once they exist (the training caches'
  tokenised copies, the evaluation tables), else from the catalogue's typical sizes (`Typical`); `tokens_from`
  says which. Training tokens count every epoch; its dev evaluations are added to its FLOPs;
- FLOPs (`xstilts.architectures`): 6 x params x tokens plus attention for training, 2 x for evaluation;
- peak memory per GPU at the job's processes (`memory`): weights, gradients, AdamW's moments, the best weights
  kept, activations at the configured batch and length, and the FSDP shards that would fit one GPU;
- hours: a fixed time per job (start, loading, writing) plus its FLOPs at a rate per process, the configured
  MFU of the device's peak (`PlanSettings`) until finished jobs measure both (`calibrate`: the training logs'
  MFU, or tokens/s, and the jobs' times), per rule.
`check` refuses a grid whose resources ask for too little memory or time; `suggested_resources` sizes them.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xstilts.architectures import TRAINING_PASSES, Architecture, architecture
from xstilts.catalogue import DATASETS, TARGETS, Typical
from xstilts.conditions import CLEAN, CLEAN_SAMPLE
from xstilts.devices import DEVICES, Device, device_for, peak_flops
from xstilts.grid import Grid
from xstilts.jobs import cached_features, tokenised_cache, tokenizer_key
from xstilts.layout import MANIFEST_FILE, TRAINING_LOG_FILE
from xstilts.settings import HParams, JobSize
from xstilts.specs import EvaluateSpec, TrainSpec

GIB = 2 ** 30
CONTEXT_BYTES = 1.5 * GIB  # a CUDA context and the allocator's slack
USABLE = 0.9  # of a GPU's memory
RECOMPUTE = 4 / 3  # activation checkpointing runs every forward pass twice
MLM_LENGTH = 0.5  # typical MLM corpus lines fill half of their maximum length
RULES = ("train_intermediate", "train_target", "evaluate")


# --------------------------------------------------------------------------------------------------
# Tokens and FLOPs


@dataclass(frozen=True)
class Work:
    """What a job computes: tokens, FLOPs, where the tokens were counted, and its training's micro-batch
    (examples of sequences of a length) for the memory of its activations."""

    tokens: float
    flops: float
    tokens_from: str
    dev_flops: float = 0.0  # (of `flops`) a training's dev evaluations
    batch: int = 0
    sequences: int = 1
    length: int = 0
    mlm: bool = False


class Counter:
    """Sequence lengths of a grid's data: from its prepared caches (with the model's tokenizer, loaded once when
    needed), else from the catalogue."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self._tokenizer: Any = None
        self._seen: dict[tuple[Any, ...], Any] = {}  # jobs share data folders: each read and tokenised once

    @property
    def tokenizer(self) -> Any:
        folder = self.grid.base_model
        if self._tokenizer is None and (folder / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return self._tokenizer

    def _once(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._seen:
            self._seen[key] = compute()
        return self._seen[key]

    def training(self, folder: Path, dataset: str, hp: HParams) -> tuple[list[int], int, str]:
        """A training split's sequence lengths (a question's choices each), its rows, and where they came from:
        its tokenised cache (made here if missing, as the training would make it), else the catalogue."""
        if self.tokenizer is None or not (folder / "train.parquet").is_file():
            typical = DATASETS[dataset].typical
            return _typical(typical, typical.train, hp.max_length), typical.train, "catalogue"

        def tokenised() -> tuple[list[int], int, str]:
            from xstilts.families import family

            path = tokenised_cache(folder, tokenizer_key(self.tokenizer), hp)
            if not path.is_file():
                cached_features(folder, family(DATASETS[dataset].family), self.tokenizer, hp)
            return _lengths(pq.read_table(path, columns=["input_ids"]))

        return self._once(("train", folder, hp.max_length, hp.doc_stride), tokenised)

    def rows(self, path: Path, typical: int) -> int:
        return pq.ParquetFile(path).metadata.num_rows if path.is_file() else typical

    def evaluation(self, spec: EvaluateSpec, hp: HParams | None) -> tuple[list[int], str]:
        """The sequence lengths one evaluation job runs (a retrieval pair: both sentences)."""
        target = TARGETS[spec.target]
        lengths: list[int] = []
        sources = set()
        max_length = spec.retrieval.max_length if spec.retrieval else hp.max_length
        for lang in self.grid.languages(spec.target):
            for split in target.splits_for(lang):
                path = spec.data / split / f"{lang}.parquet"
                if path.is_file() and self.tokenizer is not None:
                    table = self._once(("eval", path, max_length, hp and hp.doc_stride),
                                       lambda p=path: self._table(pd.read_parquet(p), target.family, max_length, hp))
                    sources.add("cache")
                else:
                    table = _typical(target.typical, target.typical.examples(split), max_length)
                    sources.add("catalogue")
                lengths += table
                if split == target.report_split:
                    lengths += perturbed(spec, table)
        return lengths, "+".join(sorted(sources))

    def _table(self, df: pd.DataFrame, family_name: str, max_length: int, hp: HParams | None) -> list[int]:
        if family_name == "retrieval":
            sentences = [s for column in ("source", "target") for s in df[column].dropna()]
            return [len(ids) for ids in self.tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]]
        from xstilts.families import family

        feats = family(family_name).tokenise(df, self.tokenizer, max_length, doc_stride=hp.doc_stride)
        return _flat(feats.columns["input_ids"])


def perturbed(spec: EvaluateSpec, clean: list[int]) -> list[int]:
    """The sequences the robustness conditions beyond clean add to one table: each condition's seeded `sample`
    of it, the adversarial attack's up to `budget` forward passes per sampled example (an upper bound)."""
    if spec.robustness is None:
        return []
    sampled = clean[:: max(1, round(1 / spec.robustness.sample))]
    return [n for c in spec.conditions if c not in (CLEAN, CLEAN_SAMPLE)  # the sample's clean scores: no pass
            for n in sampled * (spec.robustness.adversarial.budget if c == "adversarial" else 1)]


def _flat(rows: Iterable[Any]) -> list[int]:
    """Sequence lengths of tokenised rows (a multiple-choice row: one sequence per choice)."""
    return [len(seq) for row in rows for seq in (row if row and isinstance(row[0], list) else [row])]


def _lengths(table: Any) -> tuple[list[int], int, str]:
    column = table.column("input_ids")
    rows = len(column)
    if str(column.type.value_type).startswith("list"):  # multiple choice
        column = pc.list_flatten(column)
    return pc.list_value_length(column).to_pylist(), rows, "cache"


def _typical(typical: Typical, examples: int, max_length: int) -> list[int]:
    """`examples` typical examples as sequences: each of `sequences`, of tokens / sequences (cut at max_length)."""
    length = max(1, min(max_length, round(typical.tokens / typical.sequences)))
    return [length] * (examples * typical.sequences)


def training_work(spec: TrainSpec, arch: Architecture, counter: Counter) -> Work:
    """A training's tokens and FLOPs over all its epochs, its dev evaluations included."""
    flops = tokens = 0.0
    batches = dev_flops = 0.0
    sources = set()
    scored_epochs = []
    first = None
    for task in spec.tasks:
        hp = spec.hparams[task]
        lengths, rows, source = counter.training(spec.data[task], counter.grid.dataset_source(task)[0], hp)
        sources.add(source)
        forward = arch.forward_flops(lengths)
        flops += TRAINING_PASSES * hp.epochs * forward
        tokens += hp.epochs * sum(lengths)
        batches += math.ceil(math.ceil(rows / hp.batch_size) * hp.epochs)
        typical = DATASETS[counter.grid.dataset_source(task)[0]].typical
        dev = counter.rows(spec.data[task] / "dev.parquet", typical.validation)
        dev = min(dev, hp.max_dev_examples) if hp.max_dev_examples else dev
        dev_flops += dev * forward / max(1, rows)
        scored_epochs.append(hp.epochs)
        first = first or (hp, max(1, round(len(lengths) / max(1, rows))))
    hp, sequences = first
    if spec.mlm is not None:  # its share of the micro-batches, lines of about half their maximum length
        mlm_batches = spec.mlm.ratio / (1 - spec.mlm.ratio) * batches
        lines = [round(MLM_LENGTH * spec.mlm.max_length)] * round(mlm_batches * hp.batch_size)
        flops += TRAINING_PASSES * arch.forward_flops(lines, mlm=True)
        tokens += sum(lines)
        batches += mlm_batches
    steps = math.ceil(batches / spec.optim.grad_accum)
    eval_every = spec.optim.eval_every or max(1, math.ceil(steps / max(1.0, max(scored_epochs))))
    dev_flops *= math.ceil(steps / eval_every)
    return Work(tokens, flops + dev_flops, "+".join(sorted(sources)), dev_flops=dev_flops, batch=hp.batch_size,
                sequences=sequences, length=hp.max_length, mlm=spec.mlm is not None)


def evaluation_work(spec: EvaluateSpec, arch: Architecture, counter: Counter) -> Work:
    trainset = TARGETS[spec.target].trainset
    lengths, source = counter.evaluation(spec, counter.grid.hparams(trainset) if trainset else None)
    return Work(float(sum(lengths)), arch.forward_flops(lengths), source)


# --------------------------------------------------------------------------------------------------
# Memory


@dataclass(frozen=True)
class Memory:
    """Peak bytes of one training process on its GPU and on its host."""

    device: float
    host: float


def training_memory(arch: Architecture, work: Work, *, processes: int, sharded: bool, offload: bool,
                    checkpointing: bool) -> Memory:
    """A training process's peak memory. Unsharded (DDP, autocast): fp32 weights, gradients and AdamW's two
    moments plus the bf16 weight copies autocast keeps for the backward pass, 18 bytes per parameter; the best
    weights on the host. Sharded over `processes`: 16 bytes per parameter and 4 for the best weights, divided
    among them (on the host with `offload`), plus the bf16 layers gathered at a time (one, and the next one
    prefetched) and the root unit (embeddings, heads). Activations in bf16: 18 x hidden + 4 x intermediate bytes
    per token and layer (Korthikanti et al. 2022, without attention scores: SDPA and FlashAttention keep none),
    2 x hidden with activation checkpointing (and one layer's whole); the MLM head's fp32 logits and their
    gradient. Every process loads the whole fp32 model on its host before it shards it."""
    params = arch.params
    rows = math.ceil(work.batch / processes)
    tokens = rows * work.sequences * work.length
    layer = 18 * arch.hidden + 4 * arch.intermediate
    per_token = (2 * arch.hidden * arch.layers + layer) if checkpointing else layer * arch.layers
    activations = tokens * per_token + (tokens * arch.vocab * 8 if work.mlm else 0)
    if not sharded:
        return Memory(18 * params + activations + CONTEXT_BYTES, 8 * params)
    state = 20 * params / processes
    gathered = 2 * 2 * arch.layer_params + 2 * (params - arch.layers * arch.layer_params)
    device = gathered + activations + CONTEXT_BYTES + (0 if offload else state)
    return Memory(device, 4 * params + (state if offload else 0))


def evaluation_memory(arch: Architecture) -> Memory:
    """An evaluation: fp32 weights and autocast's bf16 copies (activations of one layer at a time are small)."""
    return Memory(6 * arch.params + CONTEXT_BYTES, 4 * arch.params)


def shards_needed(arch: Architecture, work: Work, device: Device, *, sharded: bool, offload: bool,
                  checkpointing: bool, most: int = 4096) -> int | None:
    """The fewest processes whose shards fit one GPU; unsharded (`sharded` False), 1 when the whole model fits
    one GPU. None if no number does (the activations alone overflow it: a smaller batch or activation
    checkpointing)."""
    if not device.memory_gb:
        return 1
    usable = USABLE * device.memory_gb * 1e9
    if not sharded and training_memory(arch, work, processes=1, sharded=False, offload=False,
                                       checkpointing=checkpointing).device <= usable:
        return 1
    for shards in range(1 if sharded else 2, most + 1):
        if training_memory(arch, work, processes=shards, sharded=True, offload=offload,
                           checkpointing=checkpointing).device <= usable:
            return shards
    return None


# --------------------------------------------------------------------------------------------------
# Rates: configured, or measured from finished jobs


@dataclass(frozen=True)
class Rate:
    """FLOP/s per process and seconds per job beyond the FLOPs, of one rule; `source` says whence."""

    flops_per_s: float
    overhead_s: float
    source: str


def configured_rate(grid: Grid, size: JobSize) -> Rate:
    settings = grid.plan_settings
    device = DEVICES[settings.device]
    return Rate(settings.mfu * device.peak(size.cpus_per_gpu), settings.overhead_s, "configured")


def measured(grid: Grid, spec: TrainSpec | EvaluateSpec, work: Work) -> tuple[float, float | None] | None:
    """A finished job's seconds and, for a training, its FLOP/s per process while computing (the log's MFU of
    its device's peak, or its tokens/s); None if it has not finished on the plan's device kind."""
    from xstilts.results_io import read_manifest
    from xstilts.status import log_seconds, training_seconds

    if isinstance(spec, EvaluateSpec):
        if not spec.out.is_file():
            return None
        scores = pd.read_parquet(spec.out, columns=["wall_seconds", "device"])
        if not len(scores) or _kind(scores["device"].iat[0]) != grid.plan_settings.device:
            return None
        return float(scores["wall_seconds"].iat[0]), None
    manifest, log = spec.out / MANIFEST_FILE, spec.out / TRAINING_LOG_FILE
    if not (manifest.is_file() and log.is_file()):
        return None
    facts = json.loads(read_manifest(manifest).column("run_facts")[0].as_py())
    if _kind(facts.get("device", "")) != grid.plan_settings.device:
        return None
    seconds = log_seconds(spec.log) or training_seconds(spec)
    if seconds is None:
        return None
    steps = pd.read_parquet(log)
    if "mfu" in steps and steps["mfu"].notna().any():
        rate = float(steps["mfu"].median()) * (peak_flops(facts["device"], facts["threads"]["torch"]) or 0)
    else:  # a log without MFU: its tokens/s at this job's FLOPs per token
        rate = float(steps["tokens_per_s"].median()) * work.flops / max(1.0, work.tokens)
    return seconds, rate if rate > 0 else None


def _kind(device_name: str) -> str | None:
    found = device_for(device_name)
    return found.name if found else None


Observation = tuple[str, float, float, int, float | None]  # task, FLOPs, seconds, processes, FLOP/s a process


def calibrate(observations: dict[str, list[Observation]], fallback: dict[str, Rate]
              ) -> dict[tuple[str, str | None], Rate]:
    """Rates from finished jobs (task, FLOPs, seconds, processes, FLOP/s per process or None), per rule (key
    (rule, None)) and per rule and task ((rule, task): a task's data cost the same in every row). A rule's rate:
    the median of its trainings' logged rates, else a least-squares fit of seconds = overhead + FLOPs / rate;
    its time per job, and each task's, the median of what the FLOPs leave of the jobs' seconds. A rule without
    finished jobs keeps its fallback."""
    rates: dict[tuple[str, str | None], Rate] = {(rule, None): rate for rule, rate in fallback.items()}
    for rule, jobs in observations.items():
        if not jobs:
            continue
        logged = [r for *_, r in jobs if r]
        if logged:
            rate = statistics.median(logged)
        else:
            flops = np.array([f / p for _, f, _, p, _ in jobs])
            seconds = np.array([s for _, _, s, _, _ in jobs])
            slope = np.polyfit(flops, seconds, 1)[0] if len(jobs) > 1 and np.ptp(flops) > 0 else 0.0
            rate = 1 / slope if slope > 0 else fallback[rule].flops_per_s

        def overhead(some: list[Observation], rate: float = rate) -> float:
            return statistics.median(max(0.0, s - f / (rate * p)) for _, f, s, p, _ in some)

        rates[rule, None] = Rate(rate, overhead(jobs), f"measured ({len(jobs)} jobs)")
        for task in sorted({t for t, *_ in jobs}):
            mine = [j for j in jobs if j[0] == task]
            rates[rule, task] = Rate(rate, overhead(mine), f"measured ({len(jobs)} jobs, {len(mine)} of {task})")
    return rates


# --------------------------------------------------------------------------------------------------
# The plan


def _rule(spec: TrainSpec | EvaluateSpec) -> str:
    return "evaluate" if isinstance(spec, EvaluateSpec) else f"train_{spec.phase}"


def _task(spec: TrainSpec | EvaluateSpec) -> str:
    """The name a job is sized by in `resources.<rule>.tasks` (grid.SIZED_BY): row, training set, target."""
    return spec.target if isinstance(spec, EvaluateSpec) else spec.trainset or spec.row


def fitted(size: JobSize, shards: int | None, per_node: int) -> JobSize:
    """The job size the plan suggests: the configured one when its processes hold the shards a GPU fits, else
    enough GPUs for them, whole nodes of `per_node` beyond one node (a job that fits nowhere: one full node)."""
    need = per_node if shards is None else shards
    if size.processes >= need:
        return size
    nodes = math.ceil(need / per_node)
    return JobSize(gpu=need if nodes == 1 else per_node, cpus_per_gpu=size.cpus_per_gpu, mem_mb=size.mem_mb,
                   runtime=size.runtime, nodes=nodes)


def plan(grid: Grid, calibrate_from: Sequence[tuple[str, ...]] | None = None) -> pd.DataFrame:
    """One row per training and evaluation job of the grid (see the module's docstring): its work, its memory
    and hours at the configured size (`hours`: what its time limit must cover), and the size the plan suggests
    (`fit_*`, the configured one when it fits: when any training needs shards, all of them shard, as one
    `execution` entry for the model does; `gpu_hours` at that size). Rates are measured from the grid's finished
    jobs (only those whose keys are in `calibrate_from`, when given)."""
    arch, arch_from = architecture(grid.config["model"], grid.base_model)
    settings = grid.plan_settings
    device = DEVICES[settings.device]
    counter = Counter(grid)
    specs = [s for s in grid.jobs() if isinstance(s, TrainSpec | EvaluateSpec)]
    works = {s.key: training_work(s, arch, counter) if isinstance(s, TrainSpec) else evaluation_work(s, arch, counter)
             for s in specs}

    def needed(spec: TrainSpec, sharded: bool) -> int | None:
        return shards_needed(arch, works[spec.key], device, sharded=sharded, offload=spec.execution.cpu_offload,
                             checkpointing=spec.optim.gradient_checkpointing)

    trainings = [s for s in specs if isinstance(s, TrainSpec)]
    shard_all = any(needed(s, s.execution.parallel == "fsdp") != 1 for s in trainings)
    records, observations = [], {rule: [] for rule in RULES}
    for spec in specs:
        size, work = spec.size, works[spec.key]
        if isinstance(spec, TrainSpec):
            execution, checkpointing = spec.execution, spec.optim.gradient_checkpointing
            sharded = execution.parallel == "fsdp"
            fit = fitted(size, needed(spec, shard_all or sharded), settings.gpus_per_node)
            now, then = (training_memory(arch, work, processes=s.processes, sharded=on, offload=execution.cpu_offload,
                                         checkpointing=checkpointing)
                         for s, on in ((size, sharded), (fit, shard_all or sharded)))
            shards = needed(spec, sharded)
        else:
            execution, checkpointing, shards, fit = None, False, 1, size
            now = then = evaluation_memory(arch)
        finished = measured(grid, spec, work)
        recompute = RECOMPUTE if checkpointing else 1.0
        computed = recompute * (work.flops - work.dev_flops) + work.dev_flops  # dev evaluations: no recompute
        if finished and (calibrate_from is None or spec.key in calibrate_from):
            # a log's rate counts model FLOPs: with checkpointing the device computed `recompute` times them
            observations[_rule(spec)].append((_task(spec), computed, finished[0], size.processes,
                                              finished[1] and finished[1] * recompute))
        records.append({
            "rule": _rule(spec), "job": " ".join(spec.key[1:]), "key": spec.key, "task": _task(spec),
            "params": arch.params,
            "architecture_from": arch_from, "tokens": work.tokens, "tokens_from": work.tokens_from,
            "flops": work.flops, "recompute": recompute, "computed_flops": computed,
            "parallel": execution.parallel if execution else "single", "processes": size.processes,
            "gpus": size.gpus, "nodes": size.nodes, "gpu_gb": now.device / 1e9,
            "host_gb_per_node": now.host * size.processes / size.nodes / 1e9, "shards_needed": shards,
            "runtime_min": size.runtime, "mem_mb": size.mem_mb, "fit_gpu": fit.gpu, "fit_nodes": fit.nodes,
            "fit_gpu_gb": then.device / 1e9, "fit_host_gb_per_node": then.host * fit.processes / fit.nodes / 1e9,
            "fit_parallel": ("fsdp" if shard_all or execution.parallel == "fsdp" else "ddp") if execution else "single",
            "measured_hours": finished[0] / 3600 if finished else math.nan, "_sizes": (size, fit)})
    fallback = {rule: configured_rate(grid, next((r["_sizes"][0] for r in records if r["rule"] == rule),
                                                 JobSize(gpu=1, cpus_per_gpu=1, mem_mb=1, runtime=1)))
                for rule in RULES}
    rates = calibrate(observations, fallback)
    for record in records:
        rate = rates.get((record["rule"], record["task"]), rates[record["rule"], None])
        size, fit = record.pop("_sizes")
        work_s = record["computed_flops"] / rate.flops_per_s
        fit_hours = (rate.overhead_s + work_s / fit.processes) / 3600
        record.update(mfu=rate.flops_per_s / device.peak(size.cpus_per_gpu), rate_from=rate.source,
                      overhead_s=rate.overhead_s, hours=(rate.overhead_s + work_s / size.processes) / 3600,
                      fit_hours=fit_hours, gpu_hours=fit_hours * max(1, fit.gpus))
    frame = pd.DataFrame.from_records(records)
    frame.attrs.update(model=str(grid.config["model"]), device=device.name)
    return frame


def totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per rule and in all: jobs, tokens, FLOPs, GPU-hours (device-hours on the CPU)."""
    columns = {"jobs": ("job", "count"), "tokens": ("tokens", "sum"), "flops": ("flops", "sum"),
               "gpu_hours": ("gpu_hours", "sum")}
    per_rule = frame.groupby("rule", sort=False).agg(**columns)
    per_rule.loc["total"] = per_rule.sum()
    return per_rule


def render(frame: pd.DataFrame) -> str:
    """The plan as text: one line per job, then the totals."""
    shown = pd.DataFrame({
        "rule": frame["rule"], "job": frame["job"], "Mtokens": frame["tokens"] / 1e6, "from": frame["tokens_from"],
        "PFLOP": frame["flops"] / 1e15, "parallel": frame["parallel"], "procs": frame["processes"],
        "GB/GPU": frame["gpu_gb"], "shards": frame["shards_needed"], "mfu": frame["mfu"],
        "hours": frame["hours"], "asked_min": frame["runtime_min"], "fit_gpus": frame["fit_gpu"] * frame["fit_nodes"],
        "GPU-h": frame["gpu_hours"]})
    total = totals(frame)
    total["Mtokens"], total["PFLOP"] = total.pop("tokens") / 1e6, total.pop("flops") / 1e15
    arch = frame["architecture_from"].iat[0] if len(frame) else ""
    head = (f"plan of {frame.attrs.get('model')} ({frame['params'].iat[0] / 1e9:.2f}B parameters, from {arch}) on "
            f"{frame.attrs.get('device')}: {len(frame)} jobs" if len(frame) else "no jobs")
    return "\n".join([head, "", shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"), "",
                      total.to_string(float_format=lambda v: f"{v:,.4g}")]) + "\n"


def check(frame: pd.DataFrame, device: Device) -> list[str]:
    """The jobs whose resources ask for too little: GPUs for the memory, host memory, or time; a few lines each."""
    problems = []
    usable = USABLE * device.memory_gb
    for r in frame.itertuples(index=False):
        need_min = math.ceil(r.hours * 60)
        if device.memory_gb and r.rule != "evaluate":
            if r.shards_needed is None:
                problems.append(f"{r.job}: its activations alone overflow a {device.name} ({device.memory_gb} GB); "
                                "lower batch_size or turn on gradient_checkpointing")
            elif r.parallel == "ddp" and r.shards_needed > 1:
                problems.append(f"{r.job}: needs {r.gpu_gb:.0f} GB per GPU unsharded (a {device.name} has "
                                f"{device.memory_gb}): set execution parallel: fsdp with >= {r.shards_needed} GPUs")
            elif r.parallel == "fsdp" and r.gpu_gb > usable:
                problems.append(f"{r.job}: needs >= {r.shards_needed} GPUs for its shards, has {r.processes} "
                                f"({r.gpu_gb:.0f} GB per GPU > {usable:.0f} usable)")
        elif device.memory_gb and r.gpu_gb > usable:
            problems.append(f"{r.job}: needs a GPU of >= {r.gpu_gb / USABLE:.0f} GB (a {device.name} has "
                            f"{device.memory_gb}); an evaluation is not sharded")
        if r.host_gb_per_node * 1000 > r.mem_mb:
            problems.append(f"{r.job}: needs mem_mb >= {math.ceil(r.host_gb_per_node * 1000)} per node "
                            f"(asks {r.mem_mb})")
        if r.runtime_min < need_min:
            problems.append(f"{r.job}: needs runtime >= {need_min} min (estimated {r.hours:.2f} h at MFU "
                            f"{r.mfu:.2f}, {r.rate_from}), asks {r.runtime_min}")
    return problems


def suggested_resources(grid: Grid, frame: pd.DataFrame) -> dict[str, Any]:
    """A config overlay of every job sized by the plan (`fit_*`): per rule the largest size as `default` and
    the time limit of the median job (its estimate times `time_margin`); the whole size of every task that
    needs more time or that the config sizes itself; host memory with a fifth to spare; `execution` fsdp for
    the model when the trainings shard."""
    settings = grid.plan_settings
    overlay: dict[str, Any] = {"resources": {}}
    for rule in RULES:
        sizes: dict[str, dict[str, int]] = {}
        for r in frame[frame["rule"] == rule].itertuples(index=False):
            size = {"gpu": r.fit_gpu, "nodes": r.fit_nodes,
                    "mem_mb": max(r.mem_mb, math.ceil(r.fit_host_gb_per_node * 1000 * 1.2)),
                    "runtime": max(10, math.ceil(r.fit_hours * 60 * settings.time_margin))}
            sizes[r.task] = {k: max(v, sizes.get(r.task, size)[k]) for k, v in size.items()}
        if not sizes:
            continue
        cpus = grid.job_size(rule, next(iter(sizes))).cpus_per_gpu
        default = {**{k: max(s[k] for s in sizes.values()) for k in ("gpu", "nodes", "mem_mb")},
                   "runtime": math.ceil(statistics.median(s["runtime"] for s in sizes.values())), "cpus_per_gpu": cpus}
        configured = ((grid.config.get("resources") or {}).get(rule) or {}).get("tasks") or {}
        tasks = {t: {**default, "runtime": max(s["runtime"], default["runtime"])} for t, s in sizes.items()
                 if s["runtime"] > default["runtime"] or t in configured}
        overlay["resources"][rule] = {"default": {k: int(v) for k, v in default.items()},
                                      **({"tasks": {t: {k: int(v) for k, v in size.items()}
                                                    for t, size in tasks.items()}} if tasks else {})}
    if (frame["fit_parallel"] == "fsdp").any():
        overlay["execution"] = {"models": {str(grid.config["model"]): {"parallel": "fsdp"}}}
    return overlay
