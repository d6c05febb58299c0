"""The robustness tables from hand-made scores (drops against clean on the same examples, means over
languages then seeds, deltas against none, the attack table, languages with their metadata), their
intervals from predictions, the files written, and the robustness claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xstilts.comparability import marks
from xstilts.report import ABSENT, FAILS, HOLDS, UNMEASURABLE, robustness_claims
from xstilts.robustness import (
    MEAN_DROP,
    attack_table,
    compute_robustness,
    drops,
    robustness_intervals,
    write_robustness,
)
from xstilts.settings import SignificanceSettings
from xstilts.significance import target_values


def score(row: str, target: str, seed: int, language: str, condition: str, value: float, metric: str = "accuracy",
          split: str = "test") -> dict:
    return {"intermediate": row, "target": target, "seed": seed, "language": language, "split": split,
            "condition": condition, "metric": metric, "value": value, "n_examples": 10}


def scores() -> pd.DataFrame:
    """none and mnli on XNLI (de, sw) with two seeds for mnli; char_noise on a sample whose clean score differs."""
    rows = []
    for row, seeds in (("none", (1,)), ("mnli", (1, 2))):
        for seed in seeds:
            for lang, clean in (("de", 80.0), ("sw", 50.0)):
                rows.append(score(row, "xnli", seed, lang, "clean", clean))
                rows.append(score(row, "xnli", seed, lang, "clean_sample", clean - 10))  # the sample's own
                loss = {"none": 0.5, "mnli": 0.25 * seed}[row]  # relative drop 50%, 25% and 50%
                rows.append(score(row, "xnli", seed, lang, "char_noise", (clean - 10) * (1 - loss)))
    rows.append(score("mnli", "xnli", 1, "de", "clean", 90.0, split="validation"))  # not the report split
    return pd.DataFrame(rows)


def test_drops_are_measured_against_clean_on_the_same_examples() -> None:
    found = drops(scores())
    de = found[(found["intermediate"] == "none") & (found["language"] == "de")].iloc[0]
    assert (de["condition"], de["clean"], de["score"], de["drop"], de["relative_drop"]) == (
        "char_noise", 70.0, 35.0, 35.0, 50.0)
    assert set(found["condition"]) == {"char_noise"} and len(found) == 2 + 4
    whole = drops(scores()[scores()["condition"] != "clean_sample"])  # no sample: the whole table's clean
    assert whole[(whole["intermediate"] == "none") & (whole["language"] == "de")]["clean"].tolist() == [80.0]


def test_robustness_table_averages_languages_then_seeds_and_deltas_subtract_none() -> None:
    found = compute_robustness(scores(), ["none", "mnli", "anli"], ["xnli"])
    assert found is not None
    assert list(found.table.columns) == ["xnli/char_noise"]
    # mnli: seed 1 drops 25%, seed 2 50% (both languages) -> 37.5; none 50; anli missing
    assert found.table["xnli/char_noise"].tolist()[:2] == [50.0, 37.5] and np.isnan(found.table.loc["anli"].iat[0])
    assert found.delta.loc["mnli", "xnli/char_noise"] == -12.5
    languages = found.languages
    assert list(languages.index) == ["sw", "de"]  # class 2, then 5
    assert languages.loc["sw", ["name", "class"]].tolist() == ["Swahili", 2]
    assert languages.loc["sw", MEAN_DROP] == pytest.approx((50 + 25 + 50) / 3)
    assert compute_robustness(scores()[scores()["condition"] == "clean"], ["none"], ["xnli"]) is None


def test_attack_table() -> None:
    rows = [score("none", "xnli", 1, "de", "clean", 80.0), score("none", "xnli", 1, "de", "clean_sample", 70.0),
            score("none", "xnli", 1, "de", "adversarial", 35.0),
            score("none", "xnli", 1, "de", "adversarial", 50.0, metric="attack_success_rate"),
            score("none", "xnli", 1, "de", "adversarial", 12.0, metric="forward_passes")]
    table = attack_table(pd.DataFrame(rows), ["none", "mnli"])
    assert table.loc[("none", "xnli")].tolist() == [70.0, 35.0, 50.0, 12.0]  # clean: on the attacked sample
    assert list(table.index) == [("none", "xnli")]
    # a cell scored on every example (no clean_sample) beside one with a sample: each against its own reference
    whole = [score("mnli", "xnli", 1, "de", "clean", 90.0), score("mnli", "xnli", 1, "de", "adversarial", 40.0)]
    table = attack_table(pd.DataFrame(rows + whole), ["none", "mnli"])
    assert table.loc[("none", "xnli"), "accuracy"] == 70.0 and table.loc[("mnli", "xnli"), "accuracy"] == 90.0


def predictions() -> pd.DataFrame:
    """Per-example predictions: none and mnli on XNLI de, clean and char_noise on 40 examples."""
    rows = []
    for row, clean_right, noisy_right in (("none", 30, 15), ("mnli", 36, 33)):
        for condition, right in (("clean", clean_right), ("char_noise", noisy_right)):
            rows += [{"language": "de", "split": "test", "condition": condition, "id": str(i), "prediction": "",
                      "gold": "", "score": 100.0 * (i < right), "intermediate": row, "seed": 1} for i in range(40)]
    return pd.DataFrame(rows)


def test_intervals_of_the_drops_and_of_their_deltas(tmp_path: Path) -> None:
    frame = pd.DataFrame([score(r, "xnli", 1, "de", c, v) for r, c, v in (
        ("none", "clean", 75.0), ("none", "char_noise", 37.5), ("mnli", "clean", 90.0), ("mnli", "char_noise", 82.5))])
    found = compute_robustness(frame, ["none", "mnli"], ["xnli"])
    values = {"xnli": target_values("xnli", predictions(), 1000, 0)}
    intervals = robustness_intervals(values, found.table, [1], SignificanceSettings()).set_index(
        ["intermediate", "measure"])
    none, mnli = intervals.loc[("none", "relative_drop")], intervals.loc[("mnli", "relative_drop")]
    assert none["value"] == pytest.approx(50.0) and mnli["value"] == pytest.approx(100 * 3 / 36)  # as the table
    assert none["value"] == pytest.approx(found.table.loc["none"].iat[0])
    delta = intervals.loc[("mnli", "delta")]
    assert delta["value"] == pytest.approx(100 * 3 / 36 - 50) and delta["high"] < 0 and not delta["contains_zero"]
    assert ("none", "delta") not in intervals.index
    paths = write_robustness(found.__class__(**{**found.__dict__, "intervals": intervals.reset_index()}), tmp_path,
                             marks(frame, ["xnli"]), ["xnli"])
    assert {p.name for p in paths} >= {"robustness.md", "robustness_delta.parquet", "robustness_ci.csv",
                                       "robustness_languages.tex", "attack.md", "heatmap_robustness.png"}
    text = (tmp_path / "robustness_delta.md").read_text()
    assert "xnli†/char_noise" in text and "-41.7" in text and "-41.7°" not in text  # significant: no mark
    # mnli loses 3 of 36: a resample without those 3 examples (a chance of (37/40)^40 = 4.4%) drops nothing
    drop = (tmp_path / "robustness.md").read_text()
    assert "+8.3°" in drop and "+50.0 " in drop


def _robust(table: dict[str, dict[str, float]], languages: pd.DataFrame | None = None):
    frame = pd.DataFrame(table).T
    frame.index.name = "intermediate"
    found = compute_robustness(pd.DataFrame([score("none", "xnli", 1, "de", c, 50.0)
                                             for c in ("clean", "char_noise")]), ["none"], ["xnli"])
    return found.__class__(found.drops, frame, frame - frame.loc["none"], found.attack,
                           languages if languages is not None else found.languages)


def test_robustness_claims() -> None:
    transfer = pd.DataFrame({"xtreme": {"none": 60.0, "mnli": 65.0, "sst2": 62.0, "multitask": 66.0}})
    table = {"none": {"xnli/code_switch": 40.0, "xnli/char_noise": 10.0},
             "mnli": {"xnli/code_switch": 30.0, "xnli/char_noise": 8.0},
             "sst2": {"xnli/code_switch": 35.0, "xnli/char_noise": 12.0},
             "multitask": {"xnli/code_switch": 25.0, "xnli/char_noise": 6.0}}
    languages = pd.DataFrame({"class": [1, 2, 5, 4], MEAN_DROP: [30.0, 20.0, 10.0, 12.0]},
                             index=["sw", "ur", "de", "ru"])
    claims = robustness_claims(_robust(table, languages), transfer)
    assert claims["verdict"].tolist() == [HOLDS, HOLDS, HOLDS]
    # median of mnli -10 and sst2 -5; multitask 15.5 vs mnli (the best XTREME) 19; class 0-2 25 vs 3-5 11
    assert claims["measured"].tolist() == [
        "xnli/code_switch -7.5 (median of 2/2 rows)", "multitask 15.5% vs best single-task mnli 19.0%",
        "class 0-2 25.0% (sw ur) vs class 3-5 11.0% (de ru)"]
    worse = {r: {c: v * (0.5 if r == "none" else 1) for c, v in t.items()} for r, t in table.items()}
    worse["multitask"] = {"xnli/code_switch": 30.0, "xnli/char_noise": 7.5}
    flipped = languages.assign(**{MEAN_DROP: [10.0, 10.0, 10.0, 9.5]})
    assert robustness_claims(_robust(worse, flipped), transfer)["verdict"].tolist() == [FAILS, FAILS, FAILS]
    partial = {r: t for r, t in table.items() if r != "multitask"}
    partial["sst2"] = {"xnli/code_switch": np.nan, "xnli/char_noise": 12.0}
    found = robustness_claims(_robust(partial, languages[languages["class"] > 2]), transfer.drop("multitask"))
    assert found["verdict"].tolist() == [UNMEASURABLE, ABSENT, UNMEASURABLE]
    # an XTREME-R grid ranks its single-task rows by the XTREME-R score
    xtreme_r = robustness_claims(_robust(table, languages), transfer.rename(columns={"xtreme": "xtreme-r"}))
    assert xtreme_r["verdict"].tolist() == [HOLDS, HOLDS, HOLDS]
    assert "with the best xtreme-r score" in xtreme_r["rule"].iat[1]
