"""aggregate: hand-computed transfer, delta, best and per-language tables; the files written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xstilts.aggregate import (
    DELTA_NOTE,
    INTERVAL_NOTE,
    best_table,
    cell_scores,
    chance_levels,
    compute_tables,
    delta_table,
    noise_table,
    per_language_table,
    seed_count_table,
    significant_table,
    transfer_intervals,
    transfer_std_table,
    transfer_table,
    write_tables,
)
from xstilts.layout import Layout
from xstilts.results_io import read_scores, write_scores
from xstilts.settings import SignificanceSettings
from xstilts.significance import target_values

ROWS = ["none", "mnli", "anli", "multitask"]
TARGETS = ["xnli", "pawsx", "udpos", "xquad", "bucc"]
COLUMNS = [*TARGETS, "classification", "tagging", "qa", "retrieval", "xtreme"]
SQRT2 = math.sqrt(2)


def _cell(intermediate: str, target: str, seed: int, split: str, metric: str, **values: float) -> list:
    return [(intermediate, target, seed, lang, split, metric, v) for lang, v in values.items()]


def _qa(intermediate: str, seed: int, f1: dict[str, float], em: dict[str, float]) -> list:
    return _cell(intermediate, "xquad", seed, "validation", "f1", **f1) + _cell(
        intermediate, "xquad", seed, "validation", "exact_match", **em
    )


# none, seed 0:
#   xnli  test: en 80, de 70 -> 75 (the validation rows, 10 each, are not the report split)
#   pawsx test: en 90, de 80 -> 85;  udpos test f1: en 95, de 85 -> 90
#   xquad validation (F1+EM)/2: en (80+70)/2 = 75, de (60+40)/2 = 50 -> 62.5
#   bucc  test f1: de 60, fr 70 -> 65 (validation de 0 ignored)
#   groups: classification (75+85)/2 = 80, tagging 90, qa 62.5, retrieval 65
#   xtreme: (75+85+90+62.5+65)/5 = 377.5/5 = 75.5
# mnli, seed 0: xnli (84+76)/2 = 80, pawsx (90+84)/2 = 87, udpos (95+85)/2 = 90,
#   xquad en (84+76)/2 = 80, de (70+50)/2 = 60 -> 70, bucc (80+70)/2 = 75; xtreme 402/5 = 80.4
# mnli, seed 1: xnli (86+78)/2 = 82, pawsx (92+86)/2 = 89, udpos (96+88)/2 = 92,
#   xquad en (86+78)/2 = 82, de (72+52)/2 = 62 -> 72, bucc (84+76)/2 = 80; xtreme 415/5 = 83.0
# mnli, mean over seeds: xnli 81, pawsx 88, udpos 91, xquad 71, bucc 77.5
#   classification (81+88)/2 = 84.5, tagging 91, qa 71, retrieval 77.5, xtreme 408.5/5 = 81.7
#   std (ddof=1) of two values a, b = |a-b|/sqrt(2): xnli, pawsx, udpos, xquad 2/sqrt2 = sqrt2,
#   bucc 5/sqrt2, classification (83.5 vs 85.5) sqrt2, retrieval 5/sqrt2, xtreme 2.6/sqrt2
# anli, seed 0: xnli (70+60)/2 = 65, pawsx (96+94)/2 = 95, nothing else
#   classification (65+95)/2 = 80; tagging, qa, retrieval, xtreme NaN (targets missing)
# multitask: no cell at all -> an all-NaN row
RECORDS = (
    _cell("none", "xnli", 0, "test", "accuracy", en=80, de=70)
    + _cell("none", "xnli", 0, "validation", "accuracy", en=10, de=10)
    + _cell("none", "pawsx", 0, "test", "accuracy", en=90, de=80)
    + _cell("none", "udpos", 0, "test", "f1", en=95, de=85)
    + _qa("none", 0, {"en": 80, "de": 60}, {"en": 70, "de": 40})
    + _cell("none", "bucc", 0, "test", "f1", de=60, fr=70)
    + _cell("none", "bucc", 0, "validation", "f1", de=0)
    + _cell("mnli", "xnli", 0, "test", "accuracy", en=84, de=76)
    + _cell("mnli", "pawsx", 0, "test", "accuracy", en=90, de=84)
    + _cell("mnli", "udpos", 0, "test", "f1", en=95, de=85)
    + _qa("mnli", 0, {"en": 84, "de": 70}, {"en": 76, "de": 50})
    + _cell("mnli", "bucc", 0, "test", "f1", de=80, fr=70)
    + _cell("mnli", "xnli", 1, "test", "accuracy", en=86, de=78)
    + _cell("mnli", "pawsx", 1, "test", "accuracy", en=92, de=86)
    + _cell("mnli", "udpos", 1, "test", "f1", en=96, de=88)
    + _qa("mnli", 1, {"en": 86, "de": 72}, {"en": 78, "de": 52})
    + _cell("mnli", "bucc", 1, "test", "f1", de=84, fr=76)
    + _cell("anli", "xnli", 0, "test", "accuracy", en=70, de=60)
    + _cell("anli", "pawsx", 0, "test", "accuracy", en=96, de=94)
)


def _frame(records: list) -> pd.DataFrame:
    cols = ["intermediate", "target", "seed", "language", "split", "metric", "value"]
    return pd.DataFrame(records, columns=cols)


@pytest.fixture
def scores() -> pd.DataFrame:
    return _frame(RECORDS)


def _expected(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index(ROWS, name="intermediate"), columns=COLUMNS, dtype="float64")


NAN = np.nan
EXPECTED_TRANSFER = _expected(
    {
        "xnli": [75, 81, 65, NAN],
        "pawsx": [85, 88, 95, NAN],
        "udpos": [90, 91, NAN, NAN],
        "xquad": [62.5, 71, NAN, NAN],
        "bucc": [65, 77.5, NAN, NAN],
        "classification": [80, 84.5, 80, NAN],
        "tagging": [90, 91, NAN, NAN],
        "qa": [62.5, 71, NAN, NAN],
        "retrieval": [65, 77.5, NAN, NAN],
        "xtreme": [75.5, 81.7, NAN, NAN],
    }
)


def test_cell_scores_qa_mean_and_report_split(scores: pd.DataFrame) -> None:
    cells = cell_scores(scores).set_index(["intermediate", "target", "seed", "language"])["value"]
    assert cells[("none", "xquad", 0, "en")] == 75.0  # (80 + 70) / 2
    assert cells[("none", "xquad", 0, "de")] == 50.0  # (60 + 40) / 2
    assert cells[("none", "xnli", 0, "en")] == 80.0  # test, not validation (10)
    assert cells[("none", "bucc", 0, "de")] == 60.0  # test, not validation (0)
    assert len(cells) == len(cells.index.unique())


def test_cell_scores_qa_missing_em_is_nan() -> None:
    records = _cell("mnli", "xquad", 0, "validation", "f1", en=80, de=60) + _cell(
        "mnli", "xquad", 0, "validation", "exact_match", en=70
    )
    cells = cell_scores(_frame(records)).set_index("language")["value"]
    assert cells["en"] == 75.0 and math.isnan(cells["de"])
    # A language without its headline makes the whole target NaN rather than a biased mean.
    assert math.isnan(transfer_table(_frame(records), ["mnli"], ["xquad"]).loc["mnli", "xquad"])


def test_report_split_only_on_the_other_split_is_missing() -> None:
    records = _cell("none", "xnli", 0, "validation", "accuracy", en=50)
    table = transfer_table(_frame(records), ["none"], ["xnli"])
    assert math.isnan(table.loc["none", "xnli"])


def test_transfer_table(scores: pd.DataFrame) -> None:
    table = transfer_table(scores, ROWS, TARGETS)
    pd.testing.assert_frame_equal(table, EXPECTED_TRANSFER)


def test_transfer_table_subset_of_targets_and_groups(scores: pd.DataFrame) -> None:
    table = transfer_table(scores, ["mnli", "none"], ["xquad", "xnli"])
    assert list(table.index) == ["mnli", "none"]
    assert list(table.columns) == ["xquad", "xnli", "classification", "qa", "xtreme"]
    # mnli: xtreme (71 + 81) / 2 = 76; none: (62.5 + 75) / 2 = 68.75
    assert table["xtreme"].tolist() == [76.0, 68.75]


def test_transfer_std_table(scores: pd.DataFrame) -> None:
    std = transfer_std_table(scores, ROWS, TARGETS)
    assert list(std.columns) == COLUMNS and list(std.index) == ROWS
    mnli = std.loc["mnli"]
    for column in ("xnli", "pawsx", "udpos", "xquad", "classification", "tagging", "qa"):
        assert mnli[column] == pytest.approx(SQRT2)
    assert mnli["bucc"] == pytest.approx(5 / SQRT2)
    assert mnli["retrieval"] == pytest.approx(5 / SQRT2)
    assert mnli["xtreme"] == pytest.approx(2.6 / SQRT2)  # per-seed XTREME 80.4 and 83.0
    assert std.loc[["none", "anli", "multitask"]].isna().all().all()  # one seed or none: no spread


def test_delta_table(scores: pd.DataFrame) -> None:
    delta = delta_table(transfer_table(scores, ROWS, TARGETS))
    assert (delta.loc["none"] == 0).all()
    # mnli - none: 81-75, 88-85, 91-90, 71-62.5, 77.5-65; groups 84.5-80, 91-90, 71-62.5, 77.5-65;
    # xtreme 81.7-75.5
    expected = [6, 3, 1, 8.5, 12.5, 4.5, 1, 8.5, 12.5, 6.2]
    assert delta.loc["mnli"].tolist() == pytest.approx(expected)
    assert delta.loc["anli", "xnli"] == -10.0 and delta.loc["anli", "pawsx"] == 10.0  # 65-75, 95-85
    assert math.isnan(delta.loc["anli", "xtreme"]) and delta.loc["multitask"].isna().all()
    assert delta_table(transfer_table(scores, ["mnli"], TARGETS)).isna().all().all()  # no baseline row


def test_best_table(scores: pd.DataFrame) -> None:
    best = best_table(transfer_table(scores, ROWS, TARGETS))
    assert list(best.index) == COLUMNS and list(best.columns) == ["best", "score", "baseline", "delta"]
    assert best.loc["xnli"].tolist() == ["mnli", 81.0, 75.0, 6.0]
    assert best.loc["pawsx"].tolist() == ["anli", 95.0, 85.0, 10.0]  # anli 95 beats mnli 88
    assert best.loc["xtreme", "best"] == "mnli"
    assert best.loc["xtreme", "delta"] == pytest.approx(6.2)
    empty = best_table(transfer_table(scores, ["none", "multitask"], TARGETS))
    assert empty["best"].isna().all() and empty["delta"].isna().all()  # baseline is never "best"


def test_per_language_table(scores: pd.DataFrame) -> None:
    table = per_language_table(scores, "xnli", ROWS)
    assert list(table.columns) == ["de", "en", "avg"]  # catalogue order of XNLI languages
    # mnli: de (76+78)/2 = 77, en (84+86)/2 = 85, avg 81 (= transfer table)
    assert table.loc["mnli"].tolist() == [77.0, 85.0, 81.0]
    assert table.loc["none"].tolist() == [70.0, 80.0, 75.0]
    assert table.loc["multitask"].isna().all()
    pd.testing.assert_series_equal(table["avg"], transfer_table(scores, ROWS, TARGETS)["xnli"], check_names=False)


def test_empty_scores_give_nan_tables(tmp_path: Path) -> None:
    empty = read_scores(tmp_path / "scores")
    table = transfer_table(empty, ROWS, TARGETS)
    assert list(table.columns) == COLUMNS and table.isna().all().all()
    paths = write_tables(compute_tables(empty, ROWS, TARGETS), tmp_path / "tables")
    assert all(p.is_file() for p in paths)


def test_unknown_target_is_refused(scores: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nope"):
        transfer_table(scores, ROWS, ["xnli", "nope"])


def test_write_tables_from_the_results_tree(tmp_path: Path) -> None:
    results = tmp_path / "results"
    frame = _frame(RECORDS)
    for (intermediate, target, seed), cell in frame.groupby(["intermediate", "target", "seed"]):
        rows = cell[["language", "split", "metric", "value"]].assign(n_examples=10).to_dict("records")
        path = Layout(results).scores(intermediate, target, int(seed))
        write_scores(rows, path, model="m", steps=1, wall_seconds=1.0, device="cpu", run_facts={})
    scores = read_scores(results / "scores")
    # pandas' own reading of the tree (categorical partition columns) gives the same table.
    direct = transfer_table(pd.read_parquet(results / "scores"), ROWS, TARGETS)
    pd.testing.assert_frame_equal(direct, EXPECTED_TRANSFER)
    out = results / "tables"
    paths = write_tables(compute_tables(scores, ROWS, TARGETS), out)

    stems = ["transfer", "transfer_std", "delta", "best"] + [f"per_language/{t}" for t in TARGETS]
    expected = {out / f"{stem}.{ext}" for stem in stems for ext in ("parquet", "csv", "md", "tex")}
    expected |= {out / "heatmap_transfer.png", out / "heatmap_delta.png"}
    assert set(paths) == expected and len(paths) == len(expected)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert not [p for p in out.rglob(".*")]  # no temporaries left behind

    pd.testing.assert_frame_equal(pd.read_parquet(out / "transfer.parquet"), EXPECTED_TRANSFER)
    markdown = (out / "transfer.md").read_text()
    for row in ROWS:
        assert row in markdown
    assert "81.7" in markdown and "75.5" in markdown  # xtreme, 1 decimal
    assert "12.5" in (out / "delta.md").read_text()
    latex = (out / "transfer.tex").read_text()
    assert "\\begin{tabular}" in latex and "81.7" in latex and "84.5" in latex
    assert "81.70" not in latex
    csv = pd.read_csv(out / "per_language" / "xquad.csv", index_col=0)
    assert csv.loc["mnli", "avg"] == 71.0 and csv.loc["none", "de"] == 50.0
    assert (out / "heatmap_delta.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_noise_and_its_markdown(scores: pd.DataFrame, tmp_path: Path) -> None:
    transfer, std = transfer_table(scores, ROWS, TARGETS), transfer_std_table(scores, ROWS, TARGETS)
    counts = seed_count_table(scores, ROWS, TARGETS)
    assert counts.loc["mnli", "xnli"] == 2 and counts.loc["none", "xtreme"] == 1 and counts.loc["anli", "udpos"] == 0
    noise = noise_table(std, counts)
    # mnli vs none: sqrt(((2 - 1) s_mnli^2 + (1 - 1) s_none^2) / (2 + 1 - 2)) = s_mnli
    assert noise.loc["mnli", "xnli"] == pytest.approx(SQRT2) and noise.loc["mnli", "bucc"] == pytest.approx(5 / SQRT2)
    assert noise.loc[["none", "anli"], "xnli"].isna().all()  # one seed on each side: unknown
    significant = significant_table(delta_table(transfer), noise)
    # |delta| > 2 x noise: xnli 6 > 2.83, pawsx 3 > 2.83, udpos 1 < 2.83, xquad 8.5 > 2.83, bucc 12.5 > 7.07,
    # xtreme 6.2 > 2 x 2.6 / sqrt(2) = 3.68
    columns = ["xnli", "pawsx", "udpos", "xquad", "bucc", "xtreme"]
    assert significant.loc["mnli", columns].tolist() == [True, True, False, True, True, True]
    assert not significant.loc[["none", "anli", "multitask"]].any().any()
    # Two seeds or more on both sides: sqrt(((3 - 1) 3^2 + (2 - 1) 1^2) / (3 + 2 - 2)) = sqrt(19 / 3)
    both = noise_table(pd.DataFrame({"x": [1.0, 3.0]}, index=["none", "r"]),
                       pd.DataFrame({"x": [2.0, 3.0]}, index=["none", "r"]))
    assert both.loc["r", "x"] == pytest.approx(math.sqrt(19 / 3))
    write_tables(compute_tables(scores, ROWS, TARGETS), tmp_path)
    transfer_md, delta_md = (tmp_path / "transfer.md").read_text(), (tmp_path / "delta.md").read_text()
    assert "81.0 ± 1.4" in transfer_md and "77.5 ± 3.5" in transfer_md  # mnli xnli, bucc
    assert "| 75.0 |" in transfer_md.replace("  ", "")  # none: one seed, no spread
    assert "+6.0* |" in delta_md and "+1.0 |" in delta_md and "-10.0 |" in delta_md  # udpos, anli: unmarked
    assert DELTA_NOTE in delta_md


def test_chance_levels_and_their_line_under_the_transfer_table(tmp_path: Path) -> None:
    rows = _frame(_cell("none", "tatoeba", 1, "validation", "accuracy", de=30, fr=40)
                  + _cell("none", "xnli", 1, "test", "accuracy", en=50))
    rows["n_examples"] = [100, 50, 10]  # Tatoeba: one in 100 and one in 50 candidates -> (1 + 2) / 2
    levels = chance_levels(rows, ["xnli", "pawsx", "udpos", "tatoeba", "bucc"])
    assert levels == pytest.approx({"xnli": 100 / 3, "pawsx": 50.0, "tatoeba": 1.5})  # F1 targets: none
    write_tables(compute_tables(rows, ["none"], ["xnli", "tatoeba"]), tmp_path)
    line = "Chance (uniform guessing, averaged over languages): xnli 33.3, tatoeba 1.5."
    assert line in (tmp_path / "transfer.md").read_text()


def test_best_table_never_picks_a_control_row() -> None:
    transfer = pd.DataFrame({"xnli": [50.0, 90.0, 60.0]}, index=pd.Index(["none", "untrained", "mnli"]))
    best = best_table(transfer)
    assert best.loc["xnli", "best"] == "mnli" and best.loc["xnli", "delta"] == 10.0


def _predictions(target: str, rows: dict[tuple[str, int], int], n: int = 40) -> pd.DataFrame:
    """Per-example scores of each (row, seed): right on its first `right` examples of `de`."""
    return pd.DataFrame([{"language": "de", "split": "test", "condition": "clean", "id": str(i), "prediction": "",
                          "gold": "", "score": 100.0 * (i < right), "intermediate": row, "seed": seed}
                         for (row, seed), right in rows.items() for i in range(n)])


def test_transfer_deltas_get_paired_bootstrap_intervals_and_a_mark_where_they_hold_0(tmp_path: Path) -> None:
    values = {"xnli": target_values("xnli", _predictions("xnli", {("none", 1): 20, ("mnli", 1): 36, ("anli", 1): 21,
                                                                   ("none", 2): 20, ("mnli", 2): 34,
                                                                   ("anli", 2): 20}), 500, 0),
              "pawsx": target_values("pawsx", _predictions("pawsx", {("none", 1): 30, ("mnli", 1): 30,
                                                                     ("none", 2): 30, ("mnli", 2): 31}), 500, 0)}
    intervals = transfer_intervals(values, ["none", "mnli", "anli"], ["xnli", "pawsx"], [1, 2],
                                   SignificanceSettings()).set_index(["intermediate", "column"])
    # mnli on xnli: +40 and +35 points with seeds 1 and 2 -> +37.5, far from 0; anli: +2.5 and 0 -> holds 0
    assert intervals.loc[("mnli", "xnli"), "delta"] == pytest.approx(37.5)
    assert not intervals.loc[("mnli", "xnli"), "contains_zero"] and intervals.loc[("anli", "xnli"), "contains_zero"]
    assert intervals.loc[("mnli", "classification"), "delta"] == pytest.approx((37.5 + 1.25) / 2)
    assert np.isnan(intervals.loc[("anli", "pawsx"), "delta"]) and np.isnan(intervals.loc[("anli", "xtreme"), "low"])
    scores = pd.DataFrame([{"intermediate": r, "target": t, "seed": s, "language": "de", "split": "test",
                            "condition": "clean", "metric": "accuracy", "value": v, "n_examples": 40}
                           for (r, t, s), v in {("none", "xnli", 1): 50, ("mnli", "xnli", 1): 90,
                                                ("anli", "xnli", 1): 52.5, ("none", "xnli", 2): 50,
                                                ("mnli", "xnli", 2): 85, ("anli", "xnli", 2): 50}.items()])
    tables = compute_tables(scores, ["none", "mnli", "anli"], ["xnli"],
                            intervals=transfer_intervals(values, ["none", "mnli", "anli"], ["xnli"], [1, 2],
                                                         SignificanceSettings()))
    assert tables.delta.loc["mnli", "xnli"] == pytest.approx(intervals.loc[("mnli", "xnli"), "delta"])
    write_tables(tables, tmp_path)
    delta = (tmp_path / "delta.md").read_text()
    assert "+37.5* " in delta and "+1.2°" in delta and INTERVAL_NOTE in delta
    assert pd.read_csv(tmp_path / "delta_ci.csv")["column"].tolist()[:3] == ["xnli", "classification", "xtreme"]
