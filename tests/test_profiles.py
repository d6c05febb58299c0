"""The profiles and how Snakemake combines them, without a cluster: the workflow profile (profiles/default,
loaded by Snakemake for every run) leaves local and demo runs as they were; `make slurm-profile`'s script
installs profiles/slurm as the profile `slurm` and never overwrites one; `snakemake --profile slurm`
plans the same jobs with the same resources with that profile, with a minimal site profile and with
`--profile profiles/slurm`. (The live runs are in test_slurm.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.cli import parse_args
from snakemake.settings.enums import RerunTrigger

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
INSTALL = ROOT / "profiles" / "install.py"
GPU_RULES = {"train_intermediate", "train_target", "evaluate", "align"}
# All that a site's general profile needs for this workflow: the executor and a partition (and `jobs`,
# without which Snakemake refuses any remote execution).
MINIMAL_SITE_PROFILE = {"executor": "slurm", "jobs": 10, "default-resources": ['slurm_partition="gpu"']}


def profile_env(home: Path, site: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with Snakemake's profile folders moved: the user's
    to HOME/.config/snakemake, the site's to SITE/snakemake (a temporary HOME, and no real /etc/xdg)."""
    env = {k: v for k, v in (base or os.environ).items() if k != "XDG_CONFIG_HOME"}
    return {**env, "HOME": str(home), "XDG_CONFIG_DIRS": str(site)}


def install_profile(env: dict[str, str]) -> subprocess.CompletedProcess:
    """What `make slurm-profile` runs."""
    return subprocess.run([sys.executable, INSTALL], env=env, capture_output=True, text=True)


def site_profile(site: Path, settings: dict[str, Any]) -> Path:
    """A site's general profile `slurm` under SITE/snakemake (where /etc/xdg/snakemake would be)."""
    folder = site / "snakemake" / "slurm"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder


def options(*argv: str) -> dict[str, Any]:
    """Every command-line option as Snakemake resolves it from `argv` and the profiles, comparable."""

    def plain(value: Any) -> Any:
        if isinstance(value, set | frozenset):
            return sorted(map(repr, value))
        if hasattr(value, "__dict__") and not isinstance(value, type):
            return type(value).__name__, {k: plain(v) for k, v in vars(value).items()}
        return repr(value)

    _, args = parse_args(list(argv))
    return {name: plain(value) for name, value in vars(args).items()}


def planned_jobs(*argv: str, env: dict[str, str] | None = None) -> dict[str, set[str]]:
    """A dry run from the repository: each job (rule and outputs) with its resources."""
    done = subprocess.run([*SNAKEMAKE, "-n", *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = {}
    for job in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", done.stdout, flags=re.M):
        fields = dict(re.findall(r"^ +(output|input|resources): (.*)$", job[2], flags=re.M))
        jobs[f"{job[1]} -> {fields.get('output', fields.get('input'))}"] = set(fields["resources"].split(", "))
    assert len(jobs) > 100, done.stdout[-2000:]
    return jobs


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)  # where Snakemake looks for profiles/default
    yield


def test_workflow_profile_names_no_executor() -> None:
    """DESIGN 5: what Snakemake loads by itself never sends a run to SLURM."""
    workflow = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert "executor" not in workflow and "default-resources" not in workflow
    assert set(workflow["set-resources"]) == GPU_RULES


@pytest.mark.parametrize("profile", ["profiles/demo", "profiles/local"])
def test_local_and_demo_options_are_theirs_plus_what_only_slurm_reads(profile: str, in_root: None) -> None:
    """With the workflow profile (as `make demo` and `--profile profiles/local` run) every option is what
    the profile alone gives, except the SLURM executor's settings and the slurm_extra resource (read by
    that executor only) and the rerun triggers, which are the ones these profiles named themselves before."""
    loaded, alone = options("--profile", profile), options("--profile", profile, "--workflow-profile", "none")
    assert loaded["executor"] == alone["executor"] == repr(None)  # the local executor
    assert loaded["retries"] == repr(0) and loaded["keep_going"] == repr(False)
    changed = {k for k in loaded if loaded[k] != alone[k]} - {"workflow_profile"}
    assert {k for k in changed if not k.startswith("slurm_")} == {"rerun_triggers", "set_resources"}
    _, args = parse_args(["--profile", profile])
    assert set(args.rerun_triggers) == {RerunTrigger.MTIME, RerunTrigger.PARAMS, RerunTrigger.INPUT,
                                        RerunTrigger.CODE}
    assert {rule: set(r) for rule, r in args.set_resources.items()} == {rule: {"slurm_extra"} for rule in GPU_RULES}


@pytest.mark.parametrize("profile", ["profiles/demo", "profiles/local"])
def test_local_and_demo_dry_runs_plan_the_same_jobs_and_resources(profile: str, tmp_path: Path) -> None:
    results = ["--config", f"results={tmp_path}"]
    loaded = planned_jobs("--profile", profile, *results)
    alone = planned_jobs("--profile", profile, "--workflow-profile", "none", *results)
    assert loaded.keys() == alone.keys()
    for job, resources in loaded.items():
        extra = {"slurm_extra=--signal=TERM@300"} if job.split(" ")[0] in GPU_RULES else set()
        assert resources == alone[job] | extra, job


def test_slurm_profile_is_installed_once_and_never_overwritten(tmp_path: Path) -> None:
    env = profile_env(tmp_path / "home", tmp_path / "site")
    done = install_profile(env)
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "home" / ".config" / "snakemake" / "slurm" / "config.yaml"
    assert installed.read_text() == (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    installed.write_text(installed.read_text().replace('"gpu"', '"a100q"'))  # the user's edit
    again = install_profile(env)
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1 and str(installed.parent) in again.stderr
    assert '"a100q"' in installed.read_text()


def test_site_profile_refuses_the_install(tmp_path: Path) -> None:
    site = site_profile(tmp_path / "site", MINIMAL_SITE_PROFILE)
    done = install_profile(profile_env(tmp_path / "home", tmp_path / "site"))
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and str(site) in done.stderr
    assert not (tmp_path / "home" / ".config" / "snakemake" / "slurm").exists()


def test_profile_slurm_plans_the_same_jobs_installed_at_a_site_or_by_path(tmp_path: Path) -> None:
    """`snakemake --profile slurm` with the installed profile, with a minimal site profile (both plus the
    workflow profile), and `--profile profiles/slurm`: the same SLURM jobs with the same resources."""
    results = ["--config", f"results={tmp_path / 'results'}"]
    user = profile_env(tmp_path / "user", tmp_path / "no-site")
    assert install_profile(user).returncode == 0
    site_profile(tmp_path / "site", MINIMAL_SITE_PROFILE)
    site = profile_env(tmp_path / "home", tmp_path / "site")
    installed = planned_jobs("--profile", "slurm", *results, env=user)
    assert planned_jobs("--profile", "slurm", *results, env=site) == installed
    assert planned_jobs("--profile", "profiles/slurm", *results, env=site) == installed
    train = installed[f"train_target -> {tmp_path}/results/checkpoints/target/mnli/mnli/seed=1"]
    assert {"slurm_partition=gpu", "slurm_extra=--signal=TERM@300", "gpu=1", "runtime=720"} <= train
