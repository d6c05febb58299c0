"""The one config loader: merging, the schema's dataclass-filled `$defs`, short refusals, path placeholders."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import pytest
import yaml
from snakemake.utils import update_config

from xstilts import status, submit
from xstilts.benchmarks import XTREME
from xstilts.cli import main
from xstilts.config import SCHEMA_FILE, ConfigError, config_schema, load_config, merge, resolve_config
from xstilts.demo.world import UD_FOLDER
from xstilts.layout import Layout
from xstilts.settings import HParams, JobSize, MLMSettings, RetrievalSettings, Sampling, dataclass_schema

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.yaml"
DEMO = ROOT / "profiles" / "demo" / "demo-config.yaml"


@pytest.fixture
def paper() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def refuse(config: dict, files: list[Path] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        resolve_config(config, files=files or [])
    return str(err.value)


def overlay(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- refusals ---------------------------------------------------------------------------------------


def test_misspelt_top_level_key_names_its_file_and_the_close_key(tmp_path: Path) -> None:
    bad = overlay(tmp_path, "trainig: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config([CONFIG, bad])
    assert str(err.value).splitlines()[0] == f"config: unknown key `trainig` (in {bad})"
    assert "did you mean `training`?" in str(err.value)
    assert "allowed: model, results, seeds" in str(err.value)


def test_misspelt_hyperparameter(paper: dict) -> None:
    paper["training"]["defaults"]["lerning_rate"] = 1e-5
    message = refuse(paper)
    assert message.startswith("config training.defaults: unknown key `lerning_rate`")
    assert "allowed: lr, warmup, batch_size" in message
    assert "did you mean `lr`?" in message  # the initials of learning_rate


def test_unknown_target(paper: dict) -> None:
    message = refuse({**paper, "targets": [*XTREME.targets, "xnlii"]})
    assert message.startswith("config targets[9]: 'xnlii' is not allowed")
    assert "did you mean `xnli`?" in message and "tatoeba" in message


def test_enum_value_out_of_range(paper: dict) -> None:
    message = refuse({**paper, "retrieval": {"bucc": {"pooling": "max"}}})
    assert message.startswith("config retrieval.bucc.pooling: 'max' is not allowed")
    assert "allowed: mean, cls" in message
    assert "did you mean `temperature`?" in refuse({**paper, "multitask": {"sampling": {"method": "temprature"}}})


def test_wrong_type(paper: dict) -> None:
    assert refuse({**paper, "seeds": "one"}) == "config seeds: 'one' is a string, not a list"
    paper["training"]["tasks"]["udpos"]["epochs"] = "ten"
    message = refuse(paper)
    assert message.startswith("config training.tasks.udpos.epochs: 'ten' is a string, not a number")
    assert "epochs: passes over the training set" in message  # HParams' description


def test_missing_required_key(paper: dict) -> None:
    del paper["training"]
    assert "config: missing key `training` (required: model, results" in refuse(paper)
    sizes = {"train_target": {"default": {"gpu": 1, "runtime": 60}}}
    assert refuse({**paper, "training": {"defaults": {}}, "resources": sizes}).startswith(
        "config resources.train_target.default: missing keys `cpus_per_gpu`, `mem_mb` (required: gpu,")
    message = refuse({**paper, "training": {"defaults": {}}, "variants": {"x": {"task": "mnli", "mlm": {}}},
                      "rows": ["x"]})
    assert "config variants.x.mlm: missing key `corpus`" in message and "corpus: folder of *.txt" in message


def test_unknown_row_and_task_get_a_close_name(paper: dict) -> None:
    message = refuse({**paper, "rows": ["none", "mlni"]})
    assert message.startswith("config rows: unknown row 'mlni'") and "did you mean `mnli`?" in message
    paper["training"]["tasks"]["sqaud"] = {"epochs": 1}
    assert "did you mean `squad`?" in refuse(paper)
    assert "did you mean `pooling`?" in refuse({**paper, "retrieval": {"bucc": {"pool": "cls"}}})


def test_bounds_and_job_size_keys(paper: dict) -> None:
    paper["training"]["defaults"]["warmup"] = 2
    assert refuse(paper).startswith("config training.defaults.warmup: 2 is out of range: must be <= 1")
    paper = yaml.safe_load(CONFIG.read_text())
    paper["resources"]["train_target"]["tasks"]["sqaud"] = {"gpu": 2}
    message = refuse(paper)
    assert message.startswith("config resources.train_target.tasks: unknown key `sqaud`")
    assert "did you mean `squad`?" in message


@pytest.mark.parametrize("change", [
    {"trainig": {}}, {"training": {"defaults": {"lerning_rate": 1}}}, {"targets": ["xnli", "xnlii"]},
    {"retrieval": {"bucc": {"pooling": "max"}}}, {"seeds": "one"}, {"rows": ["none", "mlni"]},
    {"languages": {"udpos": ["en", "xx"]}}, {"seeds": [1, 1], "rows": "x", "model": 3, "dropout": 1},
])
def test_every_refusal_is_a_few_lines(paper: dict, change: dict) -> None:
    message = refuse(merge(paper, change))
    assert len(message.splitlines()) <= 6 and len(message) < 600, message
    assert "properties" not in message and "$defs" not in message


def test_a_catalogue_refusal_names_the_file_that_set_the_value(tmp_path: Path) -> None:
    bad = overlay(tmp_path, "rows: [none, mlni]\n")
    with pytest.raises(ConfigError, match=rf"^config rows: unknown row 'mlni' \(in {bad}\)\n"):
        load_config([CONFIG, bad])
    # a value that config.yaml set and the overlay left alone is config.yaml's
    with pytest.raises(ConfigError, match=rf"warmup: 2 is out of range.* \(in {CONFIG}\)"):
        resolve_config(merge(yaml.safe_load(CONFIG.read_text()), {"training": {"defaults": {"warmup": 2}}}),
                       files=[CONFIG, overlay(tmp_path, "seeds: [1]\n", "other.yaml")])


def test_a_refused_override_is_named_as_such() -> None:
    with pytest.raises(ConfigError, match=r"^config seeds: 'one' is a string, not a list \(in the overrides\)$"):
        load_config([CONFIG], overrides={"seeds": "one"})


def test_unreadable_files_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a mapping of keys"):
        load_config([overlay(tmp_path, "- a list\n")])
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_config([overlay(tmp_path, "rows: [none\nseeds: 1\n")])
    with pytest.raises(ConfigError, match="No such file"):
        load_config([tmp_path / "absent.yaml"])


# --- robustness and alignment: refused when the DAG is built -------------------------------------------


def robust(**section: object) -> dict:
    return {"robustness": section}


@pytest.mark.parametrize(("overrides", "first", "more"), [
    (robust(conditions=["char_noize"]), "config robustness.conditions[0]: 'char_noize' is not allowed",
     ["allowed: char_noise, case_punct, word_order, code_switch, adversarial", "did you mean `char_noise`?"]),
    (robust(code_switch={"rate": 1.5}), "config robustness.code_switch.rate: 1.5 is out of range: must be <= 1", []),
    (robust(word_order={"rate": -0.1}), "config robustness.word_order.rate: -0.1 is out of range: must be >= 0", []),
    (robust(conditions=["word_order"], targets=["udpos"]),
     "config robustness.conditions: word_order serves none of the targets it would perturb (udpos: tagging)",
     ["allowed: classification, pair_classification, qa, retrieval"]),
    (robust(conditions=["adversarial"], targets=["udpos", "tatoeba"]),
     "config robustness.conditions: adversarial serves none of the targets it would perturb (udpos: tagging, "
     "tatoeba: retrieval)", ["allowed: classification, pair_classification"]),
    (robust(targets=["panx"]), "config robustness.targets: target 'panx' is not in this grid",
     ["allowed: xnli, pawsx, udpos, tatoeba"]),
    (robust(code_switch={"languages": ["hi"]}),
     "config robustness.code_switch: no lexicon en-hi.txt in results/demo/hub/lexicons (sources.lexicons) for "
     "xnli's en", ["the demo's world writes every pair of its languages; en has: en-de en-fr en-ru en-zh"]),
    ({**robust(), "sources": {"lexicons": None}},
     "config robustness.conditions: code_switch needs bilingual lexicons: set `sources.lexicons`", []),
    ({"targets": ["udpos", "pawsx"], "alignment": {}}, "config alignment: no target of this grid has parallel data",
     ["allowed: xnli, xquad, mlqa, bucc, tatoeba"]),
])
def test_robustness_and_alignment_refusals(overrides: dict, first: str, more: list[str]) -> None:
    grid = {"targets": ["xnli", "pawsx", "udpos", "tatoeba"]}
    with pytest.raises(ConfigError) as err:
        load_config([CONFIG, DEMO], overrides={**grid, **overrides})
    lines = str(err.value).splitlines()
    assert lines[0].startswith(first) and lines[0].endswith("(in the overrides)") and len(lines) <= 4
    assert all(any(m in line for line in lines) for m in more), lines


def test_lexicon_pairs_of_a_folder_are_checked_on_disk(tmp_path: Path) -> None:
    (tmp_path / "de-en.txt").write_text("haus house\n")
    overrides = {"targets": ["xnli"], "languages": {"xnli": ["en", "de"]}, "sources": {"lexicons": str(tmp_path)},
                 "robustness": {"conditions": ["code_switch"]}}
    with pytest.raises(ConfigError, match=r"no lexicon en-de.txt in .* for xnli's en .*\n.*the folder has 1 pair"):
        load_config([CONFIG], overrides=overrides)
    (tmp_path / "en-de.txt").write_text("house haus\n")
    assert load_config([CONFIG], overrides=overrides)["robustness"] == {"conditions": ["code_switch"]}


# --- merging ---------------------------------------------------------------------------------------


def test_merge_is_snakemakes_configfile_merge() -> None:
    base = {"rows": ["none", "mnli"], "training": {"defaults": {"lr": 1, "epochs": 2}, "tasks": {"a": {"x": 1}}},
            "variants": None, "seeds": [1]}
    update = {"rows": ["none"], "training": {"defaults": {"lr": 3}, "tasks": {"b": {}}}, "variants": {"v": {}},
              "seeds": None}
    kept = copy.deepcopy((base, update))
    merged = merge(base, update)
    assert merged == {"rows": ["none"], "training": {"defaults": {"lr": 3, "epochs": 2}, "tasks": {"a": {"x": 1},
                      "b": {}}}, "variants": {"v": {}}, "seeds": None}
    assert (base, update) == kept  # neither argument changed
    snakemake = copy.deepcopy(base)
    update_config(snakemake, update)
    assert merged == snakemake


def test_load_config_merges_files_then_overrides(tmp_path: Path) -> None:
    mine = overlay(tmp_path, "rows: [none, mnli]\ntraining: {defaults: {lr: 2.0e-5}}\n")
    config = load_config([CONFIG, mine], overrides={"seeds": [1, 2]})
    assert config["rows"] == ["none", "mnli"] and config["seeds"] == [1, 2]
    assert config["training"]["defaults"]["lr"] == 2e-5 and config["training"]["defaults"]["batch_size"] == 4


def test_resolve_config_returns_a_copy(paper: dict) -> None:
    kept = copy.deepcopy(paper)
    resolved = resolve_config(paper)
    assert resolved == paper == kept and resolved is not paper
    resolved["training"]["defaults"]["lr"] = 1
    assert paper == kept


# --- path placeholders -----------------------------------------------------------------------------


def _paths(config: dict) -> list[str]:
    """Every path of the demo config: its sources and its variants' corpus and translations."""
    sources = [v for k, v in config["sources"].items() if k != "revisions" and v]
    variants = [v["mlm"]["corpus"] for v in config["variants"].values() if v.get("mlm")]
    variants += [v["translations"]["source"] for v in config["variants"].values() if v.get("translations")]
    return sources + variants


def test_demo_paths_follow_the_results_folder() -> None:
    config = load_config([CONFIG, DEMO])
    world = str(Layout(Path("results")).demo_world)
    assert config["sources"]["hub_mirror"] == world
    assert config["sources"]["ccg"] == f"{world}/local/ccg"
    assert config["sources"]["udpos"] == f"{world}/local/{UD_FOLDER}"
    assert config["variants"]["mnli_mlm"]["mlm"]["corpus"] == f"{world}/corpus"
    moved = load_config([CONFIG, DEMO], overrides={"results": "elsewhere"})
    assert len(_paths(moved)) == 6
    assert all(path.startswith("elsewhere/") for path in _paths(moved)), _paths(moved)


def test_results_placeholder_and_unknown_placeholders(paper: dict) -> None:
    config = resolve_config({**paper, "results": "runs/{results}", "sources": {"ccg": "{results}/ccg"}})
    assert config["results"] == "runs/{results}"  # never expanded in `results` itself
    assert config["sources"]["ccg"] == "runs/{results}/ccg"
    message = refuse({**paper, "sources": {"ccg": "{demos}/ccg"}})
    assert message.startswith("config sources.ccg: unknown placeholder `{demos}`")
    assert "did you mean `{demo}`?" in message


# --- the schema's settings from the dataclasses ------------------------------------------------------


def test_schema_defs_are_filled_from_the_settings_dataclasses() -> None:
    defs = config_schema()["$defs"]
    for name, cls in (("hparams", HParams), ("retrieval_settings", RetrievalSettings), ("sampling", Sampling),
                      ("mlm", MLMSettings), ("job_size", JobSize), ("job_size_override", JobSize)):
        assert list(defs[name]["properties"]) == [f.name for f in fields(cls)], name
    assert defs["hparams"]["properties"]["lr"] == {"type": "number", "exclusiveMinimum": 0, "default": 1e-5,
                                                   "description": HParams.__dataclass_fields__["lr"].metadata[
                                                       "description"]}
    assert defs["job_size"]["required"] == ["gpu", "cpus_per_gpu", "mem_mb", "runtime"]
    assert "required" not in defs["job_size_override"] and defs["mlm"]["required"] == ["corpus"]
    # the YAML holds placeholders only: the dataclasses are the one declaration of these keys
    raw = yaml.safe_load(SCHEMA_FILE.read_text())["$defs"]
    for name in ("hparams", "retrieval_settings", "sampling", "mlm", "job_size", "job_size_override"):
        assert list(raw[name]) == ["description"] and "xstilts.settings." in raw[name]["description"]


def test_dataclass_schema_types() -> None:
    @dataclass
    class Example:
        name: str = field(metadata={"description": "a name"})
        rate: float = field(default=0.5, metadata={"exclusiveMinimum": 0, "maximum": 1})
        count: int = 3
        flag: bool = False
        mode: Literal["a", "b"] = "a"
        layer: int | None = None
        pick: Literal["x", "y"] | None = None

    assert dataclass_schema(Example) == {
        "type": "object", "additionalProperties": False, "required": ["name"], "properties": {
            "name": {"type": "string", "description": "a name"},
            "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5},
            "count": {"type": "integer", "default": 3},
            "flag": {"type": "boolean", "default": False},
            "mode": {"enum": ["a", "b"], "default": "a"},
            "layer": {"type": ["integer", "null"], "default": None},
            "pick": {"enum": ["x", "y", None], "default": None}}}
    assert "required" not in dataclass_schema(Example, partial=True)


def test_settings_and_config_import_no_torch() -> None:
    code = ("import sys, xstilts.config; xstilts.config.load_config(['config.yaml']); "
            "print(sorted({'torch', 'transformers', 'numpy'} & {m.split('.')[0] for m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- every entry point loads the config this way ----------------------------------------------------


def test_status_and_submit_refuse_a_bad_config_in_a_few_lines(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert not hasattr(status, "load_config") and not hasattr(submit, "load_config")
    bad = overlay(tmp_path, "trainig: {}\n")
    for command in (["status"], ["submit"], ["rerun", "none", "xnli"], ["evaluate", "none", "xnli"]):
        assert main([*command, "--configfile", str(CONFIG), str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"xstilts: error: config: unknown key `trainig` (in {bad})")
        assert "did you mean `training`?" in err and len(err.splitlines()) <= 6


def test_snakemake_refuses_a_misspelt_key_in_a_few_lines(tmp_path: Path) -> None:
    bad = overlay(tmp_path, "trainig: {}\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config.yaml", str(bad)],
                         cwd=ROOT, capture_output=True, text=True)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"config: unknown key `trainig` (in {bad})" in output and "did you mean `training`?" in output
    assert len(output.splitlines()) <= 12, output
    assert "Job stats" not in run.stdout


def test_an_empty_mapping_over_null_sets_the_defaults_where_snakemake_would_keep_null(tmp_path: Path) -> None:
    snakemake = {"alignment": None}
    update_config(snakemake, {"alignment": {}})
    assert snakemake == {"alignment": None} and merge({"alignment": None}, {"alignment": {}}) == {"alignment": {}}
    probes = overlay(tmp_path, f"results: {tmp_path / 'out'}\nrows: [none, mnli]\ntargets: [tatoeba]\n"
                               "alignment: {}\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config.yaml", str(probes)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"^align\s+2$", run.stdout, re.M), run.stdout[-2000:]  # one probe job per row
