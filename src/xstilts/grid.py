"""The experiment grid from a resolved config (`xstilts.config`): rows, targets, shared trainings, and a
typed spec for every job (`xstilts.specs`), built once.

Snakemake's rules, `xstilts submit`, `status`, `rerun` and the report all read the specs built here, so
the grid's expansion and sharing (one phase-(ii) run per row, one phase-(iii) run per training set) and
every job's paths and settings are testable without Snakemake.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from xstilts.benchmarks import Benchmark, benchmark, configured_languages, configured_targets
from xstilts.catalogue import (
    BASELINE_ROW,
    DATASETS,
    INTERMEDIATE_TASKS,
    MULTITASK_ROW,
    TARGETS,
    UNTRAINED_ROW,
    stages,
    target_trainsets,
)
from xstilts.conditions import CLEAN, CLEAN_SAMPLE, CONDITIONS, PERTURBATIONS
from xstilts.config import ConfigError
from xstilts.layout import Layout
from xstilts.settings import (
    AlignmentSettings,
    Execution,
    HParams,
    JobSize,
    MLMSettings,
    PlanSettings,
    RetrievalSettings,
    RobustnessSettings,
    Sampling,
    SignificanceSettings,
    from_mapping,
)
from xstilts.specs import (
    AggregateSpec,
    AlignSpec,
    DemoDataSpec,
    DemoPretrainSpec,
    EvaluateSpec,
    FetchModelSpec,
    InitUntrainedSpec,
    PrepareSpec,
    Spec,
    TrainSpec,
)

Cell = tuple[str, str, int]


class Grid:
    """Everything the workflow needs to know about one configured experiment."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.layout = Layout(Path(config["results"]))
        self._specs: dict[tuple[str, ...], Spec] = {}

    # --- the grid's shape ------------------------------------------------------------------------
    @property
    def rows(self) -> list[str]:
        return list(self.config["rows"])

    @property
    def benchmark(self) -> Benchmark:
        """The benchmark (config `benchmark`, XTREME by default): default targets and languages, groups, score."""
        return benchmark(self.config.get("benchmark"))

    def _source(self, key: str) -> bool:
        return bool((self.config.get("sources") or {}).get(key))

    @cached_property
    def left_out(self) -> dict[str, str]:
        """What the grid leaves out for want of a local source, and why: a target that only a local copy holds
        (Mewsli-X), or a target's languages that only one holds (XTREME-R's UD 2.7 languages); `target` or
        `target:language` -> the message."""
        out = {}
        for target in configured_targets(self.config):
            t = TARGETS[target]
            if not t.on_hub and not self._source(t.local_path_key):
                out[target] = (f"target {target} left out: it has no hub copy; set `sources.{t.local_path_key}` to "
                               f"its local copy")
                continue
            for lang in configured_languages(self.config, target):
                key = t.local_languages.get(lang)
                if key and not self._source(key):
                    out[f"{target}:{lang}"] = (f"{target} {lang} left out: only a local copy holds it; set "
                                               f"`sources.{key}`")
        return out

    @property
    def targets(self) -> list[str]:
        """The configured targets (none configured: the benchmark's), less those left out (`left_out`)."""
        return [t for t in configured_targets(self.config) if t not in self.left_out]

    def languages(self, target: str) -> list[str]:
        """The languages a target is evaluated on: the configured ones, else the benchmark's (else all of the
        catalogue's), less those left out (`left_out`)."""
        return [lang for lang in configured_languages(self.config, target) if f"{target}:{lang}" not in self.left_out]

    @property
    def seeds(self) -> list[int]:
        return list(self.config["seeds"])

    @property
    def demo(self) -> bool:
        return bool(self.config.get("demo"))

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        """The paper's alternatives (MLM mixed in, translated data), each a row of its own."""
        return dict(self.config.get("variants") or {})

    def row_tasks(self, row: str) -> list[str]:
        """The prepared datasets a row trains on (none for the baseline and the untrained control).

        A variant with translations trains on a dataset of its own name (English plus translations)."""
        if row in (BASELINE_ROW, UNTRAINED_ROW):
            return []
        if row == MULTITASK_ROW:
            return list(INTERMEDIATE_TASKS)
        if row in self.variants:
            variant = self.variants[row]
            return [row] if variant.get("translations") else [variant["task"]]
        return [row]

    def dataset_source(self, dataset: str) -> tuple[str, dict[str, Any] | None]:
        """The catalogue task behind a prepared dataset, and the translations added to its training split."""
        if dataset in self.variants:
            return self.variants[dataset]["task"], self.variants[dataset].get("translations")
        return dataset, None

    @property
    def trained_rows(self) -> list[str]:
        return [r for r in self.rows if self.row_tasks(r)]

    @property
    def trainsets(self) -> list[str]:
        return target_trainsets(self.targets)

    @property
    def datasets(self) -> list[str]:
        """Every English dataset some training needs, in catalogue order."""
        needed = {t for r in self.rows for t in self.row_tasks(r)} | set(self.trainsets)
        return [d for d in [*DATASETS, *self.variants] if d in needed]

    def cells(self) -> list[Cell]:
        return [(r, t, s) for r in self.rows for t in self.targets for s in self.seeds]

    # --- settings --------------------------------------------------------------------------------
    @property
    def base_model(self) -> Path:
        """The phase-(i) encoder as a local folder: the configured one if it is a folder, else the folder
        that the demo's pretraining or the download rule creates."""
        model = Path(str(self.config["model"]))
        return model if model.is_dir() else self.layout.base_model

    def hparams(self, dataset: str) -> HParams:
        """`training.defaults` overridden by the task's own settings (a variant's dataset: its task's)."""
        training = self.config.get("training", {})
        task = self.dataset_source(dataset)[0]
        return HParams.from_dict({**training.get("defaults", {}), **training.get("tasks", {}).get(task, {})})

    def optimizer(self, row: str, tasks: list[str]) -> HParams:
        """A training's optimiser settings: the task's own for one task; for the multi-task row,
        `training.defaults` overridden by its own section, `multitask.optimizer` (not a task's)."""
        if row != MULTITASK_ROW:
            return self.hparams(tasks[0])
        section = (self.config.get("multitask") or {}).get("optimizer") or {}
        return HParams.from_dict({**self.config.get("training", {}).get("defaults", {}), **section})

    @property
    def sampling(self) -> Sampling:
        return Sampling(**((self.config.get("multitask") or {}).get("sampling") or {}))

    def retrieval(self, target: str) -> RetrievalSettings | None:
        """A retrieval target's settings: `retrieval.defaults`, overridden by its own (None for the others)."""
        if TARGETS[target].family != "retrieval":
            return None
        settings = self.config.get("retrieval") or {}
        return RetrievalSettings.from_dict({**settings.get("defaults", {}), **settings.get(target, {})})

    def job_size(self, rule: str, task: str) -> JobSize:
        """A GPU job's size (config `resources`): the rule's default, overridden for its task (phase ii:
        row; phase iii: training set; evaluate: target)."""
        sizes = (self.config.get("resources") or {}).get(rule, {})
        return JobSize(**{**sizes.get("default", {}), **sizes.get("tasks", {}).get(task, {})})

    def execution(self, row: str) -> Execution:
        """How a row's trainings compute (config `execution`): `defaults`, then the configured model's entry, then
        the row's."""
        execution = self.config.get("execution") or {}
        return Execution(**{**(execution.get("defaults") or {}),
                            **(execution.get("models") or {}).get(str(self.config["model"]), {}),
                            **(execution.get("rows") or {}).get(row, {})})

    @property
    def plan_settings(self) -> PlanSettings:
        return PlanSettings(**(self.config.get("plan") or {}))

    @property
    def deterministic(self) -> bool:
        return bool(self.config.get("deterministic"))

    @property
    def lexicons(self) -> Path | None:
        """The bilingual lexicons (`sources.lexicons`, MUSE format) of `code_switch` and `adversarial`."""
        folder = (self.config.get("sources") or {}).get("lexicons")
        return Path(folder) if folder else None

    @cached_property
    def robustness(self) -> RobustnessSettings | None:
        """The perturbed evaluation conditions (config `robustness`; absent or null: clean only)."""
        section = self.config.get("robustness")
        return None if section is None else from_mapping(RobustnessSettings, section)

    def conditions(self, target: str) -> tuple[str, ...]:
        """The conditions a target is evaluated under: clean, then each configured perturbation that serves
        its family, if the target is among `robustness.targets` (null: every target of the grid), with clean on
        their sample of the examples as their reference (`conditions.CLEAN_SAMPLE`)."""
        settings = self.robustness
        if settings is None or target not in (settings.targets or self.targets):
            return (CLEAN,)
        served = tuple(c for c in settings.conditions if CONDITIONS[c].serves_target(target))
        return (CLEAN, *((CLEAN_SAMPLE,) if served and settings.sample < 1 else ()), *served)

    def robustness_for(self, target: str) -> RobustnessSettings | None:
        """The robustness settings an evaluation of `target` depends on: its conditions, and the settings of the
        others at their defaults (`EvaluateSpec.robustness`)."""
        settings, conditions = self.robustness, tuple(c for c in self.conditions(target) if c in PERTURBATIONS)
        if settings is None or not conditions:
            return None
        defaults = RobustnessSettings()
        return replace(settings, conditions=conditions, targets=None,
                       **{c: getattr(defaults, c) for c in PERTURBATIONS if c not in conditions})

    @cached_property
    def alignment(self) -> AlignmentSettings | None:
        """The alignment probes (config `alignment`; absent or null: none)."""
        section = self.config.get("alignment")
        return None if section is None else from_mapping(AlignmentSettings, section)

    @property
    def parallel_targets(self) -> list[str]:
        """The grid's targets whose data pair sentences with English ones (`Target.parallel`)."""
        return [t for t in self.targets if TARGETS[t].parallel]

    @property
    def significance(self) -> SignificanceSettings:
        return from_mapping(SignificanceSettings, self.config.get("significance"))

    # --- job specs -------------------------------------------------------------------------------
    def spec(self, rule: str, **wildcards: str | int) -> Spec:
        """The spec of a rule's job, from the rule's wildcards (what a rule passes is its identity); a
        name that is not in this grid is refused, naming what is."""
        allowed = {"row": lambda: self.trained_rows if rule == "train_intermediate" else self.rows,
                   "target": lambda: self.targets, "trainset": lambda: self.trainsets,
                   "dataset": lambda: self.datasets, "seed": lambda: self.seeds}  # only those asked (per job)
        if rule == "align" and self.alignment is None:
            raise ConfigError("this grid has no alignment probes (config `alignment`)")
        for key, value in wildcards.items():
            choices = allowed[key]()
            if (int(value) if key == "seed" else value) not in choices:
                raise ConfigError(f"{key} {value!r} is not in this grid ({rule}); it has: "
                                  f"{' '.join(map(str, choices)) or 'none'}")
        return getattr(self, rule)(**wildcards)

    def _cached(self, spec_key: tuple[str, ...], build: Any) -> Any:
        if spec_key not in self._specs:
            self._specs[spec_key] = build()
        return self._specs[spec_key]

    def demo_data(self) -> DemoDataSpec:
        demo = self.config.get("demo") or {}
        translations = {v["task"]: tuple(v["translations"]["languages"]) for v in self.variants.values()
                        if v.get("translations")}
        return DemoDataSpec(log=self.layout.log("demo_data"), out=self.layout.demo_world,
                            languages={t: tuple(self.languages(t)) for t in self.targets}, seed=demo.get("seed", 0),
                            sizes=dict(demo.get("sizes") or {}), translations=translations)

    def demo_pretrain(self) -> DemoPretrainSpec:
        world, model = self.layout.demo_world, (self.config.get("demo") or {}).get("model", {})
        return DemoPretrainSpec(log=self.layout.log("demo_pretrain"), corpus=world / "corpus",
                                out=self.layout.base_model, model=dict(model), world=world)

    def fetch_model(self) -> FetchModelSpec:
        return FetchModelSpec(log=self.layout.log("fetch_model"), model=str(self.config["model"]),
                              out=self.layout.base_model)

    def _world(self) -> Path | None:
        return self.layout.demo_world if self.demo else None

    def prepare_dataset(self, dataset: str) -> PrepareSpec:
        task, translations = self.dataset_source(dataset)
        return PrepareSpec(log=self.layout.log("prepare", dataset), what="dataset", name=dataset, task=task,
                           out=self.layout.train_data(dataset), sources=dict(self.config.get("sources") or {}),
                           translations=translations, world=self._world())

    def prepare_target(self, target: str) -> PrepareSpec:
        return PrepareSpec(log=self.layout.log("prepare", target), what="target", name=target, task=target,
                           out=self.layout.eval_data(target), sources=dict(self.config.get("sources") or {}),
                           languages=tuple(self.languages(target)), world=self._world())

    def init_untrained(self, seed: int | str) -> InitUntrainedSpec:
        return InitUntrainedSpec(log=self.layout.log("intermediate", UNTRAINED_ROW, f"seed={seed}"),
                                 like=self.base_model, out=self.layout.encoder(UNTRAINED_ROW, seed), seed=int(seed))

    def encoder(self, row: str, seed: int | str) -> Path:
        """The phase-(ii) encoder of a row: the base model itself for the baseline; for the untrained
        control, the base model's architecture and tokenizer with random weights (`init_untrained`)."""
        return self.base_model if row == BASELINE_ROW else self.layout.encoder(row, seed)

    def _init(self, phase: str, row: str, seed: int, trainset: str | None) -> Path:
        """What a training starts from: the base model (ii); the row's encoder (iii), or for a later stage the
        earlier stage's model of the row."""
        if phase == "intermediate":
            return self.base_model
        before = DATASETS[trainset].after if trainset else None
        return self.layout.target_model(row, before, seed) if before else self.encoder(row, seed)

    def _train(self, phase: str, row: str, tasks: list[str], seed: int, trainset: str | None) -> TrainSpec:
        keys = (row, *([trainset] if trainset else []), f"seed={seed}")
        mlm = self.variants.get(row, {}).get("mlm") if phase == "intermediate" else None
        rule = f"train_{phase}"
        return TrainSpec(
            log=self.layout.log(phase, *keys), phase=phase, row=row, seed=seed, trainset=trainset, tasks=tuple(tasks),
            hparams={t: self.hparams(t) for t in tasks}, optim=self.optimizer(row, tasks), sampling=self.sampling,
            init=self._init(phase, row, seed, trainset),
            data={t: self.layout.train_data(t) for t in tasks},
            out=self.layout.encoder(row, seed) if trainset is None else self.layout.target_model(row, trainset, seed),
            state=self.layout.state(phase, *keys), job_size=self.job_size(rule, trainset or row),
            mlm=MLMSettings(**mlm) if mlm else None, save_every=self.config.get("training", {}).get("save_every", 0),
            deterministic=self.deterministic, execution=self.execution(row))

    def train_intermediate(self, row: str, seed: int | str) -> TrainSpec:
        seed = int(seed)
        return self._cached(("train", "intermediate", row, str(seed)),
                            lambda: self._train("intermediate", row, self.row_tasks(row), seed, None))

    def train_target(self, row: str, trainset: str, seed: int | str) -> TrainSpec:
        """A phase-(iii) training; a later stage (COPA) starts from the earlier stage's model of the same row."""
        seed = int(seed)
        return self._cached(("train", "target", row, trainset, str(seed)),
                            lambda: self._train("target", row, [trainset], seed, trainset))

    def cell_model(self, row: str, target: str, seed: int | str) -> Path:
        """What a cell evaluates: the target-trained model, or for retrieval the row's encoder."""
        trainset = TARGETS[target].trainset
        return self.encoder(row, seed) if trainset is None else self.layout.target_model(row, trainset, seed)

    def evaluate(self, row: str, target: str, seed: int | str) -> EvaluateSpec:
        seed = int(seed)
        conditions = self.conditions(target)
        lexicon = any(CONDITIONS[c].lexicon for c in conditions)
        return self._cached(("evaluate", row, target, str(seed)), lambda: EvaluateSpec(
            log=self.layout.log("evaluate", row, target, f"seed={seed}"), row=row, target=target, seed=seed,
            model=self.cell_model(row, target, seed), data=self.layout.eval_data(target),
            out=self.layout.scores(row, target, seed), predictions=self.layout.predictions(row, target, seed),
            job_size=self.job_size("evaluate", target), conditions=conditions, retrieval=self.retrieval(target),
            deterministic=self.deterministic, robustness=self.robustness_for(target),
            perturbed=self.layout.perturbed(target) if len(conditions) > 1 else None,
            lexicons=self.lexicons if lexicon else None))

    def align(self, row: str, seed: int | str) -> AlignSpec:
        """A row's alignment probes, sized as a Tatoeba evaluation (the same work: encoder passes over
        parallel sentences)."""
        seed = int(seed)
        return self._cached(("align", row, str(seed)), lambda: AlignSpec(
            log=self.layout.log("alignment", row, f"seed={seed}"), row=row, seed=seed,
            encoder=self.encoder(row, seed), data={t: self.layout.eval_data(t) for t in self.parallel_targets},
            out=self.layout.alignment(row, seed), settings=self.alignment,
            job_size=self.job_size("evaluate", "tatoeba"), deterministic=self.deterministic))

    def aggregate(self) -> AggregateSpec:
        alignments = tuple(self.layout.alignment(r, s) for r in self.rows for s in self.seeds) if self.alignment else ()
        return AggregateSpec(log=self.layout.log("aggregate"), results=self.layout.root, config=self.layout.config,
                             rows=tuple(self.rows), targets=tuple(self.targets), seeds=tuple(self.seeds),
                             variants=self.variants,
                             cells=tuple(self.layout.scores(r, t, s) for r, t, s in self.cells()),
                             alignments=alignments, significance=self.significance,
                             alignment_layer=self.alignment.layer if self.alignment else None)

    # --- the jobs of the DAG ---------------------------------------------------------------------
    def cell_jobs(self, row: str, target: str, seed: int) -> list[TrainSpec | InitUntrainedSpec | EvaluateSpec]:
        """The jobs a cell needs, upstream first: the row's phase (ii) (none for the baseline; the untrained
        control's random encoder), its phase (iii) (none for retrieval), its evaluation."""
        jobs: list[TrainSpec | InitUntrainedSpec | EvaluateSpec] = []
        if row == UNTRAINED_ROW:
            jobs.append(self.init_untrained(seed))
        elif row != BASELINE_ROW:
            jobs.append(self.train_intermediate(row, seed))
        if (trainset := TARGETS[target].trainset) is not None:
            jobs += [self.train_target(row, stage, seed) for stage in stages(trainset)]
        return [*jobs, self.evaluate(row, target, seed)]

    def intermediate_jobs(self) -> list[TrainSpec]:
        return [self.train_intermediate(r, s) for r in self.trained_rows for s in self.seeds]

    def target_jobs(self) -> list[TrainSpec]:
        return [self.train_target(r, t, s) for r in self.rows for t in self.trainsets for s in self.seeds]

    def evaluate_jobs(self) -> list[EvaluateSpec]:
        return [self.evaluate(r, t, s) for r, t, s in self.cells()]

    def align_jobs(self) -> list[AlignSpec]:
        return [self.align(r, s) for r in self.rows for s in self.seeds] if self.alignment else []

    def jobs(self) -> Iterator[Spec]:
        """Every job of the grid, upstream first."""
        yield from (self.prepare_dataset(d) for d in self.datasets)
        yield from (self.prepare_target(t) for t in self.targets)
        yield from self.intermediate_jobs()
        if UNTRAINED_ROW in self.rows:
            yield from (self.init_untrained(s) for s in self.seeds)
        yield from self.target_jobs()
        yield from self.evaluate_jobs()
        yield from self.align_jobs()
        yield self.aggregate()

    @cached_property
    def shared(self) -> dict[str, int]:
        """How many of the grid's targets train on each training set, as their last stage or an earlier one
        (XQuAD and MLQA share SQuAD; XCOPA's COPA training continues SIQA's)."""
        return {d: sum(d in stages(TARGETS[t].trainset) for t in self.targets if TARGETS[t].trainset)
                for d in self.trainsets}
