"""The results layout: every path under `results/`, in one place.

Rules, job specs, status, rerun, submit and the report all take their paths from a `Layout`. Its methods
also accept Snakemake wildcards as arguments (`layout.scores("{row}", "{target}", "{seed}")` is the
evaluate rule's output pattern), so the rules' patterns and the specs' paths are the same strings.

Scores and predictions are hive trees (`scores/intermediate=I/target=T/seed=S/scores.parquet`), so that
`pandas.read_parquet("results/scores")` reads the whole grid with intermediate, target and seed as
partition columns; the three keys live in the folder names only (DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The spec a job was run with, beside its outputs: in a checkpoint folder and beside scores.parquet. Its
# leading underscore makes pyarrow's dataset discovery skip it, so `read_parquet("results/scores")` still works.
SPEC_FILE = "_spec.json"
META_FILE = "meta.json"  # a prepared data cache's description, written last
MANIFEST_FILE = "manifest.parquet"  # a checkpoint's manifest row; at checkpoints/ all of them
TRAINING_LOG_FILE = "training_log.parquet"
SCORES_FILE = "scores.parquet"
PREDICTIONS_FILE = "predictions.parquet"
ALIGNMENT_FILE = "alignment.parquet"


def perturbed_table(folder: Path, condition: str, key: str, split: str, language: str) -> Path:
    """One perturbed table in a target's `Layout.perturbed` folder (`key`: a digest of the clean table, the
    condition's settings, the seed and the lexicons read)."""
    return folder / condition / key / split / f"{language}.parquet"


@dataclass(frozen=True)
class Layout:
    """The paths of one results folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # --- configuration and phase (i) -------------------------------------------------------------
    @property
    def config(self) -> Path:
        """The resolved config of the last run: what the jobs read (`xstilts ... --configfile` it)."""
        return self.root / "config.yaml"

    @property
    def base_model(self) -> Path:
        """The phase-(i) encoder, downloaded once (`fetch_model`) or pretrained by the demo."""
        return self.root / "base_model"

    @property
    def demo_world(self) -> Path:
        """The demo's generated data: a hub mirror, local sources and an MLM corpus (`{demo}` in config)."""
        return self.root / "demo" / "hub"

    # --- prepared data ---------------------------------------------------------------------------
    def train_data(self, dataset: str) -> Path:
        """A prepared English training dataset (train.parquet, dev.parquet, meta.json)."""
        return self.root / "data" / "train" / dataset

    def eval_data(self, target: str) -> Path:
        """A target's prepared evaluation data (<split>/<language>.parquet, meta.json)."""
        return self.root / "data" / "eval" / target

    def perturbed(self, target: str) -> Path:
        """A target's tables under the perturbations, each written by the first evaluation that needs it
        (`perturbed_table`); not a rule's output, like the tokenised training data."""
        return self.eval_data(target) / "conditions"

    @property
    def demo_lexicons(self) -> Path:
        """The demo world's bilingual lexicons (MUSE format, `{demo}/lexicons`)."""
        from xstilts.lexicons import FOLDER

        return self.demo_world / FOLDER

    # --- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def manifest(self) -> Path:
        """Every checkpoint's manifest row, collected by the aggregate job."""
        return self.checkpoints / MANIFEST_FILE

    def encoder(self, row: str, seed: int | str) -> Path:
        """A phase-(ii) encoder."""
        return self.checkpoints / "intermediate" / row / f"seed={seed}"

    def target_model(self, row: str, trainset: str, seed: int | str) -> Path:
        """A phase-(iii) model (encoder and head) trained on `trainset`."""
        return self.checkpoints / "target" / row / trainset / f"seed={seed}"

    # --- scores and predictions ------------------------------------------------------------------
    @property
    def scores_dir(self) -> Path:
        return self.root / "scores"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    def _cell(self, tree: Path, row: str, target: str, seed: int | str) -> Path:
        return tree / f"intermediate={row}" / f"target={target}" / f"seed={seed}"

    def scores(self, row: str, target: str, seed: int | str) -> Path:
        return self._cell(self.scores_dir, row, target, seed) / SCORES_FILE

    def predictions(self, row: str, target: str, seed: int | str) -> Path:
        """Per-example predictions of a cell, every language, split and condition."""
        return self._cell(self.predictions_dir, row, target, seed) / PREDICTIONS_FILE

    # --- alignment probes ------------------------------------------------------------------------
    @property
    def alignment_dir(self) -> Path:
        return self.root / "alignment"

    def alignment(self, row: str, seed: int | str) -> Path:
        """The probes of one phase-(ii) encoder, every language, layer and measure (a hive tree, like scores)."""
        return self.alignment_dir / f"intermediate={row}" / f"seed={seed}" / ALIGNMENT_FILE

    # --- state and logs --------------------------------------------------------------------------
    def state(self, *keys: str) -> Path:
        """Resumable training state: outside every rule's outputs, so a failed job keeps it."""
        return self.root / "state" / Path(*keys)

    def log(self, *keys: str) -> Path:
        """A job's log: `logs/<kind>/<keys...>.log` (the last key names the file)."""
        *folders, name = keys
        return self.root / "logs" / Path(*folders, f"{name}.log") if folders else self.root / "logs" / f"{name}.log"

    # --- tables and report -----------------------------------------------------------------------
    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def table(self, name: str, ext: str = "md") -> Path:
        """A table of the aggregate job (`transfer`, `delta`, `per_language/xnli`, ...)."""
        return self.tables / f"{name}.{ext}"

    def plot(self, name: str) -> Path:
        """A plot of the aggregate job (`heatmap_robustness`, `alignment_cka`, ...), PNG."""
        return self.tables / f"{name}.png"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def plan(self) -> Path:
        """`xstilts plan`'s table: every job's tokens, FLOPs, memory, shards and estimated hours."""
        return self.root / "plan.parquet"

    @property
    def submitit(self) -> Path:
        """submitit's files for `xstilts submit`."""
        return self.root / "submitit"
