"""The experiment grid from a validated config: rows, targets, shared trainings, paths, settings.

Snakemake's `common.smk` is a thin layer over this module, so the grid's expansion and sharing
(one phase-(ii) run per row, one phase-(iii) run per training set) are testable without Snakemake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.catalogue import (
    BASELINE_ROW,
    DATASETS,
    INTERMEDIATE_TASKS,
    MULTITASK_ROW,
    TARGETS,
    UNTRAINED_ROW,
    target_trainsets,
)


@dataclass(frozen=True)
class Grid:
    """Everything the rules need to know about one configured experiment."""

    config: Mapping[str, Any]

    @property
    def results(self) -> Path:
        return Path(self.config["results"])

    @property
    def rows(self) -> list[str]:
        return list(self.config["rows"])

    @property
    def targets(self) -> list[str]:
        return list(self.config["targets"])

    def languages(self, target: str) -> list[str]:
        """The languages a target is evaluated on: the configured ones, else all of XTREME's."""
        return list((self.config.get("languages") or {}).get(target) or TARGETS[target].languages)

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

    def row_mlm(self, row: str) -> dict[str, Any] | None:
        """The MLM mixing settings of a row, if it mixes MLM batches into phase (ii)."""
        return self.variants.get(row, {}).get("mlm")

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

    # --- paths ------------------------------------------------------------------------------------
    def base_model(self) -> str:
        """The phase-(i) encoder as a local folder: the configured one if it is a folder, else the
        folder that the demo's pretraining or the download rule creates."""
        model = str(self.config["model"])
        return model if Path(model).is_dir() else str(self.results / "base_model")

    def encoder(self, row: str, seed: int | str) -> str:
        """The phase-(ii) encoder of a row: the base model itself for the baseline; for the untrained
        control, the base model's architecture and tokenizer with random weights (`init_untrained`)."""
        if row == BASELINE_ROW:
            return self.base_model()
        return str(self.results / "checkpoints" / "intermediate" / row / f"seed={seed}")

    def target_checkpoint(self, row: str, trainset: str, seed: int | str) -> str:
        return str(self.results / "checkpoints" / "target" / row / trainset / f"seed={seed}")

    def cell_model(self, row: str, target: str, seed: int | str) -> str:
        """What a cell evaluates: the target-trained model, or for retrieval the row's encoder."""
        trainset = TARGETS[target].trainset
        return self.encoder(row, seed) if trainset is None else self.target_checkpoint(row, trainset, seed)

    def scores(self, row: str, target: str, seed: int | str) -> str:
        return str(self.results / "scores" / f"intermediate={row}" / f"target={target}" / f"seed={seed}"
                   / "scores.parquet")

    def dataset_meta(self, dataset: str) -> str:
        """The prepared English training data (train + dev) of a dataset."""
        return str(self.results / "data" / "train" / dataset / "meta.json")

    def target_meta(self, target: str) -> str:
        """The prepared evaluation data (every language and split) of a target."""
        return str(self.results / "data" / "eval" / target / "meta.json")

    def state(self, *parts: str) -> str:
        """Resumable training state: outside every rule's outputs, so a failed job keeps it."""
        return str(self.results / "state" / Path(*parts))

    # --- the jobs of the DAG ------------------------------------------------------------------------
    def intermediate_jobs(self) -> list[tuple[str, int]]:
        return [(r, s) for r in self.trained_rows for s in self.seeds]

    def target_jobs(self) -> list[tuple[str, str, int]]:
        return [(r, t, s) for r in self.rows for t in self.trainsets for s in self.seeds]

    def cells(self) -> list[tuple[str, str, int]]:
        return [(r, t, s) for r in self.rows for t in self.targets for s in self.seeds]

    # --- settings passed to the CLI -----------------------------------------------------------------
    def hparams(self, task: str) -> dict[str, Any]:
        """Defaults overridden by the task's own settings (a variant's dataset: its task's)."""
        training = self.config.get("training", {})
        task = self.dataset_source(task)[0]
        return {**training.get("defaults", {}), **training.get("tasks", {}).get(task, {})}

    def hparams_json(self, tasks: list[str]) -> str:
        return json.dumps({t: self.hparams(t) for t in tasks}, sort_keys=True)

    def retrieval(self, target: str) -> dict[str, Any]:
        """A retrieval target's settings (`retrieval.Settings`): `defaults`, overridden by its own
        (none for the other targets)."""
        if TARGETS[target].family != "retrieval":
            return {}
        settings = self.config.get("retrieval") or {}
        return {**settings.get("defaults", {}), **settings.get(target, {})}

    def sources_json(self) -> str:
        return json.dumps(self.config.get("sources", {}), sort_keys=True)

    def job_size(self, rule: str, task: str) -> dict[str, int]:
        """A GPU job's size (config `resources`: gpu, cpus_per_gpu, mem_mb, runtime in minutes): the
        rule's default, overridden for its task (phase ii: row; phase iii: training set; evaluate: target)."""
        sizes = (self.config.get("resources") or {}).get(rule, {})
        return {**sizes.get("default", {}), **sizes.get("tasks", {}).get(task, {})}
