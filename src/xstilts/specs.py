"""Typed job specs: every job of the grid as data, built once by the grid (`xstilts.grid.Grid`).

A spec holds what its job reads and writes (paths from `xstilts.layout`), its log and resumable state, its
resolved settings and its size on the cluster. A rule passes only a job's identity (`xstilts evaluate mnli
xnli --seed 1 --configfile results/config.yaml`): the CLI builds the same spec from the same config and
runs it (`xstilts.jobs.run`); `xstilts submit`, `status`, `rerun` and the report read the same specs.
Every job writes its spec beside its outputs (`layout.SPEC_FILE`), so a checkpoint or a scores file says
how it was made, and an evaluation reads the settings of the checkpoint it scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from xstilts.settings import (
    AlignmentSettings,
    Execution,
    HParams,
    JobSize,
    MLMSettings,
    RetrievalSettings,
    RobustnessSettings,
    Sampling,
    SignificanceSettings,
)

Phase = Literal["intermediate", "target"]


@dataclass(frozen=True)
class Spec:
    """What every job has: a log, a size on the cluster (None: a local job), its outputs and inputs."""

    kind: ClassVar[str]
    log: Path

    @property
    def key(self) -> tuple[str, ...]:
        """The job's identity, e.g. ("evaluate", "mnli", "xnli", "1")."""
        raise NotImplementedError

    @property
    def outputs(self) -> dict[str, Path]:
        raise NotImplementedError

    @property
    def inputs(self) -> dict[str, Path]:
        return {}

    @property
    def size(self) -> JobSize | None:
        return None

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values (paths as strings), with its kind."""
        return {"kind": self.kind, **_plain(dataclasses.asdict(self))}

    @property
    def digest(self) -> str:
        """A hash of what decides the job's outputs (its log, size and way of computing left out): Snakemake's
        `params`, so a job whose settings change runs again, and only that job."""
        settings = {k: v for k, v in self.to_json().items() if k not in ("log", "job_size", "execution")}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def write(self, folder: Path) -> None:
        """Write the spec beside the job's outputs (into a folder being built; see `layout.SPEC_FILE`)."""
        from xstilts.layout import SPEC_FILE
        from xstilts.results_io import write_text

        write_text(json.dumps(self.to_json(), indent=1, sort_keys=True), folder / SPEC_FILE)


@dataclass(frozen=True)
class DemoDataSpec(Spec):
    """The demo's generated world: every hub schema, local sources, lexicons and an MLM corpus."""

    kind: ClassVar[str] = "demo_data"
    out: Path
    languages: dict[str, tuple[str, ...]]
    seed: int
    sizes: dict[str, int]
    translations: dict[str, tuple[str, ...]]

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind,)

    @property
    def outputs(self) -> dict[str, Path]:
        return {"world": self.out}


@dataclass(frozen=True)
class DemoPretrainSpec(Spec):
    """Phase (i) in miniature: the demo's tokenizer and tiny XLM-R."""

    kind: ClassVar[str] = "demo_pretrain"
    corpus: Path
    out: Path
    model: dict[str, Any]
    world: Path

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind,)

    @property
    def inputs(self) -> dict[str, Path]:
        return {"world": self.world}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"model": self.out}


@dataclass(frozen=True)
class FetchModelSpec(Spec):
    """The phase-(i) encoder downloaded once from the hub, so GPU jobs load it with the hub offline."""

    kind: ClassVar[str] = "fetch_model"
    model: str
    out: Path

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind,)

    @property
    def outputs(self) -> dict[str, Path]:
        return {"model": self.out}


@dataclass(frozen=True)
class PrepareSpec(Spec):
    """A task loaded from its source into the parquet cache: an English training dataset (`dataset`) or
    every language of a target (`target`)."""

    kind: ClassVar[str] = "prepare"
    what: Literal["dataset", "target"]
    name: str  # the cache's name: a dataset (a variant with translations: the variant's), or a target
    task: str  # the catalogue entry it reads
    out: Path
    sources: dict[str, Any]
    languages: tuple[str, ...] = ()
    translations: dict[str, Any] | None = None
    world: Path | None = None  # the demo's world, which a demo run prepares from

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, self.what, self.name)

    @property
    def meta(self) -> Path:
        from xstilts.layout import META_FILE

        return self.out / META_FILE

    @property
    def inputs(self) -> dict[str, Path]:
        return {"world": self.world} if self.world else {}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"meta": self.meta}


@dataclass(frozen=True)
class InitUntrainedSpec(Spec):
    """The untrained control's encoder: the base model's architecture and tokenizer, random weights."""

    kind: ClassVar[str] = "init_untrained"
    like: Path
    out: Path
    seed: int

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, str(self.seed))

    @property
    def inputs(self) -> dict[str, Path]:
        return {"like": self.like}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"encoder": self.out}


@dataclass(frozen=True)
class TrainSpec(Spec):
    """Phase (ii) (`intermediate`: the encoder is kept) or (iii) (`target`: encoder and head are kept).

    `hparams` are each dataset's settings (batch size, epochs, lengths; defaults then the task's own);
    `optim` the run's optimiser settings (lr, warmup, accumulation, dropout, ...): a single task's own, the
    multi-task row's section of its own (`multitask.optimizer`); `execution` how it computes (ddp or fsdp, ...)."""

    kind: ClassVar[str] = "train"
    phase: Phase
    row: str
    seed: int
    trainset: str | None  # phase (iii): the English training set; None in phase (ii)
    tasks: tuple[str, ...]
    hparams: dict[str, HParams]
    optim: HParams
    sampling: Sampling
    init: Path
    data: dict[str, Path]  # dataset -> its prepared cache folder
    out: Path
    state: Path
    job_size: JobSize
    mlm: MLMSettings | None = None
    save_every: int = 0
    deterministic: bool = False
    execution: Execution = field(default_factory=Execution)

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, self.phase, self.row, *((self.trainset,) if self.trainset else ()), str(self.seed))

    @property
    def size(self) -> JobSize:
        return self.job_size

    @property
    def inputs(self) -> dict[str, Path]:
        from xstilts.layout import META_FILE

        return {"init": self.init, **{f"data_{t}": folder / META_FILE for t, folder in self.data.items()}}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"checkpoint": self.out}


@dataclass(frozen=True)
class EvaluateSpec(Spec):
    """One cell: every language and split of a target, under every condition, from one loaded model.
    Classification, tagging and QA take their lengths and batch size from the checkpoint's own spec.

    `robustness`: the settings of the perturbations this cell runs (`conditions` beyond clean; the settings
    of the others at their defaults, so that a change to them reruns no job of this cell); `perturbed`: where
    the perturbed tables are cached, shared by every cell of the target; `lexicons`: `sources.lexicons`."""

    kind: ClassVar[str] = "evaluate"
    row: str
    target: str
    seed: int
    model: Path
    data: Path
    out: Path
    predictions: Path
    job_size: JobSize
    conditions: tuple[str, ...] = ("clean",)
    retrieval: RetrievalSettings | None = None  # retrieval targets only
    deterministic: bool = False
    robustness: RobustnessSettings | None = None
    perturbed: Path | None = None
    lexicons: Path | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, self.row, self.target, str(self.seed))

    @property
    def size(self) -> JobSize:
        return self.job_size

    @property
    def inputs(self) -> dict[str, Path]:
        from xstilts.layout import META_FILE

        return {"model": self.model, "data": self.data / META_FILE}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"scores": self.out, "predictions": self.predictions}


@dataclass(frozen=True)
class AlignSpec(Spec):
    """The alignment probes of one phase-(ii) encoder (`xstilts.alignment`): retrieval accuracy both ways,
    linear CKA against English and isotropy at every layer, on the parallel data of the grid's targets
    (`data`: target -> its prepared evaluation folder)."""

    kind: ClassVar[str] = "align"
    row: str
    seed: int
    encoder: Path
    data: dict[str, Path]
    out: Path
    settings: AlignmentSettings
    job_size: JobSize
    deterministic: bool = False

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, self.row, str(self.seed))

    @property
    def size(self) -> JobSize:
        return self.job_size

    @property
    def inputs(self) -> dict[str, Path]:
        from xstilts.layout import META_FILE

        return {"encoder": self.encoder, **{f"data_{t}": folder / META_FILE for t, folder in self.data.items()}}

    @property
    def outputs(self) -> dict[str, Path]:
        return {"alignment": self.out}


@dataclass(frozen=True)
class AggregateSpec(Spec):
    """The tables, plots, results/README.md and report.html from every cell's scores."""

    kind: ClassVar[str] = "aggregate"
    results: Path
    config: Path  # the resolved config the refresh command reads
    rows: tuple[str, ...]
    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: dict[str, Any] = field(default_factory=dict)
    cells: tuple[Path, ...] = ()  # every cell's scores.parquet: the aggregate rule waits for them
    alignments: tuple[Path, ...] = ()  # every encoder's alignment probes, when configured
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)
    alignment_layer: int | None = None  # the layer whose alignment gains are joined with transfer gains

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind,)

    @property
    def outputs(self) -> dict[str, Path]:
        from xstilts.layout import Layout

        layout = Layout(self.results)
        return {"transfer": layout.table("transfer"), "delta": layout.table("delta"), "readme": layout.readme,
                "report": layout.report}

    @property
    def command(self) -> list[str]:
        """What refreshes the tables and the report by hand (results/README.md shows it)."""
        return ["xstilts", "aggregate", "--configfile", str(self.config)]


# --------------------------------------------------------------------------------------------------
# JSON


def _plain(value: Any) -> Any:
    """Paths as strings, tuples as lists, recursively (what `json.dumps` takes)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(hint: Any, value: Any) -> Any:
    """`value` (as `to_json` wrote it) as the type `hint` names."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        return _build(next(a for a in args if a is not type(None)), value)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(hint)
                       if f.init and f.name in value})
    if hint is Path:
        return Path(value)
    if origin is tuple:
        return tuple(_build(args[0], v) for v in value)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value


SPECS: dict[str, type[Spec]] = {cls.kind: cls for cls in (DemoDataSpec, DemoPretrainSpec, FetchModelSpec, PrepareSpec,
                                                          InitUntrainedSpec, TrainSpec, EvaluateSpec, AlignSpec,
                                                          AggregateSpec)}


def from_json(values: Mapping[str, Any]) -> Spec:
    """A spec from what `Spec.to_json` wrote."""
    cls = SPECS[values["kind"]]
    return _build(cls, {k: v for k, v in values.items() if k != "kind"})


def read_spec(folder: Path) -> Spec | None:
    """The spec written beside a job's outputs in `folder`, or None if there is none."""
    from xstilts.layout import SPEC_FILE

    path = Path(folder) / SPEC_FILE
    return from_json(json.loads(path.read_text())) if path.is_file() else None
