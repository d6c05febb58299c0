"""status: cell states and hours from a hand-made results tree; the `xstilts status` command."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.grids import make_grid, overlay
from xstilts.cli import main
from xstilts.config import ConfigError
from xstilts.grid import Grid
from xstilts.results_io import write_scores
from xstilts.status import (
    grid_status,
    hours_unit,
    log_seconds,
    render_status,
    rerun_command,
    status_matrix,
)

ROOT = Path(__file__).resolve().parents[1]
H100 = "NVIDIA H100 80GB HBM3"
TRACEBACK = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n"


def _scores(grid: Grid, row: str, target: str, *, wall: float, device: str) -> None:
    rows = [{"language": "en", "split": "test", "metric": "accuracy", "value": 50.0, "n_examples": 4}]
    write_scores(rows, grid.layout.scores(row, target, 1), model="m", steps=3, wall_seconds=wall, device=device,
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
    _scores(g, "none", "xnli", wall=360, device=H100)
    _log(g.train_target("none", "mnli", 1).log, _summary(720))
    g.train_target("none", "mnli", 1).out.mkdir(parents=True)
    _scores(g, "none", "xquad", wall=36, device=H100)
    _log(g.train_target("none", "squad", 1).log, _summary(1800))
    g.train_target("none", "squad", 1).out.mkdir(parents=True)
    _log(g.evaluate("none", "mlqa", 1).log, TRACEBACK)
    g.train_intermediate("mnli", 1).state.mkdir(parents=True)
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
    _log(g.train_intermediate("mnli", 1).log, "xstilts: error: loss is nan at step 3\n")
    g.train_intermediate("sst2", 1).out.mkdir(parents=True)
    _log(g.train_intermediate("sst2", 1).log, _summary(5400))
    _scores(g, "sst2", "tatoeba", wall=180, device="cpu")  # seed 1, no phase (iii)
    _scores(g, "sst2", "xnli", wall=360, device=H100)
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
    _scores(g, "none", "tatoeba", wall=60, device="cpu")
    assert "every job ran on the CPU (no GPU-hours spent)" in hours_unit(grid_status(g))
    assert status_matrix(grid_status(g), g).loc["none", "tatoeba"] == "done 1.0m"


def test_log_seconds_reads_the_last_summary(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    assert log_seconds(log) is None
    _log(log, '{"seconds": 1}\nnoise\n{not json\n' + _summary(12.5) + "done\n")
    assert log_seconds(log) == 12.5
    _log(log, "no summary here\n")
    assert log_seconds(log) is None


def test_log_paths_are_the_rules() -> None:
    """The rules take their log paths from the layout that the specs use: one place."""
    rules = "".join((ROOT / "workflow" / "rules" / f).read_text() for f in ("intermediate.smk", "target.smk"))
    for pattern in ('L.log("intermediate", "{row}", "seed={seed}")',
                    'L.log("target", "{row}", "{trainset}", "seed={seed}")',
                    'L.log("evaluate", "{row}", "{target}", "seed={seed}")'):
        assert pattern in rules
    g = make_grid(Path("R"), ["mnli"], ["xnli"], [1])
    assert g.train_intermediate("mnli", 1).log.as_posix() == "R/logs/intermediate/mnli/seed=1.log"
    assert g.train_target("mnli", "mnli", 1).log.as_posix() == "R/logs/target/mnli/mnli/seed=1.log"
    assert g.evaluate("mnli", "xnli", 1).log.as_posix() == "R/logs/evaluate/mnli/xnli/seed=1.log"


def test_unknown_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        make_grid(tmp_path, ["none", "nope"], ["xnli"], [1])


def test_status_command(grid: Grid, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = overlay(tmp_path / "c.yaml", grid.layout.root, ["none", "mnli"], ["xnli", "xquad", "mlqa", "tatoeba"])
    assert main(["status", "--configfile", *files]) == 0
    out = capsys.readouterr().out
    assert out == render_status(grid_status(grid), grid)


def test_a_damaged_scores_file_is_a_corrupt_cell_named_with_its_redo(grid: Grid, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated scores.parquet in a finished grid (a full disk, a bad copy): `status` and `aggregate`
    go on; the cell is `corrupt`, named with the command that redoes it; nothing else changes."""
    path = grid.layout.scores("none", "xnli", 1)
    path.write_bytes(path.read_bytes()[:64])
    status = grid_status(grid).set_index(["intermediate", "target"])
    assert status.loc[("none", "xnli"), "state"] == "corrupt"
    assert "unreadable" in status.loc[("none", "xnli"), "detail"]
    assert "xstilts rerun none xnli --seed 1" in status.loc[("none", "xnli"), "detail"]
    assert status.loc[("none", "xquad"), "state"] == "done"
    files = overlay(tmp_path / "c.yaml", grid.layout.root, ["none", "mnli"], ["xnli", "xquad", "mlqa", "tatoeba"])
    assert main(["status", "--configfile", *files]) == 0
    out = capsys.readouterr().out
    assert out.startswith("8 cells: 1 done, 4 running, 1 failed, 1 corrupt, 1 missing")
    assert "corrupt:\n  none / xnli / seed 1: " in out
    assert main(["aggregate", "--configfile", *files]) == 0
    readme = grid.layout.readme.read_text()
    assert "1 corrupt" in readme and "xstilts rerun none xnli --seed 1" in readme
    assert '<td class="state-corrupt">corrupt</td>' in grid.layout.report.read_text()
    # a damaged manifest makes its checkpoint corrupt too; the redo then includes phase (ii)
    encoder = grid.train_intermediate("mnli", 1).out
    encoder.mkdir(parents=True)
    (encoder / "manifest.parquet").write_bytes(b"PAR1 truncated")
    status = grid_status(grid).set_index(["intermediate", "target"])
    assert status.loc[("mnli", "tatoeba"), "state"] == "corrupt"
    assert status.loc[("mnli", "tatoeba"), "detail"].endswith("xstilts rerun mnli tatoeba --seed 1 --intermediate")


def test_rerun_forces_the_cells_jobs_from_the_specs(grid: Grid) -> None:
    cmd = rerun_command(grid, "mnli", "xquad", 1, profiles=["profiles/demo"])
    forced = [str(grid.layout.target_model("mnli", "squad", 1)), str(grid.layout.scores("mnli", "xquad", 1))]
    assert cmd[-len(forced) - 1:] == ["--forcerun", *forced]
    assert str(grid.layout.table("transfer")) in cmd
    with_ii = rerun_command(grid, "mnli", "xquad", 1, profiles=["profiles/demo"], intermediate=True,
                            configfiles=[Path("a.yaml")])
    assert str(grid.layout.encoder("mnli", 1)) in with_ii and with_ii[-2:] == ["--configfile", "a.yaml"]
