"""The config's typed settings: each dataclass is the one declaration of its keys, types, defaults and bounds.

A field's bounds and description are JSON-schema keywords in its `metadata`; `dataclass_schema` turns a
dataclass into the schema object that `xstilts.config` puts into `workflow/schemas/config.schema.yaml`'s
`$defs` (the YAML holds a placeholder naming the dataclass). No torch, transformers or numpy here: the
Snakefile imports this module through `xstilts.config`, and the DAG must build fast.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

Pooling = Literal["mean", "cls"]
Duplicates = Literal["xtreme", "jiant"]
SamplingMethod = Literal["proportional", "temperature", "capped"]
Parallel = Literal["ddp", "fsdp"]
# Attention kernels (transformers' `attn_implementation`, plus `varlen`: torch.nn.attention.varlen, registered by
# xstilts.packing). The first three take padding-free packed batches (VARLEN_ATTENTION in xstilts.packing).
Attention = Literal["flash_attention_2", "flash_attention_3", "varlen", "sdpa", "eager"]

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass(frozen=True)
class HParams:
    """Per-task hyperparameters (config `training`: `defaults`, then the task's own); defaults are XTREME's /
    jiant's reference settings."""

    lr: float = field(default=1e-5, metadata={
        "description": "peak learning rate (AdamW, linear warmup and decay)", "exclusiveMinimum": 0})
    warmup: float = field(default=0.1, metadata={
        "description": "fraction of the optimiser steps spent warming up", "minimum": 0, "maximum": 1})
    batch_size: int = field(default=4, metadata={"description": "examples per micro-batch", "minimum": 1})
    grad_accum: int = field(default=8, metadata={"description": "micro-batches per optimiser step", "minimum": 1})
    epochs: float = field(default=2.0, metadata={"description": "passes over the training set", "exclusiveMinimum": 0})
    max_length: int = field(default=256, metadata={
        "description": "tokens per example (QA: per context window)", "minimum": 16})
    doc_stride: int = field(default=128, metadata={
        "description": "QA: context tokens between the starts of consecutive windows", "minimum": 1})
    eval_batch_size: int = field(default=64, metadata={"description": "examples per evaluation batch", "minimum": 1})
    weight_decay: float = field(default=0.01, metadata={
        "description": "AdamW weight decay (not on biases and layer norms)", "minimum": 0})
    max_grad_norm: float = field(default=1.0, metadata={"description": "gradient clipping norm", "exclusiveMinimum": 0})
    dropout: float = field(default=0.1, metadata={
        "description": "dropout of the whole model", "minimum": 0, "maximum": 1})
    eval_every: int = field(default=0, metadata={
        "description": "optimiser steps between dev evaluations; 0: once per epoch", "minimum": 0})
    patience: int = field(default=0, metadata={
        "description": "evaluations without improvement before stopping early; 0: never", "minimum": 0})
    max_dev_examples: int = field(default=0, metadata={
        "description": "dev examples evaluated; 0: the whole dev set", "minimum": 0})
    gradient_checkpointing: bool = field(default=False, metadata={
        "description": "recompute activations in backward: less memory, ~30% slower"})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HParams:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


# The fields of HParams that set up a run rather than one task's data: the multi-task row's optimiser
# section (`multitask.optimizer`) holds these; each of its tasks keeps its own batch size, epochs and lengths.
OPTIMIZER_FIELDS = ("lr", "warmup", "grad_accum", "weight_decay", "max_grad_norm", "dropout", "eval_every",
                    "patience", "gradient_checkpointing")


@dataclass(frozen=True)
class Sampling:
    """How multi-task training picks the task of each batch (config `multitask`)."""

    method: SamplingMethod = field(default="proportional", metadata={
        "description": "proportional to the tasks' sizes, size^(1/temperature), or sizes capped at `cap`"})
    temperature: float = field(default=2.0, metadata={
        "description": "the temperature of `method: temperature`", "exclusiveMinimum": 0})
    cap: int = field(default=100_000, metadata={
        "description": "the size cap of `method: capped` (examples)", "minimum": 1})


@dataclass(frozen=True)
class RetrievalSettings:
    """How one retrieval target is evaluated (config `retrieval`: `defaults`, then the target's keys)."""

    pooling: Pooling = field(default="mean", metadata={
        "description": "mean over the non-padding tokens, or the first token (<s>)"})
    layer: int | None = field(default=None, metadata={
        "description": "the `hidden_states` index; null: layer 14 of 24, scaled to the model's depth", "minimum": 0})
    max_length: int = field(default=512, metadata={"description": "tokens per sentence", "minimum": 16})
    batch_size: int = field(default=64, metadata={"description": "sentences per batch", "minimum": 1})
    k: int = field(default=4, metadata={"description": "BUCC: the neighbourhood of the ratio margin", "minimum": 1})
    duplicates: Duplicates = field(default="xtreme", metadata={
        "description": "BUCC: how repeated sentence texts count (`data.bitext_sides`)"})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RetrievalSettings:
        """Settings from a config or CLI mapping; a clear error for an unknown key or value."""
        known = [f.name for f in fields(cls)]
        if not isinstance(values, Mapping):
            raise ValueError(f"retrieval settings are an object of {', '.join(known)}, not {values!r}")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown retrieval setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        settings = cls(**values)
        for name, allowed in (("pooling", get_args(Pooling)), ("duplicates", get_args(Duplicates))):
            if getattr(settings, name) not in allowed:
                raise ValueError(f"retrieval setting {name}={getattr(settings, name)!r}; allowed: "
                                 f"{', '.join(allowed)}")
        return settings


def retrieval_layer(num_hidden_layers: int, reference_layer: int = 14, reference_depth: int = 24) -> int:
    """The `hidden_states` index to pool for a model of this depth (0 = embeddings, i = layer i's output).

    `reference_layer * num_hidden_layers / reference_depth` rounded half up, within [1, num_hidden_layers].
    """
    if num_hidden_layers < 1:
        raise ValueError(f"num_hidden_layers must be positive, got {num_hidden_layers}")
    # integer arithmetic for "round half up": floor(x + 1/2) with x = layer * depth / reference_depth
    scaled = (2 * reference_layer * num_hidden_layers + reference_depth) // (2 * reference_depth)
    return min(max(scaled, 1), num_hidden_layers)


@dataclass(frozen=True)
class JobSize:
    """The size of one GPU job (config `resources.<rule>`: `default` gives every key, `tasks` override some).

    A job runs `tasks_per_node` launchers on each of its `nodes` (one, without srun, when the job has a single
    task), each launcher `gpu / tasks_per_node` training processes (one on a CPU-only job): `processes` in all."""

    gpu: int = field(metadata={"description": "GPUs per node", "minimum": 0})
    cpus_per_gpu: int = field(metadata={"description": "CPU cores per GPU (also the job's threads)", "minimum": 1})
    mem_mb: int = field(metadata={"description": "host memory per node in MB", "minimum": 1})
    runtime: int = field(metadata={"description": "time limit in minutes", "minimum": 1})
    nodes: int = field(default=1, metadata={
        "description": "nodes; several: srun starts the launchers (torchrun), which meet at the first node",
        "minimum": 1})
    tasks_per_node: int = field(default=1, metadata={
        "description": "launchers (SLURM tasks, one torchrun each) per node; must divide gpu", "minimum": 1})

    def __post_init__(self) -> None:
        if self.gpu % self.tasks_per_node:
            raise ValueError(f"tasks_per_node={self.tasks_per_node} does not divide gpu={self.gpu}: every launcher "
                             "needs the same number of GPUs")

    @property
    def tasks(self) -> int:
        """SLURM tasks (launchers) of the job."""
        return self.nodes * self.tasks_per_node

    @property
    def processes_per_task(self) -> int:
        """Training processes per launcher: one per GPU, one on a CPU-only job."""
        return max(1, self.gpu // self.tasks_per_node)

    @property
    def processes(self) -> int:
        """Training processes: one per GPU (data parallel or sharded under torchrun when there are several)."""
        return self.tasks * self.processes_per_task

    @property
    def gpus(self) -> int:
        """GPUs of the whole job."""
        return self.gpu * self.nodes

    @property
    def threads(self) -> int:
        """A node's CPU threads: cpus_per_gpu per process."""
        return self.cpus_per_gpu * self.tasks_per_node * self.processes_per_task


@dataclass(frozen=True)
class Execution:
    """How a training job computes (config `execution`: `defaults`, then the model's entry under `models`, then
    the row's under `rows`). Its outputs do not depend on it beyond rounding, so it is not part of a job's digest.
    Activation checkpointing is `gradient_checkpointing` of the training settings, under either `parallel`."""

    parallel: Parallel = field(default="ddp", metadata={
        "description": "ddp: every process holds the whole model (models that fit one GPU); fsdp: parameters, "
                       "gradients and optimiser state sharded over the job's processes (FSDP2, one unit per "
                       "transformer layer; on GPUs bf16 compute with fp32 master weights and reductions)"})
    cpu_offload: bool = field(default=False, metadata={
        "description": "fsdp: the sharded fp32 parameters, gradients and optimiser state in host memory, the "
                       "optimiser step on the CPU (CPUOffloadPolicy)"})
    attention: Attention = field(default="sdpa", metadata={
        "description": "attention kernel on GPUs (the CPU always uses sdpa): flash_attention_2/3 (package "
                       "flash-attn) and varlen (torch's, no attention dropout) take padding-free packed batches, "
                       "sdpa and eager length-grouped padded ones"})
    compile: bool = field(default=False, metadata={"description": "torch.compile every transformer layer (GPUs)"})


@dataclass(frozen=True)
class PlanSettings:
    """What `xstilts plan` prices a grid with (config `plan`), until finished jobs measure better figures."""

    device: str = field(default="H100", metadata={
        "description": "the GPU the grid runs on (a name of xstilts.devices.DEVICES; `cpu` for the demo)"})
    mfu: float = field(default=0.3, metadata={
        "description": "model FLOPs utilisation assumed until finished jobs' training logs measure one",
        "exclusiveMinimum": 0, "maximum": 1})
    overhead_s: float = field(default=120.0, metadata={
        "description": "seconds a job takes beyond its FLOPs (start, loading, writing), until measured", "minimum": 0})
    gpus_per_node: int = field(default=8, metadata={
        "description": "GPUs per node, to size the sharded jobs the plan suggests", "minimum": 1})
    time_margin: float = field(default=1.5, metadata={
        "description": "suggested time limit over the estimated time", "minimum": 1})


@dataclass(frozen=True)
class MLMSettings:
    """Multilingual MLM batches mixed into phase (ii) (config `variants.<name>.mlm`)."""

    corpus: str = field(metadata={"description": "folder of *.txt files, one sentence per line"})
    ratio: float = field(default=0.25, metadata={
        "description": "fraction of all micro-batches that are MLM", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
    mask_prob: float = field(default=0.15, metadata={
        "description": "fraction of the tokens masked", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
    max_length: int = field(default=128, metadata={"description": "tokens per line", "minimum": 8})
    max_lines: int = field(default=0, metadata={"description": "corpus lines read; 0: every line", "minimum": 0})


# --------------------------------------------------------------------------------------------------
# Robustness, alignment and significance (config `robustness`, `alignment`, `significance`)

# The perturbations `robustness.conditions` lists by default; `adversarial` (a model in the loop) is asked for.
DEFAULT_CONDITIONS = ("char_noise", "case_punct", "word_order", "code_switch")
_RATE = {"description": "the probability of each draw (per word or, in scripts without spaces, per character)",
         "minimum": 0, "maximum": 1}
_SWITCH_LANGUAGES = {
    "description": "the languages words are switched into (never a language into itself); null: English for every "
                   "other language, every other evaluated language of the target for English",
    "items": {"$ref": "#/$defs/language"}, "uniqueItems": True}


@dataclass(frozen=True)
class NoiseSettings:
    """A perturbation of the evaluation text (`char_noise`, `case_punct`, `word_order`)."""

    rate: float = field(default=0.1, metadata=_RATE)


@dataclass(frozen=True)
class CodeSwitchSettings:
    """Words replaced by a translation from the bilingual lexicons (`sources.lexicons`, MUSE format)."""

    rate: float = field(default=0.3, metadata=_RATE)
    languages: tuple[str, ...] | None = field(default=None, metadata=_SWITCH_LANGUAGES)


@dataclass(frozen=True)
class AttackSettings:
    """The greedy lexicon-substitution attack (`adversarial`): per example at most `k` words replaced by
    translations, at most `budget` forward passes."""

    k: int = field(default=3, metadata={"description": "words substituted at most, per example", "minimum": 1})
    budget: int = field(default=64, metadata={
        "description": "forward passes per example at most (the clean pass included)", "minimum": 2})
    languages: tuple[str, ...] | None = field(default=None, metadata=_SWITCH_LANGUAGES)


@dataclass(frozen=True)
class RobustnessSettings:
    """Perturbed evaluation conditions (`xstilts.conditions`), scored beside `clean` by every evaluation job, on a
    `sample` of the examples of the split the tables show.

    Each condition runs on the targets (`targets`, null: the grid's) whose family it serves; the same `seed`
    perturbs the same text the same way in every cell, so that rows are compared on identical inputs."""

    conditions: tuple[str, ...] = field(default=DEFAULT_CONDITIONS, metadata={
        "description": "the perturbations scored beside clean", "items": {"$ref": "#/$defs/condition"},
        "uniqueItems": True})
    targets: tuple[str, ...] | None = field(default=None, metadata={
        "description": "the targets perturbed; null: every target of the grid a condition serves",
        "items": {"$ref": "#/$defs/target"}, "uniqueItems": True})
    seed: int = field(default=0, metadata={"description": "the seed of every perturbation", "minimum": 0})
    sample: float = field(default=0.25, metadata={
        "description": "the share of each table's examples scored under the perturbations (a seeded sample, the same "
                       "for every condition, row and seed; the drops compare it with the clean scores of the same "
                       "examples); 1: every example", "exclusiveMinimum": 0, "maximum": 1})
    char_noise: NoiseSettings = NoiseSettings(rate=0.1)
    case_punct: NoiseSettings = NoiseSettings(rate=0.3)
    word_order: NoiseSettings = NoiseSettings(rate=0.2)
    code_switch: CodeSwitchSettings = CodeSwitchSettings()
    adversarial: AttackSettings = AttackSettings()


@dataclass(frozen=True)
class AlignmentSettings:
    """The alignment probes of every phase-(ii) encoder (`xstilts.alignment`), on the grid's parallel data."""

    max_pairs: int = field(default=1000, metadata={
        "description": "parallel sentence pairs per language at most (a seeded sample)", "minimum": 2})
    pooling: Pooling = field(default="mean", metadata={"description": "sentence vectors: mean or first token"})
    max_length: int = field(default=128, metadata={"description": "tokens per sentence", "minimum": 8})
    batch_size: int = field(default=64, metadata={"description": "sentences per batch", "minimum": 1})
    isotropy_pairs: int = field(default=2000, metadata={
        "description": "random sentence pairs whose mean cosine is the isotropy figure", "minimum": 1})
    layer: int | None = field(default=None, metadata={
        "description": "the layer whose gains are joined with transfer gains; null: the retrieval layer (14 of 24, "
                       "scaled)", "minimum": 0})
    seed: int = field(default=0, metadata={"description": "the seed of the samples", "minimum": 0})


@dataclass(frozen=True)
class SignificanceSettings:
    """The paired bootstrap of every delta (`xstilts.significance`)."""

    resamples: int = field(default=1000, metadata={"description": "bootstrap resamples", "minimum": 10})
    level: float = field(default=0.95, metadata={
        "description": "the confidence level of the intervals", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
    seed: int = field(default=0, metadata={"description": "the seed of the resamples", "minimum": 0})


def from_mapping(cls: type, values: Mapping[str, Any] | None, default: Any = None) -> Any:
    """Settings from a config mapping (checked by the schema): its keys laid over `default` (else the class's
    defaults), nested settings key by key over their own defaults, lists as tuples."""
    base = cls() if default is None else default
    changes = {}
    for f in fields(cls):
        if f.name not in (values or {}):
            continue
        value, current = values[f.name], getattr(base, f.name)
        if is_dataclass(current) and isinstance(value, Mapping):
            value = from_mapping(type(current), value, current)
        changes[f.name] = tuple(value) if isinstance(value, list) else value
    return replace(base, **changes)


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON-schema type (or enum) of a field's annotation."""
    if get_origin(hint) is Literal:
        return {"enum": list(get_args(hint))}
    if get_origin(hint) is tuple:
        return {"type": "array", "items": _type_schema(get_args(hint)[0])}
    if is_dataclass(hint):  # nested settings: their defaults are the enclosing field's
        return dataclass_schema(hint, partial=True, defaults=False)
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) != 1 or len(options) == len(get_args(hint)):
            raise TypeError(f"no JSON-schema type for {hint!r}: only `X | None` unions")
        inner = _type_schema(options[0])
        return {"enum": [*inner["enum"], None]} if "enum" in inner else {**inner, "type": [inner["type"], "null"]}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"no JSON-schema type for {hint!r}")


def dataclass_schema(cls: type, *, partial: bool = False, only: tuple[str, ...] | None = None,
                     defaults: bool = True) -> dict[str, Any]:
    """A settings dataclass as a JSON-schema object: each field's type, default (unless not `defaults`) and
    metadata (bounds, description); a field without default is required, unless `partial` (an override of
    some keys). `only`: these fields alone."""
    hints = get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for f in (f for f in fields(cls) if only is None or f.name in only):
        properties[f.name] = {**_type_schema(hints[f.name]), **f.metadata}
        if f.default is MISSING:
            required += [] if partial else [f.name]
        elif defaults:
            properties[f.name]["default"] = _json(f.default)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    return {**schema, "required": required} if required else schema


def _json(value: Any) -> Any:
    """A default as JSON: settings as objects, tuples as lists."""
    if is_dataclass(value):
        return _json(asdict(value))
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return [_json(v) for v in value] if isinstance(value, tuple) else value
