"""Where the grid stands: the state of every cell and the device hours spent, read from `results/`.

A cell (row, target, seed) needs up to three jobs (`Grid.cell_jobs`: their specs give every path): the
row's phase-(ii) training (none for the baseline), the phase-(iii) training on the target's English
training set (none for retrieval) and its evaluation. A job is
- done: its output exists (checkpoint folder, `scores.parquet`) and reads as one;
- corrupt: its output exists but cannot be read as one (a truncated or foreign `scores.parquet`, a
  checkpoint whose manifest is unreadable): `xstilts rerun` redoes it;
- failed: its log shows an error (ERROR_MARKERS) and its output does not exist;
- running: started (its log or its resumable state under `results/state/` exists), no error, no
  output yet. A job killed without a trace (e.g. SIGKILL) reads as running until its next attempt;
- missing: none of these.
A cell is done when its scores are; otherwise corrupt, failed or running if one of its jobs is (in that
order), else missing.

Hours: wall-clock hours x 1 (each job uses one device), i.e. GPU-hours when the cell was evaluated on
a GPU (the `device` of its scores), CPU hours when on the CPU. A cell's hours are its evaluation's
`wall_seconds` plus its share of the phase-(iii) training (split evenly between the targets of the
grid that train on the same data, e.g. XQuAD and MLQA on SQuAD). Phase-(ii) trainings are shared by
a whole row, so they are counted per row and seed, not per cell. Training times come from the
checkpoint's `training_log.parquet` (`wall_s`: every attempt, resumed ones included), else from the
summary line (`"seconds"`) that `xstilts train` prints at the end of its job log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from xstilts.catalogue import TARGETS
from xstilts.grid import Grid
from xstilts.layout import MANIFEST_FILE, TRAINING_LOG_FILE
from xstilts.results_io import ScoresRead, read_manifest, scan_scores
from xstilts.specs import EvaluateSpec, InitUntrainedSpec, Spec, TrainSpec

State = Literal["done", "running", "failed", "corrupt", "missing"]
STATES: tuple[State, ...] = ("done", "running", "failed", "corrupt", "missing")
ERROR_MARKERS = ("Traceback (most recent call last)", "xstilts: error:", "slurmstepd: error", "Killed")
PHASE_II = "(ii)"
CPU = "cpu"


# --------------------------------------------------------------------------------------------------
# Jobs


def damage(spec: Spec, scores: ScoresRead) -> str | None:
    """Why a job's existing output cannot be read as one (None: it can, or it does not exist)."""
    if isinstance(spec, EvaluateSpec):
        return scores.corrupt.get(spec.out)
    manifest = output(spec) / MANIFEST_FILE
    if manifest.is_file():
        try:
            read_manifest(manifest)
        except ValueError as err:
            return str(err)
    return None


def output(spec: Spec) -> Path:
    """A job's output: the checkpoint folder or the scores file whose existence says it is done."""
    return next(iter(spec.outputs.values()))


def phase_ii(spec: Spec) -> bool:
    """A row's phase-(ii) job (a training, or the untrained control's random encoder)."""
    return isinstance(spec, InitUntrainedSpec) or (isinstance(spec, TrainSpec) and spec.phase == "intermediate")


def job_state(spec: Spec, scores: ScoresRead) -> State:
    if output(spec).exists():
        return "corrupt" if damage(spec, scores) else "done"
    if spec.log.is_file() and log_error(spec.log) is not None:
        return "failed"
    state = getattr(spec, "state", None)
    if spec.log.is_file() or (state is not None and state.exists()):
        return "running"
    return "missing"


def log_error(log: Path) -> str | None:
    """The last non-empty line of a log that contains an error marker, else None."""
    text = log.read_text(encoding="utf-8", errors="replace")
    if not any(marker in text for marker in ERROR_MARKERS):
        return None
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def log_seconds(log: Path) -> float | None:
    """The `"seconds"` of the JSON summary line `xstilts train` prints last, if the log has one."""
    if not log.is_file():
        return None
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(summary, dict) and isinstance(summary.get("seconds"), int | float):
                return float(summary["seconds"])
    return None


def training_seconds(spec: TrainSpec) -> float | None:
    """Wall seconds of a finished training over all its attempts, else its log's summary, else None."""
    log = spec.out / TRAINING_LOG_FILE
    try:
        walls = pd.read_parquet(log) if log.is_file() else None
    except (OSError, ValueError):  # a damaged log: the summary line still says it
        walls = None
    if walls is not None and "wall_s" in walls and len(walls):
        return float(walls["wall_s"].max())
    return log_seconds(spec.log)


def rerun_command(grid: Grid, row: str, target: str, seed: int, *, profiles: Sequence[str],
                  configfiles: Sequence[Path] = (), intermediate: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The Snakemake command that redoes one cell (its phase-(iii) training, its evaluation; with
    `intermediate` the row's phase (ii) too) and the tables, and nothing else."""
    forced = [str(output(j)) for j in grid.cell_jobs(row, target, seed) if intermediate or not phase_ii(j)]
    # Snakemake's own arguments last: a trailing `--configfile A B` would swallow the targets.
    options = [x for profile in profiles for x in ("--profile", profile)]
    files = ["--configfile", *map(str, configfiles)] if configfiles else []
    return [sys.executable, "-m", "snakemake", *options, *forced, str(grid.aggregate().outputs["transfer"]),
            "--forcerun", *forced, *extra, *files]


def redo(row: str, target: str, seed: int) -> str:
    """What a person types to redo a cell (named beside corrupt cells)."""
    return f"xstilts rerun {row} {target} --seed {seed}"


# --------------------------------------------------------------------------------------------------
# The grid


def grid_status(grid: Grid, scores: ScoresRead | None = None) -> pd.DataFrame:
    """One row per cell: intermediate, target, seed, state, hours (NaN unless done), device, detail.

    `detail` names the failed job's log and its last line, the running job's log, or the corrupt file and
    the command that redoes it. `scores` (as `scan_scores` returns) is read from the results tree when not
    given.
    """
    if scores is None:
        scores = scan_scores(grid.layout.scores_dir)
    facts = scores.frame.groupby(["intermediate", "target", "seed"])[["wall_seconds", "device"]].first()
    records = []
    for row, target, seed in grid.cells():
        jobs = grid.cell_jobs(row, target, seed)
        states = [job_state(job, scores) for job in jobs]
        state: State = "done" if states[-1] == "done" else next(
            (s for s in ("corrupt", "failed", "running") if s in states), "missing")
        hours, device, detail = float("nan"), "", ""
        if state == "done" and (row, target, seed) in facts.index:
            wall, device = facts.loc[(row, target, seed)]
            trainset = TARGETS[target].trainset
            train = training_seconds(grid.train_target(row, trainset, seed)) if trainset else 0.0
            hours = (float(wall) + (train or 0.0) / grid.shared.get(trainset, 1)) / 3600
        elif state == "corrupt":
            job = jobs[states.index(state)]
            again = redo(row, target, seed) + (" --intermediate" if phase_ii(job) else "")
            detail = f"{damage(job, scores)}; redo: {again}"
        elif state in ("failed", "running"):
            job = jobs[states.index(state)]
            stage = "intermediate" if phase_ii(job) else job.kind if isinstance(job, EvaluateSpec) else "target"
            detail = f"{stage}: {job.log}" + (f": {log_error(job.log)}" if state == "failed" else "")
        records.append({"intermediate": row, "target": target, "seed": seed, "state": state,
                        "hours": hours, "device": str(device), "detail": detail})
    columns = ["intermediate", "target", "seed", "state", "hours", "device", "detail"]
    return pd.DataFrame.from_records(records, columns=columns)


def phase_ii_hours(grid: Grid) -> pd.Series:
    """Hours of each finished phase-(ii) training, indexed by (row, seed); NaN where unknown."""
    jobs = grid.intermediate_jobs()
    index = pd.MultiIndex.from_tuples([(j.row, j.seed) for j in jobs], names=["intermediate", "seed"])
    values = []
    for job in jobs:
        seconds = training_seconds(job) if job.out.exists() else None
        values.append(float("nan") if seconds is None else seconds / 3600)
    return pd.Series(values, index=index, dtype="float64")


def counts(status: pd.DataFrame) -> dict[State, int]:
    """How many cells are in each state."""
    return {s: int((status["state"] == s).sum()) for s in STATES}


def hours_unit(status: pd.DataFrame) -> str:
    """What the hours are: GPU-hours on the named GPU(s), CPU hours, or both."""
    devices = sorted(set(status.loc[status["state"] == "done", "device"]) - {""})
    gpus = [d for d in devices if d != CPU]
    if not devices:
        return "hours: none finished yet"
    if not gpus:
        return "hours are CPU wall-clock hours: every job ran on the CPU (no GPU-hours spent)"
    unit = f"hours are GPU-hours (wall-clock hours x 1 GPU per job) on {', '.join(gpus)}"
    return unit + ("; cells marked 'cpu' ran on the CPU (CPU hours)" if CPU in devices else "")


def format_hours(hours: float) -> str:
    """"1.25h"; below 0.1 h in minutes ("3.2m"), below a minute in seconds ("12s"); "–" when unknown."""
    if pd.isna(hours):
        return "–"
    if hours >= 0.1:
        return f"{hours:.2f}h"
    return f"{hours * 60:.1f}m" if hours >= 1 / 60 else f"{hours * 3600:.0f}s"


def _cell_text(state: str, hours: float, device: str, mark_cpu: bool) -> str:
    if state != "done":
        return state
    text = "done" if pd.isna(hours) else f"done {format_hours(hours)}"
    return text + (" cpu" if mark_cpu and device == CPU else "")


def status_matrix(status: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Rows (x seeds when several) x targets of cell texts ("done 0.12h", "failed", ...), plus the
    phase-(ii) hours of each trained row."""
    several = len(grid.seeds) > 1
    phase_ii = phase_ii_hours(grid)
    mark_cpu = bool((~status["device"].isin(["", CPU])).any())  # some cells ran on a GPU
    table: dict[str, dict[str, str]] = {}
    for rec in status.itertuples(index=False):
        label = f"{rec.intermediate} (seed {rec.seed})" if several else rec.intermediate
        table.setdefault(label, {})[rec.target] = _cell_text(rec.state, rec.hours, rec.device, mark_cpu)
        key = (rec.intermediate, rec.seed)
        table[label][PHASE_II] = format_hours(phase_ii[key]) if key in phase_ii.index else ""
    matrix = pd.DataFrame.from_dict(table, orient="index").reindex(columns=[*grid.targets, PHASE_II])
    matrix.index.name = "intermediate"
    return matrix.fillna("")


def summary_line(status: pd.DataFrame, grid: Grid) -> str:
    """E.g. "99 cells: 97 done, 1 running, 1 failed, 0 missing; 12.30h spent (hours are ...)" (corrupt cells
    counted when there are some)."""
    n = counts(status)
    total = status["hours"].sum() + phase_ii_hours(grid).sum()
    states = ", ".join(f"{n[s]} {s}" for s in STATES if s != "corrupt" or n[s])
    return f"{len(status)} cells: {states}; {format_hours(total)} spent ({hours_unit(status)})"


def render_status(status: pd.DataFrame, grid: Grid) -> str:
    """The text `xstilts status` prints: summary, matrix, and the failed and corrupt cells' details."""
    lines = [summary_line(status, grid), "", status_matrix(status, grid).to_string(), ""]
    lines.append(f"{PHASE_II} = phase-(ii) training of the row (shared by its cells); "
                 "a cell's hours = its evaluation + its share of the phase-(iii) training.")
    for state in ("failed", "corrupt"):
        if problems := problem_lines(status, state):
            lines += ["", f"{state}:", *(f"  {line}" for line in problems)]
    return "\n".join(lines) + "\n"


def problem_lines(status: pd.DataFrame, state: State) -> list[str]:
    """One line per cell in `state` (failed or corrupt): the cell and its detail (log, or file and redo)."""
    cells = status[status["state"] == state]
    return [f"{r.intermediate} / {r.target} / seed {r.seed}: {r.detail}" for r in cells.itertuples(index=False)]
