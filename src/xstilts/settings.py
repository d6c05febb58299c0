"""The config's typed settings: each dataclass is the one declaration of its keys, types, defaults and bounds.

A field's bounds and description are JSON-schema keywords in its `metadata`; `dataclass_schema` turns a
dataclass into the schema object that `xstilts.config` puts into `workflow/schemas/config.schema.yaml`'s
`$defs` (the YAML holds a placeholder naming the dataclass). No torch, transformers or numpy here: the
Snakefile imports this module through `xstilts.config`, and the DAG must build fast.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

Pooling = Literal["mean", "cls"]
Duplicates = Literal["xtreme", "jiant"]
SamplingMethod = Literal["proportional", "temperature", "capped"]

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


@dataclass(frozen=True)
class JobSize:
    """The size of one GPU job (config `resources.<rule>`: `default` gives every key, `tasks` override some)."""

    gpu: int = field(metadata={"description": "GPUs", "minimum": 0})
    cpus_per_gpu: int = field(metadata={"description": "CPU cores per GPU (also the job's threads)", "minimum": 1})
    mem_mb: int = field(metadata={"description": "host memory in MB", "minimum": 1})
    runtime: int = field(metadata={"description": "time limit in minutes", "minimum": 1})

    @property
    def processes(self) -> int:
        """Training processes: one per GPU (data parallel under torchrun when there are several)."""
        return max(1, self.gpu)

    @property
    def threads(self) -> int:
        """The job's CPU threads: cpus_per_gpu per process."""
        return self.cpus_per_gpu * self.processes


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


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON-schema type (or enum) of a field's annotation."""
    if get_origin(hint) is Literal:
        return {"enum": list(get_args(hint))}
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) != 1 or len(options) == len(get_args(hint)):
            raise TypeError(f"no JSON-schema type for {hint!r}: only `X | None` unions")
        inner = _type_schema(options[0])
        return {"enum": [*inner["enum"], None]} if "enum" in inner else {"type": [inner["type"], "null"]}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"no JSON-schema type for {hint!r}")


def dataclass_schema(cls: type, *, partial: bool = False, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A settings dataclass as a JSON-schema object: each field's type, default and metadata (bounds,
    description); a field without default is required, unless `partial` (an override of some keys).
    `only`: these fields alone."""
    hints = get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for f in (f for f in fields(cls) if only is None or f.name in only):
        properties[f.name] = {**_type_schema(hints[f.name]), **f.metadata}
        if f.default is not MISSING:
            properties[f.name]["default"] = f.default
        elif not partial:
            required.append(f.name)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    return {**schema, "required": required} if required else schema
