"""The grid's expansion and sharing, and the refusal of bad configs, on the paper's config.yaml."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from jsonschema import validate

from xstilts.benchmarks import XTREME
from xstilts.catalogue import TARGETS
from xstilts.config import ConfigError, config_schema, resolve_config
from xstilts.grid import Grid
from xstilts.specs import from_json, read_spec

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture
def paper() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def refuse(config: dict) -> str:
    """The message with which the workflow refuses a config (schema first, then the catalogue)."""
    with pytest.raises(ConfigError) as err:
        resolve_config(config)
    return str(err.value)


def test_paper_grid_shares_trainings(paper: dict) -> None:
    grid = Grid(paper)
    assert len(grid.rows) == 11 and len(grid.targets) == 9
    assert grid.trained_rows == [r for r in grid.rows if r != "none"]
    assert len(grid.intermediate_jobs()) == 10  # `none` needs no phase-(ii) training
    assert grid.trainsets == ["mnli", "pawsx", "udpos", "panx", "squad", "tydiqa"]
    assert len(grid.target_jobs()) == 11 * 6 == 66
    assert len(grid.cells()) == 11 * 9 == 99
    # XQuAD and MLQA evaluate the same SQuAD v1.1 model; XNLI's model is trained on MNLI.
    assert grid.cell_model("mnli", "xquad", 1) == grid.cell_model("mnli", "mlqa", 1)
    assert grid.cell_model("mnli", "xnli", 1).as_posix().endswith("checkpoints/target/mnli/mnli/seed=1")
    # Retrieval evaluates the phase-(ii) encoder directly; the baseline evaluates the base model.
    assert grid.cell_model("qqp", "bucc", 1) == grid.encoder("qqp", 1)
    assert grid.cell_model("none", "tatoeba", 1) == grid.base_model
    assert grid.row_tasks("multitask") == ["anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli",
                                           "qqp", "squad_v2", "sst2"]


def test_several_seeds_multiply_every_job(paper: dict) -> None:
    grid = Grid({**paper, "seeds": [1, 2, 3]})
    assert (len(grid.intermediate_jobs()), len(grid.target_jobs()), len(grid.cells())) == (30, 198, 297)


def test_hparams_merge_defaults_and_task_overrides(paper: dict) -> None:
    grid = Grid(paper)
    assert grid.hparams("squad").max_length == 384 and grid.hparams("squad").lr == 1e-5
    assert grid.hparams("squad").batch_size * grid.hparams("squad").grad_accum == 16
    assert grid.hparams("mnli").batch_size * grid.hparams("mnli").grad_accum == 32
    assert grid.hparams("udpos").epochs == 10
    # the specs carry them: a phase-(iii) training's settings are its training set's
    assert grid.train_target("none", "squad", 1).hparams["squad"] == grid.hparams("squad")
    assert grid.train_target("none", "squad", 1).optim == grid.hparams("squad")


def test_retrieval_settings_per_target(paper: dict) -> None:
    """The paper's defaults (mean pooling, the scaled layer 14) for both; each target overridable."""
    grid = Grid(paper)
    assert asdict(grid.retrieval("bucc")) == {"pooling": "mean", "layer": None, "max_length": 512,
                                              "batch_size": 64, "k": 4, "duplicates": "xtreme"}
    assert asdict(grid.retrieval("tatoeba")) == {"pooling": "mean", "layer": None, "max_length": 512, "batch_size": 64,
                                                 "k": 4, "duplicates": "xtreme"}  # k and duplicates: BUCC's only
    assert grid.retrieval("xnli") is None
    assert grid.evaluate("none", "bucc", 1).retrieval == grid.retrieval("bucc")
    xtreme = {"pooling": "cls", "layer": 20}
    xtreme_bucc = resolve_config({**paper, "retrieval": {**paper["retrieval"], "bucc": xtreme}})
    grid = Grid(xtreme_bucc)
    assert (grid.retrieval("bucc").pooling, grid.retrieval("bucc").layer) == ("cls", 20)
    assert grid.retrieval("tatoeba").pooling == "mean"
    assert "pool" in refuse({**paper, "retrieval": {"bucc": {"pool": "cls"}}})
    assert "max" in refuse({**paper, "retrieval": {"tatoeba": {"pooling": "max"}}})
    assert "layer" in refuse({**paper, "retrieval": {"layer": 14}})  # the flat form of before


def test_paper_config_is_valid(paper: dict) -> None:
    assert resolve_config(paper) == paper
    validate(copy.deepcopy(paper), config_schema())  # also against the filled schema by plain jsonschema
    assert Grid(paper).targets == list(XTREME.targets)  # the benchmark's, in catalogue order
    for target, languages in XTREME.languages.items():
        assert set(languages) <= set(TARGETS[target].languages)
        assert tuple(Grid(paper).languages(target)) == languages


def test_unknown_row_is_refused(paper: dict) -> None:
    message = refuse({**paper, "rows": ["none", "mlni"]})
    assert "mlni" in message and "mnli" in message


def test_unknown_target_is_refused(paper: dict) -> None:
    message = refuse({**paper, "targets": [*XTREME.targets, "xnlii"]})
    assert "xnlii" in message and "xnli" in message
    message = refuse({**paper, "languages": {"xnlii": ["en"]}})
    assert "xnlii" in message


def test_unknown_language_is_refused(paper: dict) -> None:
    message = refuse({**paper, "languages": {"pawsx": ["en", "ru"]}})
    assert "'ru'" in message and "pawsx" in message and "de en es fr ja ko zh" in message


def test_unlisted_target_languages_default_to_xtremes_and_overlays_can_shrink_targets(paper: dict) -> None:
    grid = Grid({**paper, "targets": ["xnli", "bucc"], "languages": {"xnli": ["en", "de"]}})
    assert grid.targets == ["xnli", "bucc"] and grid.trainsets == ["mnli"]
    assert grid.languages("xnli") == ["en", "de"] and grid.languages("bucc") == ["de", "fr", "ru", "zh"]


def test_misspelt_key_is_refused(paper: dict) -> None:
    bad = copy.deepcopy(paper)
    bad["training"]["defaults"]["lerning_rate"] = 1e-5
    assert "lerning_rate" in refuse(bad)
    assert "seed" in refuse({**paper, "seed": [1]})


def test_wrong_type_is_refused(paper: dict) -> None:
    bad = copy.deepcopy(paper)
    bad["training"]["defaults"]["lr"] = "fast"
    message = refuse(bad)
    assert "'fast'" in message and "number" in message


def test_unknown_training_task_is_refused(paper: dict) -> None:
    bad = copy.deepcopy(paper)
    bad["training"]["tasks"]["sqaud"] = {"epochs": 1}
    assert "sqaud" in refuse(bad)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_dry_run_of_paper_grid_on_slurm_profile_has_the_shared_job_counts(tmp_path: Path) -> None:
    out = subprocess.run([*SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--config", f"results={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    counts = job_counts(out)
    assert counts["train_intermediate"] == 10
    assert counts["train_target"] == 66
    assert counts["evaluate"] == 99
    assert counts["prepare_dataset"] == 14 and counts["prepare_target"] == 9


def test_untrained_control_gets_a_random_encoder_and_no_training(paper: dict, tmp_path: Path) -> None:
    """The untrained control: one `init_untrained` job per seed instead of a phase-(ii) training; its
    target trainings and retrieval evaluations start from that encoder, not from the base model."""
    rows = ["none", "untrained", "mnli"]
    grid = Grid({**paper, "rows": rows})
    assert grid.trained_rows == ["mnli"] and grid.row_tasks("untrained") == []
    assert grid.cell_model("untrained", "tatoeba", 1) == grid.encoder("untrained", 1) != grid.base_model
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"rows": rows, "seeds": [1, 2], "results": str(tmp_path / "results")}))
    out = subprocess.run([*SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--configfile", "config.yaml", str(overlay)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    counts = job_counts(out)
    assert counts["init_untrained"] == 2 and counts["train_intermediate"] == 2
    assert counts["train_target"] == 3 * 6 * 2 and counts["evaluate"] == 3 * 9 * 2


def test_bad_config_stops_snakemake_before_any_job(tmp_path: Path) -> None:
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("languages:\n  xnli: [en, xx]\n")
    run = subprocess.run([*SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--configfile", "config.yaml",
                          str(overlay)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode != 0
    assert "xx" in run.stderr + run.stdout
    assert "Job stats" not in run.stdout


def test_hub_revisions_can_be_overridden_per_repo_and_are_checked(paper: dict) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    ok = {**paper, "sources": {**paper["sources"], "revisions": {"google/xtreme": sha, "nyu-mll/glue": sha}}}
    resolve_config(ok)
    assert "'main' does not match" in refuse({**paper, "sources": {"revisions": {"google/xtreme": "main"}}})
    message = refuse({**paper, "sources": {"revisions": {"google/xtrem": sha}}})
    assert "sources.revisions: 'google/xtrem' is no hub repo this grid reads" in message and "google/xtreme" in message
    variant = {"mt": {"task": "mnli", "translations": {"source": "someone/mnli-mt", "languages": ["de"]}}}
    resolve_config({**paper, "variants": variant, "sources": {"revisions": {"someone/mnli-mt": sha}}})


# ---------------------------------------------------------------------------------------------- job specs


def test_every_job_has_a_typed_spec_that_round_trips_through_json(paper: dict, tmp_path: Path) -> None:
    grid = Grid(resolve_config({**paper, "results": str(tmp_path)}))
    jobs = list(grid.jobs())
    kinds = Counter(spec.kind for spec in jobs)
    assert kinds == {"prepare": 14 + 9, "train": 10 + 66, "evaluate": 99, "aggregate": 1}
    assert len({spec.key for spec in jobs}) == len(jobs)  # one identity per job
    for spec in jobs:
        assert from_json(json.loads(json.dumps(spec.to_json()))) == spec
    spec = grid.evaluate("mnli", "xquad", 1)
    model = tmp_path / "checkpoints/target/mnli/squad/seed=1"
    assert spec.inputs["model"] == grid.train_target("mnli", "squad", 1).out == model
    cell = "intermediate=mnli/target=xquad/seed=1"
    assert spec.outputs == {"scores": tmp_path / "scores" / cell / "scores.parquet",
                            "predictions": tmp_path / "predictions" / cell / "predictions.parquet"}
    spec.write(tmp_path / "written")
    assert read_spec(tmp_path / "written") == spec


def test_a_setting_changes_the_digest_of_the_jobs_it_decides_only(paper: dict, tmp_path: Path) -> None:
    """Snakemake reruns a job whose spec digest changed (the rules' `params`): a new lr for PAWS-X reruns
    the PAWS-X trainings, no other job; a longer time limit reruns nothing."""
    before = Grid(resolve_config({**paper, "results": str(tmp_path)}))
    changed = copy.deepcopy(paper)
    changed["training"]["tasks"]["pawsx"] = {"epochs": 5, "lr": 2e-5}
    changed["resources"]["evaluate"]["default"]["runtime"] = 90
    after = Grid(resolve_config({**changed, "results": str(tmp_path)}))
    moved = [a.key for b, a in zip(before.jobs(), after.jobs(), strict=True) if a.digest != b.digest]
    assert sorted(moved) == sorted(("train", "target", row, "pawsx", "1") for row in before.rows)


def test_the_multitask_row_has_an_optimiser_section_of_its_own(paper: dict, tmp_path: Path) -> None:
    """Not the first task's (anli) settings: `training.defaults` under `multitask.optimizer`; each task keeps
    its own data settings."""
    config = copy.deepcopy(paper)
    config["training"]["tasks"]["anli"] = {"lr": 9e-5, "grad_accum": 2}
    config["multitask"]["optimizer"] = {"warmup": 0.06}
    spec = Grid(resolve_config({**config, "results": str(tmp_path)})).train_intermediate("multitask", 1)
    assert (spec.optim.lr, spec.optim.grad_accum, spec.optim.warmup) == (1e-5, 8, 0.06)
    assert spec.hparams["anli"].lr == 9e-5 and spec.hparams["squad_v2"].max_length == 384
    message = refuse({**paper, "multitask": {"optimizer": {"max_length": 128}}})  # a task's data setting
    assert "multitask.optimizer: unknown key `max_length`" in message and "allowed: lr, warmup" in message


def robust_grid(paper: dict, tmp_path: Path, **robustness: object) -> Grid:
    """The paper grid with every lexicon pair its code-switching needs in a folder, and `robustness`."""
    folder = tmp_path / "muse"
    folder.mkdir(exist_ok=True)
    languages = {lang for t in TARGETS.values() for lang in t.languages} - {"en"}
    for lang in languages:
        for pair in (f"{lang}-en", f"en-{lang}"):
            (folder / f"{pair}.txt").write_text("a b\n")
    config = {**paper, "results": str(tmp_path), "sources": {**paper["sources"], "lexicons": str(folder)},
              "robustness": robustness, "alignment": {}}
    return Grid(resolve_config(config))


def test_each_target_is_evaluated_under_the_conditions_that_serve_its_family(paper: dict, tmp_path: Path) -> None:
    grid = robust_grid(paper, tmp_path, conditions=["char_noise", "word_order", "code_switch", "adversarial"])
    assert grid.conditions("xnli") == ("clean", "clean_sample", "char_noise", "word_order", "code_switch",
                                       "adversarial")
    assert grid.conditions("udpos") == ("clean", "clean_sample", "char_noise", "code_switch")  # no word swaps
    assert grid.conditions("xquad") == ("clean", "clean_sample", "char_noise", "word_order", "code_switch")
    spec = grid.evaluate("mnli", "udpos", 1)
    assert spec.robustness is not None and spec.robustness.conditions == ("char_noise", "code_switch")
    assert spec.perturbed == tmp_path / "data/eval/udpos/conditions" and spec.lexicons == tmp_path / "muse"
    only = robust_grid(paper, tmp_path, conditions=["char_noise"], targets=["xnli"], sample=1.0)
    assert only.conditions("xnli") == ("clean", "char_noise") and only.conditions("pawsx") == ("clean",)
    assert only.evaluate("none", "pawsx", 1).robustness is None and only.evaluate("none", "pawsx", 1).lexicons is None
    assert Grid(resolve_config({**paper, "results": str(tmp_path)})).conditions("xnli") == ("clean",)


def test_a_conditions_settings_rerun_only_the_evaluations_it_runs_in(paper: dict, tmp_path: Path) -> None:
    """The adversarial budget is an XNLI and PAWS-X setting: a change reruns their evaluations, nothing else."""
    conditions = ["char_noise", "adversarial"]
    before = robust_grid(paper, tmp_path, conditions=conditions)
    after = robust_grid(paper, tmp_path, conditions=conditions, adversarial={"budget": 32})
    moved = {a.key[2] for b, a in zip(before.jobs(), after.jobs(), strict=True) if a.digest != b.digest}
    assert moved == {"xnli", "pawsx"}


def test_one_alignment_job_per_encoder_sized_as_an_evaluation(paper: dict, tmp_path: Path) -> None:
    grid = robust_grid(paper, tmp_path)
    jobs = grid.align_jobs()
    assert [j.row for j in jobs] == grid.rows and jobs[0].encoder == grid.base_model
    spec = grid.align("mnli", 1)
    assert spec.encoder == grid.layout.encoder("mnli", 1) and set(spec.data) == {"xnli", "xquad", "mlqa", "bucc",
                                                                                "tatoeba"}
    assert spec.out == tmp_path / "alignment/intermediate=mnli/seed=1/alignment.parquet"
    assert spec.size == grid.job_size("evaluate", "tatoeba")
    assert set(grid.aggregate().alignments) == {j.out for j in jobs}
    assert from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(ConfigError, match="no alignment probes"):
        Grid(resolve_config({**paper, "results": str(tmp_path)})).spec("align", row="none", seed=1)
