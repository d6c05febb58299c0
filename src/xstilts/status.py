"""Where the grid stands: the state of every cell and the device hours spent, read from `results/`.

A cell (row, target, seed) needs up to three jobs: the row's phase-(ii) training (none for the
baseline), the phase-(iii) training on the target's English training set (none for retrieval) and
its evaluation. A job is
- done: its output exists (checkpoint folder, `scores.parquet`);
- failed: its log shows an error (ERROR_MARKERS) and its output does not exist;
- running: started (its log or its resumable state under `results/state/` exists), no error, no
  output yet. A job killed without a trace (e.g. SIGKILL) reads as running until its next attempt;
- missing: none of these.
A cell is done when its scores exist; otherwise failed if one of its jobs failed, running if one
runs, else missing.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from xstilts.catalogue import BASELINE_ROW, TARGETS
from xstilts.config import check_config
from xstilts.grid import Grid
from xstilts.results_io import read_scores

State = Literal["done", "running", "failed", "missing"]
STATES: tuple[State, ...] = ("done", "running", "failed", "missing")
ERROR_MARKERS = ("Traceback (most recent call last)", "xstilts: error:", "slurmstepd: error", "Killed")
PHASE_II = "(ii)"
CPU = "cpu"


def make_grid(results: Path, rows: Sequence[str], targets: Sequence[str], seeds: Sequence[int],
              variants: Mapping[str, Mapping[str, Any]] | None = None) -> Grid:
    """A `Grid` for reading results only (rows, targets and seeds checked against the catalogue;
    `variants` as in the config, needed when `rows` name some)."""
    config = {"results": str(results), "rows": list(rows), "targets": list(targets),
              "seeds": [int(s) for s in seeds], "model": "", "variants": dict(variants or {})}
    check_config(config)
    return Grid(config)


# --------------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    """One job of the DAG as seen from `results/`: its output, log and resumable state."""

    kind: Literal["intermediate", "target", "evaluate"]
    output: Path
    log: Path
    state_dir: Path | None

    def state(self) -> State:
        if self.output.exists():
            return "done"
        if self.log.is_file() and log_error(self.log) is not None:
            return "failed"
        if self.log.is_file() or (self.state_dir is not None and self.state_dir.exists()):
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


def training_seconds(job: Job) -> float | None:
    """Wall seconds of a finished training over all its attempts, else its log's summary, else None."""
    log = job.output / "training_log.parquet"
    if log.is_file():
        walls = pd.read_parquet(log, columns=None)
        if "wall_s" in walls and len(walls):
            return float(walls["wall_s"].max())
    return log_seconds(job.log)


# Log paths: the `log:` directives of workflow/rules/intermediate.smk and target.smk.
def intermediate_job(grid: Grid, row: str, seed: int) -> Job:
    return Job("intermediate", Path(grid.encoder(row, seed)),
               grid.results / "logs" / "intermediate" / row / f"seed={seed}.log",
               Path(grid.state("intermediate", row, f"seed={seed}")))


def target_job(grid: Grid, row: str, trainset: str, seed: int) -> Job:
    return Job("target", Path(grid.target_checkpoint(row, trainset, seed)),
               grid.results / "logs" / "target" / row / trainset / f"seed={seed}.log",
               Path(grid.state("target", row, trainset, f"seed={seed}")))


def evaluate_job(grid: Grid, row: str, target: str, seed: int) -> Job:
    return Job("evaluate", Path(grid.scores(row, target, seed)),
               grid.results / "logs" / "evaluate" / row / target / f"seed={seed}.log", None)


def cell_jobs(grid: Grid, row: str, target: str, seed: int) -> list[Job]:
    """The jobs a cell needs, upstream first (every row but the baseline has a phase-(ii) checkpoint;
    the untrained control's is written by `init_untrained`)."""
    jobs = [] if row == BASELINE_ROW else [intermediate_job(grid, row, seed)]
    trainset = TARGETS[target].trainset
    if trainset is not None:
        jobs.append(target_job(grid, row, trainset, seed))
    return [*jobs, evaluate_job(grid, row, target, seed)]


# --------------------------------------------------------------------------------------------------
# The grid


def grid_status(grid: Grid, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell: intermediate, target, seed, state, hours (NaN unless done), device, detail.

    `detail` names the failed job's log and its last line, or the running job's log. `scores`
    (as `read_scores` returns) is read from the results tree when not given.
    """
    if scores is None:
        scores = read_scores(grid.results / "scores")
    facts = scores.groupby(["intermediate", "target", "seed"])[["wall_seconds", "device"]].first()
    sharing = {d: sum(TARGETS[t].trainset == d for t in grid.targets) for d in grid.trainsets}
    records = []
    for row, target, seed in grid.cells():
        jobs = cell_jobs(grid, row, target, seed)
        states = [job.state() for job in jobs]
        state: State = "done" if states[-1] == "done" else next(
            (s for s in ("failed", "running") if s in states), "missing")
        hours, device, detail = float("nan"), "", ""
        if state == "done" and (row, target, seed) in facts.index:
            wall, device = facts.loc[(row, target, seed)]
            trainset = TARGETS[target].trainset
            train = training_seconds(target_job(grid, row, trainset, seed)) if trainset else 0.0
            hours = (float(wall) + (train or 0.0) / sharing.get(trainset, 1)) / 3600
        elif state in ("failed", "running"):
            job = jobs[states.index(state)]
            detail = f"{job.kind}: {job.log}" + (f": {log_error(job.log)}" if state == "failed" else "")
        records.append({"intermediate": row, "target": target, "seed": seed, "state": state,
                        "hours": hours, "device": str(device), "detail": detail})
    columns = ["intermediate", "target", "seed", "state", "hours", "device", "detail"]
    return pd.DataFrame.from_records(records, columns=columns)


def phase_ii_hours(grid: Grid) -> pd.Series:
    """Hours of each finished phase-(ii) training, indexed by (row, seed); NaN where unknown."""
    index = pd.MultiIndex.from_tuples(grid.intermediate_jobs(), names=["intermediate", "seed"])
    values = []
    for row, seed in grid.intermediate_jobs():
        job = intermediate_job(grid, row, seed)
        seconds = training_seconds(job) if job.state() == "done" else None
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
    """E.g. "99 cells: 97 done, 1 running, 1 failed, 0 missing; 12.30h spent (hours are ...)"."""
    n = counts(status)
    total = status["hours"].sum() + phase_ii_hours(grid).sum()
    states = ", ".join(f"{n[s]} {s}" for s in STATES)
    return f"{len(status)} cells: {states}; {format_hours(total)} spent ({hours_unit(status)})"


def render_status(status: pd.DataFrame, grid: Grid) -> str:
    """The text `xstilts status` prints: summary, matrix, and the failed cells' logs."""
    lines = [summary_line(status, grid), "", status_matrix(status, grid).to_string(), ""]
    lines.append(f"{PHASE_II} = phase-(ii) training of the row (shared by its cells); "
                 "a cell's hours = its evaluation + its share of the phase-(iii) training.")
    failed = status[status["state"] == "failed"]
    if len(failed):
        lines += ["", "failed:"] + [f"  {r.intermediate} / {r.target} / seed {r.seed}: {r.detail}"
                                    for r in failed.itertuples(index=False)]
    return "\n".join(lines) + "\n"
