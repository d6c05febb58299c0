"""Marks (partial language sets †, data not XTREME's ‡) and the data table, computed from scores.parquet
files written as the evaluation writes them, in every table, the report and the claims table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.grids import overlay
from xstilts.aggregate import compute_tables, write_tables
from xstilts.catalogue import TARGETS
from xstilts.cli import main
from xstilts.comparability import NOT_COMPARABLE, PARTIAL, data_table, marks
from xstilts.layout import Layout
from xstilts.results_io import manifest_row, read_scores, write_manifest, write_scores

XNLI = list(TARGETS["xnli"].languages)
HUB = [{"hub": "google/xtreme", "revision": "a" * 40}]
GREEK = "the hub's udpos.Greek mixes in Ancient Greek"


def _write(results: Path, row: str, target: str, values: dict[str, float], *, not_comparable: dict | None = None,
           origins: list | None = None, seed: int = 1) -> None:
    split = TARGETS[target].report_split
    metric = {"accuracy": "accuracy"}.get(TARGETS[target].metric, "f1")
    rows = [{"language": lang, "split": split, "metric": metric, "value": v, "n_examples": 10}
            for lang, v in values.items()]
    facts = {"seed": seed, "data": {f"eval/{target}": {"origins": origins or HUB,
                                                       "not_comparable": not_comparable or {}}}}
    write_scores(rows, Layout(results).scores(row, target, seed), model="m", steps=1, wall_seconds=1.0, device="cpu",
                 run_facts=facts)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """xnli on all 15 languages (no mark), udpos on en and el (partial; el from the hub: not comparable),
    bucc on de and fr from the hub (partial, not comparable)."""
    results = tmp_path / "results"
    for row, shift in (("none", 0.0), ("mnli", 5.0)):
        _write(results, row, "xnli", {lang: 60 + shift for lang in XNLI})
        _write(results, row, "udpos", {"en": 90 + shift, "el": 70 + shift}, not_comparable={"el": GREEK})
        _write(results, row, "bucc", {"de": 50 + shift, "fr": 40 + shift},
               not_comparable={lang: "gold pairs only" for lang in ("de", "fr")})
    return results


def test_marks_come_from_the_scores_languages_and_run_facts(results: Path) -> None:
    grid = marks(read_scores(results / "scores"), ["xnli", "udpos", "bucc"])
    assert grid.of("xnli") == "" and grid.of("udpos") == PARTIAL + NOT_COMPARABLE
    assert grid.left_out["bucc"] == ("ru", "zh") and "xnli" not in grid.left_out
    assert grid.not_comparable == {"udpos": {"el": GREEK}, "bucc": {"de": "gold pairs only", "fr": "gold pairs only"}}
    assert grid.of("classification") == PARTIAL  # pawsx is not in the grid
    assert grid.of("xtreme") == PARTIAL + NOT_COMPARABLE  # its parts are marked
    table = grid.table()
    assert ("udpos", "el", NOT_COMPARABLE, GREEK) in set(table.itertuples(index=False, name=None))
    assert set(table["target"]) == {"udpos", "bucc", "classification", "tagging", "retrieval", "xtreme"}


def test_every_language_of_xtreme_and_its_data_leave_a_target_unmarked(tmp_path: Path) -> None:
    _write(tmp_path, "none", "xnli", {lang: 50.0 for lang in XNLI})
    grid = marks(read_scores(tmp_path / "scores"), ["xnli"])
    assert grid.of("xnli") == "" and grid.table().query("target == 'xnli'").empty
    assert grid.of("xtreme") == PARTIAL  # eight of XTREME's nine targets are not in this grid


def test_tables_mark_their_labels_and_stay_numeric(results: Path) -> None:
    out = results / "tables"
    write_tables(compute_tables(read_scores(results / "scores"), ["none", "mnli"], ["xnli", "udpos", "bucc"]), out)
    transfer_md = (out / "transfer.md").read_text()
    assert f"udpos{PARTIAL}{NOT_COMPARABLE}" in transfer_md and f"bucc{PARTIAL}{NOT_COMPARABLE}" in transfer_md
    assert f"xtreme{PARTIAL}{NOT_COMPARABLE}" in transfer_md and " xnli |" in transfer_md
    assert f"- bucc{PARTIAL}: partial language set, 2 of XTREME's 4 languages (left out: ru zh)." in transfer_md
    assert f"el: {GREEK}" in transfer_md and "`sources.udpos`" in transfer_md
    for name in ("delta.md", "best.md", "transfer_std.md", "transfer.tex", "best.tex"):
        assert f"udpos{PARTIAL}{NOT_COMPARABLE}" in (out / name).read_text(), name
    per_language = (out / "per_language" / "udpos.md").read_text()
    assert f"el{NOT_COMPARABLE}" in per_language and f"avg{PARTIAL}{NOT_COMPARABLE}" in per_language
    assert " en |" in per_language  # en is as XTREME's: unmarked
    assert "\\par{\\footnotesize" in (out / "transfer.tex").read_text()
    transfer = pd.read_parquet(out / "transfer.parquet")  # numeric, labels unmarked
    assert list(transfer.columns)[:3] == ["xnli", "udpos", "bucc"] and transfer.dtypes.eq("float64").all()
    assert pd.read_csv(out / "per_language" / "udpos.csv", index_col=0).columns.tolist() == ["el", "en", "avg"]


def test_report_readme_claims_and_data_say_it(results: Path) -> None:
    ckpt = results / "checkpoints" / "target" / "mnli" / "udpos" / "seed=1"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    facts = {"data": {"train/udpos": {"origins": [{"folder": "/ud", "files": 2, "sha256": "b" * 64}]}}}
    write_manifest([manifest_row(ckpt, phase="target", task="udpos", step=1, dev_metric=1.0, run_facts=facts)],
                   ckpt / "manifest.parquet")
    files = overlay(results.parent / "grid.yaml", results, ["none", "mnli"], ["xnli", "udpos", "bucc", "tatoeba"])
    assert main(["aggregate", "--configfile", *files]) == 0
    readme = (results / "README.md").read_text()
    assert "## Marks" in readme and f"- bucc{PARTIAL}{NOT_COMPARABLE}" not in readme  # notes, one per mark
    assert f"- bucc{PARTIAL}: partial language set" in readme and f"- udpos{NOT_COMPARABLE}: not comparable" in readme
    assert "## Data" in readme and "eval/udpos" in readme and "a" * 40 in readme and "train/udpos" in readme
    # the refresh command keeps the trainings' data: it is the same job, from the config the job wrote
    refresh = re.search(r"^    xstilts (aggregate --configfile \S+)$", readme, flags=re.M).group(1).split()
    (results / "checkpoints" / "manifest.parquet").unlink()
    (results / "README.md").unlink()
    assert main(refresh) == 0
    assert "train/udpos" in (results / "README.md").read_text()
    assert (results / "checkpoints" / "manifest.parquet").is_file()
    claims = pd.read_csv(results / "tables" / "claims.csv", index_col=0)
    assert claims.loc["Large gains on BUCC and Tatoeba", "marks"] == f"bucc{PARTIAL}{NOT_COMPARABLE}"
    assert claims.loc["No XNLI gain", "marks"] != claims.loc["No XNLI gain", "marks"]  # NaN: xnli is unmarked
    marks_csv = pd.read_csv(results / "tables" / "marks.csv")
    assert {"udpos", "bucc"} <= set(marks_csv["target"])
    html = (results / "report.html").read_text()
    assert f"udpos{PARTIAL}{NOT_COMPARABLE}</th>" in html and f"el{NOT_COMPARABLE}</th>" in html
    assert '<ul class="note"><li>udpos' in html and 'id="data"' in html and "folder /ud (2 files" in html
    data = pd.read_parquet(results / "tables" / "data.parquet")
    assert data.loc["eval/udpos", "used by"] == "mnli none" and data.loc["train/udpos", "used by"] == "mnli"


def test_the_data_table_shows_cells_that_read_different_data(tmp_path: Path) -> None:
    _write(tmp_path, "none", "xnli", {"en": 50.0})
    _write(tmp_path, "mnli", "xnli", {"en": 60.0}, origins=[{"hub": "google/xtreme", "revision": "d" * 40}])
    table = data_table(read_scores(tmp_path / "scores"))
    assert table[["data", "revision or sha256", "used by"]].values.tolist() == [
        ["eval/xnli", "a" * 40, "none"], ["eval/xnli", "d" * 40, "mnli"]]
    old = read_scores(tmp_path / "scores").assign(run_facts=json.dumps({"seed": 1}))  # before provenance
    assert data_table(old)["source"].unique().tolist() == ["not recorded"]
