"""`xstilts submit` without a cluster: job sizes, the plan of stages, the sbatch options, refusals.
(Submission itself, requeue and resumption run against a real cluster in test_slurm.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.config import load_config
from xstilts.grid import Grid
from xstilts.settings import JobSize
from xstilts.submit import (
    SubmitError,
    parse_cells,
    plan,
    profile_file,
    profile_resources,
    sbatch_parameters,
    submit,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def grid(tmp_path: Path) -> Grid:
    config = load_config([ROOT / "config.yaml"])
    return Grid({**config, "results": str(tmp_path)})


def test_job_size_is_the_phase_default_with_the_task_override(grid: Grid) -> None:
    assert grid.job_size("train_target", "pawsx") == JobSize(gpu=1, cpus_per_gpu=8, mem_mb=32000, runtime=240)
    assert grid.job_size("train_target", "mnli").runtime == 720
    assert grid.job_size("train_intermediate", "multitask").mem_mb == 128000
    # the specs carry them: what a rule's resources and xstilts submit's sbatch options read
    assert grid.train_target("none", "mnli", 1).size.runtime == 720
    assert grid.train_intermediate("multitask", 1).size.mem_mb == 128000
    assert grid.evaluate("none", "udpos", 1).size == JobSize(gpu=1, cpus_per_gpu=8, mem_mb=32000, runtime=120)


def test_plan_runs_each_shared_training_once_and_skips_what_exists(grid: Grid) -> None:
    cells = parse_cells(["mnli:xnli", "mnli:xquad", "mnli:mlqa", "none:tatoeba"], grid)
    intermediate, target, evaluate = plan(grid, cells)
    assert intermediate == [grid.train_intermediate("mnli", 1)]
    assert target == [grid.train_target("mnli", "mnli", 1), grid.train_target("mnli", "squad", 1)]
    assert len(evaluate) == 4
    grid.encoder("mnli", 1).mkdir(parents=True)
    assert plan(grid, cells)[0] == []


def test_sbatch_options_are_the_profiles(grid: Grid) -> None:
    profile = profile_resources([ROOT / "profiles/slurm", ROOT / "profiles/default"], "train_target")
    params = sbatch_parameters(grid.job_size("train_target", "mnli"), {**profile, "gpu_model": "a100"})
    assert params["partition"] == profile["slurm_partition"] and params["time"] == 720
    assert params["mem"] == "64000M" and params["signal_delay_s"] == 300
    assert params["additional_parameters"] == {"gpus": "a100:1", "cpus_per_gpu": 8, "signal": "USR1@300",
                                               "requeue": True, "kill_on_invalid_dep": "yes"}


def test_profiles_combine_as_in_snakemake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster profile found by name (here in the working directory, the first place Snakemake looks),
    the workflow profile's set-resources over its default-resources for that rule only."""
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text('default-resources: [slurm_partition="a100q", slurm_extra="-x"]\n')
    (tmp_path / "workflow.yaml").write_text("set-resources:\n  train_target: {slurm_extra: \"'--signal=TERM@120'\"}\n")
    monkeypatch.chdir(tmp_path)
    assert profile_file("slurm") == tmp_path / "slurm" / "config.yaml"
    size = JobSize(gpu=1, cpus_per_gpu=2, mem_mb=1000, runtime=10)
    target = profile_resources(["slurm", tmp_path / "workflow.yaml"], "train_target")
    assert target == {"slurm_partition": "a100q", "slurm_extra": "--signal=TERM@120"}
    assert sbatch_parameters(size, target)["signal_delay_s"] == 120
    assert profile_resources(["slurm", tmp_path / "workflow.yaml"], "evaluate")["slurm_extra"] == "-x"
    assert sbatch_parameters(size, {})["signal_delay_s"] == 300  # no slurm_extra: the default lead
    with pytest.raises(SubmitError, match="no Snakemake profile 'nosuch'"):
        profile_file("nosuch")


def test_cells_outside_the_grid_or_without_data_are_refused(grid: Grid, tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="not cells of the configured grid"):
        submit([("mnli", "xnli", 7)], config=grid.config)
    with pytest.raises(SubmitError, match="prepare the data"):
        submit([("mnli", "xnli", 1)], config=grid.config, folder=tmp_path / "submitit")
    with pytest.raises(SubmitError, match="ROW:TARGET"):
        parse_cells(["mnli"], grid)
