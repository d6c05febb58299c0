"""A small grid run end to end by Snakemake in a temporary directory, through the real CLI, and the
single-cell rerun that must rewrite that cell and the tables and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OVERLAY = """
results: out   # not `results`: every path under it (the demo's world and sources too) follows
rows: [none, sst2]
targets: [xnli, pawsx, tatoeba]
languages:
  xnli: [en, de]
  pawsx: [en, zh]
  tatoeba: [de, fr]
training:
  defaults: {epochs: 1, batch_size: 16}
robustness: {conditions: [char_noise, code_switch, adversarial], sample: 0.5}
alignment: {max_pairs: 20}
demo:
  sizes: {train: 120, dev: 40, eval: 30, corpus: 300}
  model: {vocab_size: 1000, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, mlm_steps: 20}
"""


def snakemake_args(work: Path, mode: str = "warm") -> list[str]:
    """The grid in `work`; `mode` cold: the jobs start cold (`warm_start: false`), else warm (the default)."""
    configs = [str(ROOT / "config.yaml"), str(ROOT / "profiles/demo/demo-config.yaml"), str(work / "overlay.yaml")]
    if mode == "cold":
        (work / "cold.yaml").write_text("warm_start: false\n")
        configs.append(str(work / "cold.yaml"))
    return ["--directory", str(work), "--configfile", *configs]


def env() -> dict[str, str]:
    """The environment of a user who runs .venv/bin/snakemake without activating the environment: the jobs
    and the Snakefile's hooks reach the package through the interpreter that runs the workflow."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve())
    return {**os.environ, "PATH": path}


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def snapshot(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*")
            if p.is_file() and "logs" not in p.parts and "base_model" not in p.parts}


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("grid")
    (work / "overlay.yaml").write_text(OVERLAY)
    run([str(BIN / "snakemake"), "--profile", "profiles/demo", *snakemake_args(work)])
    assert not (work / "results").exists()  # nothing went to the default folder
    return work / "out"


def test_small_grid_fills_every_cell_and_table(small_grid: Path) -> None:
    scores = pd.read_parquet(small_grid / "scores")
    cells = set(zip(scores["intermediate"], scores["target"], strict=True))
    assert cells == {(r, t) for r in ("none", "sst2") for t in ("xnli", "pawsx", "tatoeba")}
    assert set(scores[scores["target"] == "xnli"]["language"]) == {"en", "de"}
    assert scores["value"].between(0, 100).all()
    transfer = pd.read_parquet(small_grid / "tables" / "transfer.parquet")
    assert list(transfer.index) == ["none", "sst2"]
    assert transfer[["xnli", "pawsx", "tatoeba"]].notna().all().all()
    for name in ("transfer", "delta"):
        for ext in ("parquet", "csv", "md", "tex"):
            assert (small_grid / "tables" / f"{name}.{ext}").is_file()
    assert (small_grid / "tables" / "heatmap_delta.png").stat().st_size > 1000
    assert "6 cells: 6 done, 0 running, 0 failed, 0 missing" in (small_grid / "README.md").read_text()
    assert '<img src="tables/bars_xnli.png"' in (small_grid / "report.html").read_text()
    manifest = pd.read_parquet(small_grid / "checkpoints" / "manifest.parquet")
    assert set(manifest["phase"]) == {"intermediate", "target"}
    assert (manifest["bytes"] > 0).all() and manifest["sha256"].str.len().eq(64).all()
    # Phase (iii) trained once per (row, training set): XNLI on MNLI, PAWS-X on its English train.
    assert sorted(p.parent.name + "/" + p.name for p in (small_grid / "checkpoints" / "target").glob("*/*")) == [
        "none/mnli", "none/pawsx", "sst2/mnli", "sst2/pawsx"]


def test_small_grid_scores_its_perturbations_and_probes_its_encoders(small_grid: Path) -> None:
    """Every cell under clean and, on half of its report split, the perturbations that serve its target
    (adversarial on XNLI and PAWS-X); the robustness tables, claims and intervals; one probe per encoder; the
    report's sections."""
    scores = pd.read_parquet(small_grid / "scores")
    conditions = scores.groupby("target")["condition"].unique().map(set).to_dict()
    assert conditions["xnli"] == conditions["pawsx"] == {"clean", "clean_sample", "char_noise", "code_switch",
                                                         "adversarial"}
    assert conditions["tatoeba"] == {"clean", "clean_sample", "char_noise", "code_switch"}
    sampled = scores[(scores["condition"] == "char_noise") & (scores["target"] == "xnli")]
    assert set(sampled["split"]) == {"test"} and set(sampled["n_examples"]) == {15}
    tables = small_grid / "tables"
    robustness = pd.read_parquet(tables / "robustness.parquet")
    assert list(robustness.index) == ["none", "sst2"] and "xnli/adversarial" in robustness.columns
    assert robustness.notna().all().all()
    attack = pd.read_parquet(tables / "attack.parquet")
    assert (attack["accuracy under attack"] <= attack["accuracy"]).all() and (attack["forward_passes"] >= 1).all()
    for name in ("robustness_delta", "robustness_ci", "robustness_claims", "robustness_languages", "delta_ci",
                 "alignment_transfer", "alignment_correlation"):
        assert (tables / f"{name}.parquet").is_file(), name
    for plot in ("heatmap_robustness", "drop_by_resource", "alignment_cka", "alignment_isotropy"):
        assert (tables / f"{plot}.png").stat().st_size > 1000, plot
    alignment = pd.read_parquet(small_grid / "alignment")
    assert set(alignment["intermediate"]) == {"none", "sst2"} and set(alignment["language"]) == {"de", "fr", "en"}
    report = (small_grid / "report.html").read_text()
    assert '<h2 id="robustness">' in report and '<h2 id="alignment">' in report
    assert "## Robustness: perturbed evaluation conditions" in (small_grid / "README.md").read_text()
    # the perturbed tables were made once per target, language and condition, whichever cell came first
    cached = list((small_grid / "data/eval/xnli/conditions").rglob("*.parquet"))
    assert len(cached) == 2 * 2  # char_noise and code_switch, en and de


def test_small_grid_marks_its_partial_targets_and_says_what_data_it_read(small_grid: Path) -> None:
    """Two languages per target: every target, group and XTREME is marked partial (†) in every table; the
    data table names the demo's mirror (its folder and a digest of the files read) for every cache."""
    tables = small_grid / "tables"
    for name in ("transfer.md", "delta.md", "best.md", "transfer.tex", "per_language/xnli.md"):
        text = (tables / name).read_text()
        assert "xnli†" in text or "avg†" in text, name
    transfer = (tables / "transfer.md").read_text()
    assert all(f"{t}†" in transfer for t in ("xnli", "pawsx", "tatoeba", "classification", "retrieval", "xtreme"))
    assert "xnli†: partial language set, 2 of XTREME's 15 languages (left out: ar bg el es fr hi" in transfer
    data = pd.read_parquet(tables / "data.parquet")
    assert {"eval/xnli", "eval/pawsx", "eval/tatoeba", "train/mnli", "train/pawsx", "train/sst2"} <= set(data.index)
    assert set(data["source"]) == {"folder"} and data["revision or sha256"].str.len().eq(64).all()
    assert "## Marks" in (small_grid / "README.md").read_text()


SCORE_KEYS = ["intermediate", "target", "seed", "language", "split", "condition", "metric"]


def weights(results: Path) -> dict[str, bytes]:
    """Every weight file and tokenizer of a grid's models (phase i, ii and iii), by path."""
    files = [*results.glob("base_model/*.safetensors"), *results.glob("base_model/tokenizer.json"),
             *results.glob("checkpoints/**/*.safetensors")]
    return {str(p.relative_to(results)): p.read_bytes() for p in files}


def test_the_same_grid_twice_gives_the_same_numbers_and_weights(small_grid: Path,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """From clean folders, the same command twice: every score and every model's weights bit for bit. The
    first run started its jobs warm (the demo's default), this one cold: the warm start changes nothing."""
    assert "warm start unavailable" not in "".join(p.read_text() for p in (small_grid / "logs").rglob("*.log"))
    assert (small_grid / "logs" / "warm_start.log").is_file()
    work = tmp_path_factory.mktemp("again")
    (work / "overlay.yaml").write_text(OVERLAY)
    run([str(BIN / "snakemake"), "--profile", "profiles/demo", *snakemake_args(work, "cold")])
    assert not (work / "out" / "logs" / "warm_start.log").exists()
    first, second = (pd.read_parquet(r / "scores")[[*SCORE_KEYS, "value"]] for r in (small_grid, work / "out"))
    pd.testing.assert_frame_equal(first.sort_values(SCORE_KEYS, ignore_index=True),
                                  second.sort_values(SCORE_KEYS, ignore_index=True), check_exact=True)
    before, after = weights(small_grid), weights(work / "out")
    # base model and tokenizer, sst2's phase-(ii) encoder, 4 phase-(iii) models with their heads
    assert len(before) == 1 + 1 + 1 + 4 * 2 and before.keys() == after.keys()
    assert [name for name in before if before[name] != after[name]] == []


MODES = ("warm", "cold")  # both ways of starting a local run's jobs


def test_another_interpreter_of_the_same_environment_reruns_nothing(small_grid: Path) -> None:
    """The rules' interpreter and config path are no rerun trigger (`untracked` in common.smk): the same
    environment's `python3` instead of `python` plans nothing."""
    done = subprocess.run([str(BIN / "python3"), "-m", "snakemake", "-n", "--profile", "profiles/demo",
                           *snakemake_args(small_grid.parent)], cwd=ROOT, env=env(), capture_output=True, text=True)
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr, done.stdout[-3000:]


@pytest.mark.parametrize("mode", MODES)
def test_rerun_of_one_cell_touches_that_cell_and_the_tables_only(small_grid: Path, mode: str) -> None:
    before = snapshot(small_grid)
    values_before = pd.read_parquet(small_grid / "scores")
    work = small_grid.parent
    run([str(BIN / "xstilts"), "rerun", "sst2", "xnli", "--profile", "profiles/demo", *snakemake_args(work, mode)])
    after = snapshot(small_grid)
    changed = {p for p in before if after.get(p) != before[p]}
    cell = "scores/intermediate=sst2/target=xnli/seed=1/scores.parquet"
    assert cell in changed
    assert "checkpoints/target/sst2/mnli/seed=1/model.safetensors" in changed
    assert "tables/transfer.md" in changed
    untouched_prefixes = ("scores/intermediate=none", "scores/intermediate=sst2/target=pawsx",
                          "scores/intermediate=sst2/target=tatoeba", "checkpoints/intermediate",
                          "checkpoints/target/none", "checkpoints/target/sst2/pawsx", "data/", "demo/")
    touched_elsewhere = [p for p in changed if p.startswith(untouched_prefixes)]
    assert touched_elsewhere == []
    # Retrained and evaluated again, the cell has the same numbers (reproducible bit for bit).
    pd.testing.assert_frame_equal(values_before[[*SCORE_KEYS, "value"]],
                                  pd.read_parquet(small_grid / "scores")[[*SCORE_KEYS, "value"]], check_exact=True)


@pytest.mark.parametrize("mode", MODES)
def test_failed_cell_leaves_the_partial_grid_tables_and_report(small_grid: Path, mode: str) -> None:
    """A cell whose evaluation fails: the run ends non-zero, and the tables, README.md and report.html
    are written from the other cells, with that cell marked failed (the Snakefile's `onerror`)."""
    encoder = small_grid / "checkpoints" / "intermediate" / "sst2" / "seed=1" / "model.safetensors"
    cell = small_grid / "scores" / "intermediate=sst2" / "target=tatoeba" / "seed=1" / "scores.parquet"
    original, times = encoder.read_bytes(), encoder.stat()
    tables_before = (small_grid / "tables" / "transfer.parquet").stat().st_mtime_ns
    cell.unlink(missing_ok=True)  # (the warm run of this test left it missing)
    (small_grid / "tables" / "transfer.md").unlink(missing_ok=True)  # as in a first run: the tables wait for every cell
    encoder.write_bytes(b"not a checkpoint")  # tatoeba evaluates this encoder; its mtime stays, so only
    os.utime(encoder, ns=(times.st_atime_ns, times.st_mtime_ns))  # that evaluation reruns
    try:
        done = subprocess.run([str(BIN / "snakemake"), "--profile", "profiles/demo", "--keep-going",
                               *snakemake_args(small_grid.parent, mode)], cwd=ROOT, env=env(), capture_output=True,
                              text=True)
    finally:
        encoder.write_bytes(original)
        os.utime(encoder, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert done.returncode != 0 and not cell.exists()
    assert "Partial grid: tables" in done.stdout + done.stderr
    assert (small_grid / "tables" / "transfer.parquet").stat().st_mtime_ns > tables_before
    transfer = pd.read_parquet(small_grid / "tables" / "transfer.parquet")
    assert pd.isna(transfer.loc["sst2", "tatoeba"]) and transfer.loc["none", "tatoeba"] > 0
    assert "6 cells: 5 done, 0 running, 1 failed, 0 missing" in (small_grid / "README.md").read_text()
    assert '<td class="state-failed">failed</td>' in (small_grid / "report.html").read_text()
