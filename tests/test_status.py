"""status: cell states and hours from a hand-made results tree; the `xstilts status` command."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from xstilts.cli import main
from xstilts.grid import Grid
from xstilts.results_io import scores_path, write_scores
from xstilts.status import (
    evaluate_job,
    grid_status,
    hours_unit,
    intermediate_job,
    log_seconds,
    make_grid,
    render_status,
    status_matrix,
    target_job,
)

ROOT = Path(__file__).resolve().parents[1]
H100 = "NVIDIA H100 80GB HBM3"
TRACEBACK = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n"


def _scores(results: Path, row: str, target: str, *, wall: float, device: str) -> None:
    rows = [{"language": "en", "split": "test", "metric": "accuracy", "value": 50.0, "n_examples": 4}]
    write_scores(rows, scores_path(results, row, target, 1), model="m", steps=3, wall_seconds=wall, device=device,
                 run_facts={})


def _log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _summary(seconds: float) -> str:
    return f'train: 100%|####| 3/3\r\n{{"steps": 3, "best_step": 3, "dev_metric": 50.0, "seconds": {seconds}}}\n'


@pytest.fixture
def grid(tmp_path: Path) -> Grid:
    """none: xnli done on an H100 (eval 360 s; its MNLI training 720 s), xquad done (eval 36 s; the SQuAD
    training, 1800 s, is shared with mlqa), mlqa failed in evaluation, tatoeba never started.
    mnli: its phase-(ii) training has resumable state, so every mnli cell is running."""
    g = make_grid(tmp_path / "results", ["none", "mnli"], ["xnli", "xquad", "mlqa", "tatoeba"], [1])
    _scores(g.results, "none", "xnli", wall=360, device=H100)
    _log(target_job(g, "none", "mnli", 1).log, _summary(720))
    Path(target_job(g, "none", "mnli", 1).output).mkdir(parents=True)
    _scores(g.results, "none", "xquad", wall=36, device=H100)
    _log(target_job(g, "none", "squad", 1).log, _summary(1800))
    Path(target_job(g, "none", "squad", 1).output).mkdir(parents=True)
    _log(evaluate_job(g, "none", "mlqa", 1).log, TRACEBACK)
    intermediate_job(g, "mnli", 1).state_dir.mkdir(parents=True)
    return g


def test_cell_states_and_hours(grid: Grid) -> None:
    status = grid_status(grid).set_index(["intermediate", "target"])
    states = status["state"].to_dict()
    assert states == {
        ("none", "xnli"): "done", ("none", "xquad"): "done", ("none", "mlqa"): "failed",
        ("none", "tatoeba"): "missing", ("mnli", "xnli"): "running", ("mnli", "xquad"): "running",
        ("mnli", "mlqa"): "running", ("mnli", "tatoeba"): "running",
    }  # fmt: skip
    assert status.loc[("none", "xnli"), "hours"] == pytest.approx((360 + 720) / 3600)  # 0.3
    assert status.loc[("none", "xquad"), "hours"] == pytest.approx((36 + 1800 / 2) / 3600)  # 0.26: SQuAD shared
    assert status.loc[("none", "xnli"), "device"] == H100
    assert "ValueError: boom" in status.loc[("none", "mlqa"), "detail"]
    assert "evaluate" in status.loc[("none", "mlqa"), "detail"]
    assert "intermediate" in status.loc[("mnli", "xnli"), "detail"]
    assert math.isnan(status.loc[("none", "tatoeba"), "hours"])


def test_rendered_status(grid: Grid) -> None:
    text = render_status(grid_status(grid), grid)
    first = text.splitlines()[0]
    assert first.startswith("8 cells: 2 done, 4 running, 1 failed, 1 missing; 0.56h spent")  # 0.30 + 0.26
    assert f"GPU-hours (wall-clock hours x 1 GPU per job) on {H100}" in first
    assert "failed:\n  none / mlqa / seed 1: evaluate: " in text and "ValueError: boom" in text
    matrix = status_matrix(grid_status(grid), grid)
    assert matrix.loc["none", "xnli"] == "done 0.30h" and matrix.loc["none", "xquad"] == "done 0.26h"
    assert matrix.loc["mnli", "tatoeba"] == "running" and matrix.loc["none", "tatoeba"] == "missing"
    assert matrix.loc["none", "(ii)"] == "" and matrix.loc["mnli", "(ii)"] == "–"  # none has no phase (ii)


def test_failed_upstream_training_fails_the_row_and_phase_ii_hours(tmp_path: Path) -> None:
    g = make_grid(tmp_path / "results", ["mnli", "sst2"], ["xnli", "tatoeba"], [1, 2])
    _log(intermediate_job(g, "mnli", 1).log, "xstilts: error: loss is nan at step 3\n")
    Path(intermediate_job(g, "sst2", 1).output).mkdir(parents=True)
    _log(intermediate_job(g, "sst2", 1).log, _summary(5400))
    _scores(g.results, "sst2", "tatoeba", wall=180, device="cpu")  # seed 1, no phase (iii)
    _scores(g.results, "sst2", "xnli", wall=360, device=H100)
    status = grid_status(g).set_index(["intermediate", "target", "seed"])
    assert status.loc[("mnli", "xnli", 1), "state"] == "failed" == status.loc[("mnli", "tatoeba", 1), "state"]
    assert "loss is nan" in status.loc[("mnli", "tatoeba", 1), "detail"]
    assert status.loc[("mnli", "xnli", 2), "state"] == "missing"
    assert status.loc[("sst2", "tatoeba", 1), "hours"] == pytest.approx(180 / 3600)
    # The MNLI training of sst2 has no log: its share is unknown, the evaluation alone is counted.
    assert status.loc[("sst2", "xnli", 1), "hours"] == pytest.approx(360 / 3600)
    matrix = status_matrix(grid_status(g), g)
    assert list(matrix.index) == ["mnli (seed 1)", "mnli (seed 2)", "sst2 (seed 1)", "sst2 (seed 2)"]
    assert matrix.loc["sst2 (seed 1)", "(ii)"] == "1.50h"  # 5400 s
    assert matrix.loc["sst2 (seed 1)", "tatoeba"] == "done 3.0m cpu"  # a GPU ran another cell: CPU marked
    assert "cells marked 'cpu' ran on the CPU" in hours_unit(grid_status(g))
    text = render_status(grid_status(g), g)
    assert text.startswith("8 cells: 2 done, 0 running, 2 failed, 4 missing; 1.65h spent")  # 0.05 + 0.1 + 1.5


def test_cpu_only_and_empty_grids(tmp_path: Path) -> None:
    g = make_grid(tmp_path / "results", ["none"], ["tatoeba"], [1])
    assert hours_unit(grid_status(g)) == "hours: none finished yet"
    _scores(g.results, "none", "tatoeba", wall=60, device="cpu")
    assert "every job ran on the CPU (no GPU-hours spent)" in hours_unit(grid_status(g))
    assert status_matrix(grid_status(g), g).loc["none", "tatoeba"] == "done 1.0m"


def test_log_seconds_reads_the_last_summary(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    assert log_seconds(log) is None
    _log(log, '{"seconds": 1}\nnoise\n{not json\n' + _summary(12.5) + "done\n")
    assert log_seconds(log) == 12.5
    _log(log, "no summary here\n")
    assert log_seconds(log) is None


def test_log_paths_match_the_rules() -> None:
    rules = "".join((ROOT / "workflow" / "rules" / f).read_text() for f in ("intermediate.smk", "target.smk"))
    g = make_grid(Path("R"), ["mnli"], ["xnli"], [1])
    for job, pattern in [
        (intermediate_job(g, "mnli", 1), "logs/intermediate/{{row}}/seed={{seed}}.log"),
        (target_job(g, "mnli", "mnli", 1), "logs/target/{{row}}/{{trainset}}/seed={{seed}}.log"),
        (evaluate_job(g, "mnli", "xnli", 1), "logs/evaluate/{{row}}/{{target}}/seed={{seed}}.log"),
    ]:
        assert f'f"{{R}}/{pattern}"' in rules
        filled = pattern.replace("{{row}}", "mnli").replace("{{trainset}}", "mnli").replace("{{target}}", "xnli")
        assert job.log.as_posix() == "R/" + filled.replace("{{seed}}", "1")


def test_unknown_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope"):
        make_grid(tmp_path, ["none", "nope"], ["xnli"], [1])


def test_status_command(grid: Grid, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"model: m\nresults: {grid.results}\nrows: [none, mnli]\nseeds: [1]\n"
                      "targets: [xnli, xquad, mlqa, tatoeba]\ntraining: {defaults: {}}\n")
    assert main(["status", "--configfile", str(config)]) == 0
    out = capsys.readouterr().out
    assert out == render_status(grid_status(grid), grid)
