"""XTREME-R and the shifted targets: the benchmark and its score, the new targets' loaders, the pool search's
mAP@20, the paired bootstrap, the two-stage XCOPA plan, the shift table and its claims."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.test_grid import job_counts
from xstilts import metrics
from xstilts.benchmarks import BENCHMARKS, XTREME, XTREME_R
from xstilts.catalogue import TARGETS
from xstilts.config import load_config
from xstilts.data import Sources, prepare_target, sentence_breaks
from xstilts.grid import Grid
from xstilts.report import ABSENT, FAILS, HOLDS, UNMEASURABLE, claims_table
from xstilts.retrieval import average_precision_at_k, top_k
from xstilts.shift import shift_table
from xstilts.significance import example_stats, mean_over_languages, paired_bootstrap, statistic, value

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
HUB = Sources(hub_mirror=FIXTURES / "hub")


# ------------------------------------------------------------------------------------------ benchmark


def test_benchmarks_are_evaluate_py_s_lists() -> None:
    """evaluate.py at 838c13b: XTREME-R's language counts and its groups (XCOPA in two), LAReQA apart."""
    counts = {t: len(langs) for t, langs in XTREME_R.languages.items()}
    assert counts == {"xnli": 15, "panx": 48, "udpos": 38, "tatoeba": 41, "xcopa": 11, "lareqa": 0, "mewslix": 11,
                      "xquad": 12, "mlqa": 7, "tydiqa": 9}
    assert XTREME_R.languages["udpos"][-5:] == ("lt", "pl", "uk", "wo", "ro")
    assert XTREME_R.groups["classification"] == ("xnli", "xcopa") and XTREME_R.groups["multi_choice"] == ("xcopa",)
    assert XTREME_R.scored == ("xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "tatoeba", "mewslix")
    assert "pawsx" not in XTREME_R.targets and "bucc" not in XTREME_R.targets
    assert XTREME.targets == ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba")
    for bench in BENCHMARKS.values():  # every benchmark language is one the catalogue loads
        assert all(set(langs) <= set(TARGETS[t].languages) for t, langs in bench.languages.items())


def test_xtreme_r_score_by_hand() -> None:
    task = {"xnli": 80.0, "xcopa": 60.0, "udpos": 70.0, "panx": 50.0, "xquad": 70.0, "mlqa": 60.0, "tydiqa": 50.0,
            "tatoeba": 40.0, "mewslix": 30.0, "lareqa": 99.0}
    scores = XTREME_R.scores(task)
    assert scores["xtreme-r"] == pytest.approx(510 / 9)  # LAReQA's 99 is left out
    assert scores["classification"] == 70 and scores["multi_choice"] == 60 and scores["tagging"] == 60
    assert scores["qa"] == 60 and scores["retrieval"] == 35
    partial = XTREME_R.scores({**task, "mewslix": math.nan})  # as evaluate.py: no score without every task
    assert "xtreme-r" not in partial and "retrieval" not in partial and partial["qa"] == 60


# Per-language task scores of mock predictions in evaluate.py's formats (XNLI, XCOPA, Tatoeba labels and
# predictions, Mewsli-X json): `_mock` below writes them; google-research/xtreme's evaluate.py at 838c13b, run
# with --xtreme_version xtreme-r on those files, gave these overall scores (no all_task: LAReQA and the other
# tasks' folders are absent, and with LAReQA present it stops with KeyError 'avg_metric').
EVALUATE_PY = {"classification": 67.63636363636363, "multi_choice": 67.27272727272727,
               "retrieval": 54.56168192795133}


def _mock() -> dict[str, dict[str, float]]:
    """Per-language scores of the mock files: accuracy of deterministic predictions, Mewsli-X's AP@20."""
    out: dict[str, dict[str, float]] = {}
    for task, n in (("xnli", 20), ("xcopa", 25), ("tatoeba", 10)):
        langs = XTREME_R.languages[task]
        out[task] = {lang: 100.0 * sum((i * (k + 3)) % 5 < 3 for i in range(n)) / n for k, lang in enumerate(langs)}
    out["mewslix"] = {}
    for k, lang in enumerate(XTREME_R.languages["mewslix"]):
        ranks = [1, 2, 3 + k, 30]  # the gold entity's rank among 20 predictions (30: not among them)
        out["mewslix"][lang] = 100 * np.mean([average_precision_at_k({0}, [(j - r + 1) % 40 for j in range(40)], 20)
                                              for r in ranks])
    return out


def test_xtreme_r_groups_as_evaluate_py_computes_them_on_mock_files() -> None:
    per_task = {t: float(np.mean(list(v.values()))) for t, v in _mock().items()}
    assert XTREME_R.scores(per_task) == pytest.approx(EVALUATE_PY)
    # and the transfer table's group columns of the same per-language scores
    from xstilts.aggregate import transfer_table
    scores = pd.DataFrame([{"intermediate": "none", "target": t, "seed": 1, "language": lang,
                            "split": TARGETS[t].report_split, "metric": TARGETS[t].metric, "value": v}
                           for t, by_lang in _mock().items() for lang, v in by_lang.items()])
    table = transfer_table(scores, ["none"], list(_mock()), XTREME_R)
    assert {g: table.loc["none", g] for g in EVALUATE_PY} == pytest.approx(EVALUATE_PY)


# ------------------------------------------------------------------------------------------ mAP@20


def test_average_precision_at_k_by_hand() -> None:
    # relevant 0 and 2 ranked 1st and 3rd: (1/1 + 2/3) / 2
    assert average_precision_at_k({0, 2}, [0, 1, 2, 3], 20) == pytest.approx((1 + 2 / 3) / 2)
    # divisor min(|relevant|, k): 30 relevant, k = 20, all of the top 20 relevant: 20 / 20
    assert average_precision_at_k(set(range(30)), list(range(30)), 20) == 1.0
    # a relevant candidate past rank k counts nothing; one relevant: its reciprocal rank (Mewsli-X's MRR@20)
    assert average_precision_at_k({5}, [9, 8, 7, 5], 20) == 0.25
    assert average_precision_at_k({5}, [*range(6, 26), 5], 20) == 0.0
    assert average_precision_at_k(set(), [1, 2], 20) == 0.0


def test_top_k_ranks_the_pool_by_cosine() -> None:
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    pool = np.array([[0.0, 2.0], [1.0, 0.1], [1.0, 1.0], [3.0, 0.0]])
    assert top_k(queries, pool, 20).tolist() == [[3, 1, 2, 0], [0, 2, 1, 3]]  # equal cosines: lowest row first


# ------------------------------------------------------------------------------------------ bootstrap


def test_paired_bootstrap_by_hand() -> None:
    a, b = [100, 100, 0, 100], [0, 100, 0, 0]
    delta, low, high = paired_bootstrap(a, b, resamples=2000, seed=0)
    assert delta == 50.0 and 0 <= low < 50 < high <= 100
    same = paired_bootstrap(a, a, resamples=100)
    assert same == (0.0, 0.0, 0.0)  # paired: identical systems never differ
    # a target's delta is the mean over its languages of each language's delta (10 and 0: 5), not the pooled 4
    assert mean_over_languages({"a": (10.0, np.array([10.0])), "b": (0.0, np.array([0.0]))})[0] == 5.0


def test_the_toxic_class_f1_is_resampled_by_its_counts() -> None:
    """The toxicity target's F1 of the toxic class: each example's (tp, predicted, gold) counts, summed, give
    `metrics.positive_f1` exactly, so a resample's F1 is the F1 of its examples."""
    clean, toxic = TARGETS["toxicity"].labels[0], TARGETS["toxicity"].labels[-1]
    rows = pd.DataFrame({"id": ["1", "2", "3"], "prediction": [toxic, toxic, clean], "gold": [toxic, clean, toxic],
                         "score": [None] * 3})
    assert statistic("toxicity") == "f1"
    stats = example_stats("toxicity", rows).to_numpy()
    assert stats.tolist() == [[1, 1, 1], [0, 1, 0], [0, 0, 1]]
    assert value("f1", stats.sum(axis=0), 3) == metrics.positive_f1([1, 1, 0], [1, 0, 1], positive=1) == 50.0


# ------------------------------------------------------------------------------------------ loaders


def rows(path: Path) -> list[dict]:
    return pd.read_parquet(path).to_dict("records")


def test_xcopa_rows_as_xtreme_r_pairs_them(tmp_path: Path) -> None:
    meta = prepare_target("xcopa", ["it"], tmp_path, HUB)
    assert meta["rows"] == {"validation": {"it": 1}, "test": {"it": 2}}
    first = rows(tmp_path / "test" / "it.parquet")[0]
    assert first["context"] == "L'oggetto era incartato nella plastica a bolle. What was the cause?"
    assert list(first["choices"]) == ["Era delicato.", "Era piccolo."] and first["label"] == 0


def test_masakhaner_date_tags_read_as_o(tmp_path: Path) -> None:
    prepare_target("masakhaner", ["ha"], tmp_path, HUB)  # config hau
    assert list(rows(tmp_path / "validation" / "ha.parquet")[0]["tags"]) == [0, 1, 0, 0, 5, 0, 0]
    assert list(rows(tmp_path / "test" / "ha.parquet")[0]["tags"]) == [3, 4, 0, 5, 0, 0]


def test_americasnli_and_toxicity_rows(tmp_path: Path) -> None:
    prepare_target("americasnli", ["qu"], tmp_path / "anli", HUB)  # config quy
    assert [(r["text_b"], r["label"]) for r in rows(tmp_path / "anli" / "test" / "qu.parquet")] == [
        ("Wasipi kachkani.", 0), ("Inti lloqsimun.", 1)]
    meta = prepare_target("toxicity", ["en", "de"], tmp_path / "tox", HUB)
    # English: its held-out test part (1 of 10 rows, the one neither train nor dev holds); German: all of it
    assert meta["rows"] == {"test": {"en": 1, "de": 2}}
    assert rows(tmp_path / "tox" / "test" / "en.parquet") == [{"text_a": "english comment 2", "text_b": None,
                                                              "label": 0}]


def test_xtreme_r_languages_of_other_repos(tmp_path: Path) -> None:
    """WikiANN's az (PAN-X's schema), MTEB's Tatoeba aze-eng (its test split, sentence1/sentence2), XQuAD ro."""
    prepare_target("panx", ["az"], tmp_path / "panx", HUB)
    assert list(rows(tmp_path / "panx" / "test" / "az.parquet")[0]["tags"]) == [1, 2, 5]
    prepare_target("tatoeba", ["az"], tmp_path / "tatoeba", HUB)
    assert rows(tmp_path / "tatoeba" / "validation" / "az.parquet")[0] == {"source": "Mən evdəyəm.",
                                                                          "target": "I am at home."}
    prepare_target("xquad", ["ro"], tmp_path / "xquad", HUB)
    assert list(rows(tmp_path / "xquad" / "validation" / "ro.parquet")[0]["answer_texts"]) == ["un popor"]


def test_lareqa_questions_and_sentence_pool_from_the_hub_and_from_lareqa(tmp_path: Path) -> None:
    meta = prepare_target("lareqa", ["en", "de"], tmp_path / "hub", HUB)
    assert meta["not_comparable"]["de"].startswith("the hub copy has no sentence breaks")
    table = rows(tmp_path / "hub" / "validation" / "de.parquet")
    queries = [(r["id"], list(r["keys"])) for r in table if pd.notna(r["query"])]
    candidates = [(r["candidate"][:30], list(r["keys"])) for r in table if pd.isna(r["query"])]
    assert queries == [("q1", ["q1"]), ("q2", ["q2"])]
    # LAReQA's candidate text: the sentence, then its whole paragraph
    assert candidates == [("Die Normannen waren ein Volk.D", []), ("Sie gaben der Normandie ihren ", ["q1"]),
                          ("Rollo war ihr Anführer.Die Nor", ["q2"])]
    local = Sources(hub_mirror=FIXTURES / "hub", local={"lareqa": FIXTURES / "local" / "lareqa"})
    meta = prepare_target("lareqa", ["de"], tmp_path / "local", local)
    assert meta["not_comparable"] == {}
    assert [list(r["keys"]) for r in rows(tmp_path / "local" / "validation" / "de.parquet")] == [
        ["q1"], ["q2"], [], ["q1"], ["q2"]]
    assert sentence_breaks("A b. C d? E") == [(0, 4), (5, 9), (10, 11)]


def test_mewslix_from_the_files_get_mewsli_x_writes(tmp_path: Path) -> None:
    local = Sources(local={"mewslix": FIXTURES / "local" / "mewslix"})
    meta = prepare_target("mewslix", ["en", "de"], tmp_path, local)
    # English holds the pool of candidate entities in every split, with its own mentions where it has some
    assert meta["rows"] == {"validation": {"en": 3, "de": 1}, "test": {"en": 2, "de": 1}}
    de = rows(tmp_path / "validation" / "de.parquet")
    assert [(r["query"], list(r["keys"])) for r in de] == [("Berlin: In { Berlin } regnete es.", ["Q64"])]
    en = rows(tmp_path / "validation" / "en.parquet")
    assert [(r["candidate"], list(r["keys"])) for r in en if pd.isna(r["query"])] == [
        ("Berlin is the capital of Germany.", ["Q64"]), ("Paris is the capital of France.", ["Q90"])]


# ------------------------------------------------------------------------------------------ the grid


def _xtreme_r(tmp_path: Path, **overrides: object) -> Grid:
    return Grid(load_config([ROOT / "config.yaml", ROOT / "xtreme-r.yaml"], {"results": str(tmp_path), **overrides}))


def test_xcopa_trains_siqa_then_copa_once_per_row(tmp_path: Path) -> None:
    grid = _xtreme_r(tmp_path)
    assert grid.benchmark is XTREME_R and "mewslix" not in grid.targets  # no local copy configured: left out
    assert grid.left_out["mewslix"].startswith("target mewslix left out")
    assert "sources.mewslix" in grid.left_out["mewslix"]
    assert "lt" not in grid.languages("udpos") and "sources.ud27" in grid.left_out["udpos:lt"]
    assert grid.trainsets == ["mnli", "udpos", "panx", "squad", "tydiqa", "siqa", "copa", "toxicity"]
    copa, siqa = grid.train_target("mnli", "copa", 1), grid.train_target("mnli", "siqa", 1)
    assert copa.init == siqa.out and copa.inputs["init"] == siqa.out  # COPA starts from the row's SIQA model
    assert siqa.init == grid.encoder("mnli", 1)
    assert [s.key for s in grid.cell_jobs("mnli", "xcopa", 1)] == [
        ("train", "intermediate", "mnli", "1"), ("train", "target", "mnli", "siqa", "1"),
        ("train", "target", "mnli", "copa", "1"), ("evaluate", "mnli", "xcopa", "1")]
    keys = [s.key for s in grid.target_jobs()]
    assert len(keys) == len(set(keys)) == 11 * 8  # one job per row and stage, none repeated
    assert grid.shared["panx"] == 2 and grid.shared["mnli"] == 2 and grid.shared["siqa"] == 1
    with_mewslix = _xtreme_r(tmp_path, sources={"mewslix": str(tmp_path)})
    assert "mewslix" in with_mewslix.targets and with_mewslix.trainsets == grid.trainsets


def test_dry_run_of_the_xtreme_r_grid_has_the_shared_job_counts(tmp_path: Path) -> None:
    overlay = tmp_path / "results.yaml"
    overlay.write_text(yaml.safe_dump({"results": str(tmp_path / "results")}))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm", "--configfile",
                          "config.yaml", "xtreme-r.yaml", str(overlay)], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    counts = job_counts(run.stdout)
    print("XTREME-R grid:", counts)
    assert counts["train_intermediate"] == 10 and counts["train_target"] == 11 * 8 and counts["evaluate"] == 11 * 12
    assert counts["prepare_dataset"] == 16 and counts["prepare_target"] == 12
    assert "xstilts: target mewslix left out" in run.stderr


# ------------------------------------------------------------------------------------------ shift


def _scores(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """Score rows (one seed, the report split, the target's metric) from {(row, target, language): value}."""
    return pd.DataFrame([{"intermediate": r, "target": t, "seed": 1, "language": lang, "split": "test",
                          "metric": TARGETS[t].metric, "value": v} for (r, t, lang), v in values.items()])


def test_shift_table_and_claims_by_hand() -> None:
    rows = ["none", "mnli", "squad_v2", "multitask"]
    values = {}
    for row, xnli, anli, panx, mner in (("none", 70, 40, 60, 30), ("mnli", 80, 44, 62, 31),
                                        ("squad_v2", 72, 45, 61, 35), ("multitask", 78, 48, 63, 34)):
        values |= {(row, "xnli", "de"): xnli, (row, "americasnli", "qu"): anli, (row, "panx", "de"): panx,
                   (row, "masakhaner", "ha"): mner, (row, "toxicity", "en"): 90, (row, "toxicity", "de"): anli}
    from xstilts.aggregate import transfer_table
    targets = ["xnli", "panx", "americasnli", "masakhaner", "toxicity"]
    scores = _scores(values)
    transfer = transfer_table(scores, rows, targets)
    table = shift_table(scores, transfer, rows, targets).set_index(["target", "row"])
    mnli = table.loc[("americasnli", "mnli")]
    assert mnli["delta_none"] == 4 and mnli["in_domain"] == 80
    assert table.loc[("americasnli", "multitask"), "delta_in_domain"] == 48 - 78
    assert table.loc[("toxicity", "mnli"), "in_domain"] == 90 and table.loc[("toxicity", "mnli"), "shifted"] == 44
    assert (mnli["rank_in_domain"], mnli["rank_shifted"]) == (1, 3)
    claims = claims_table(transfer, targets, shift=table.reset_index())
    domain, resources = claims.iloc[-2], claims.iloc[-1]
    # resources (americasnli, masakhaner): best in domain mnli (80; panx 62): -36 and -31 vs multitask -30, -29
    assert resources["verdict"] == HOLDS and "americasnli: multitask -30.0 vs mnli -36.0" in resources["measured"]
    # domain (masakhaner, toxicity): toxicity's best in domain is the first at 90 (mnli): -46 vs multitask -42
    assert domain["verdict"] == HOLDS
    worse = table.reset_index()
    worse.loc[(worse["target"] == "toxicity") & (worse["row"] == "multitask"), "delta_in_domain"] = -60
    assert claims_table(transfer, targets, shift=worse).iloc[-2]["verdict"] == FAILS
    worse.loc[(worse["target"] == "masakhaner") & (worse["row"] == "mnli"), "in_domain"] = np.nan
    assert claims_table(transfer, targets, shift=worse).iloc[-1]["verdict"] == UNMEASURABLE
    assert claims_table(transfer, targets, shift=worse.iloc[:0]).iloc[-1]["verdict"] == ABSENT
    # the deltas against none get the delta table's paired-bootstrap intervals, over the languages under shift
    from xstilts.aggregate import transfer_intervals
    from xstilts.settings import SignificanceSettings
    from xstilts.significance import target_values

    right = {"none": 40, "mnli": 44, "squad_v2": 45, "multitask": 48}  # of 100 in qu, as americasnli above
    predictions = pd.DataFrame([{"language": "qu", "split": "test", "condition": "clean", "id": str(i),
                                 "prediction": "", "gold": "", "score": 100.0 * (i < n), "intermediate": row, "seed": 1}
                                for row, n in right.items() for i in range(100)])
    values = {"americasnli": target_values("americasnli", predictions, 1000, 0)}
    with_intervals = shift_table(scores, transfer, rows, targets, values, [1], SignificanceSettings())
    found = with_intervals.set_index(["target", "row"]).loc[("americasnli", "mnli")]
    expected = transfer_intervals(values, rows, ["americasnli"], [1], SignificanceSettings()).set_index(
        ["intermediate", "column"]).loc[("mnli", "americasnli")]
    assert (found["delta_none_low"], found["delta_none_high"]) == (expected["low"], expected["high"])
    assert found["delta_none_low"] < 4 < found["delta_none_high"]
    assert with_intervals.set_index(["target", "row"])["delta_none_low"].loc["masakhaner"].isna().all()  # no values


def test_a_pool_search_ranks_every_languages_candidates_and_encodes_a_shared_pool_once() -> None:
    from xstilts.families.retrieval import Retrieval

    words = ["cat", "dog", "sun", "Katze", "Hund", "Sonne"]
    calls: list[list[str]] = []

    def vectors(texts: list[str]) -> np.ndarray:  # one axis per meaning: cat, dog, sun
        calls.append(texts)
        return np.array([np.eye(3)[words.index(t.split()[-1]) % 3] for t in texts])

    def table(lang: str, cat: str, dog: str) -> pd.DataFrame:  # LAReQA's ids repeat in every language
        return pd.DataFrame({"id": ["q1", "0_0", "0_1"], "query": [f"where {cat}", None, None],
                             "candidate": [None, cat, dog], "keys": [["q1"], ["q1"], []]})

    tables = {lang: {split: table(lang, *pair) for split in ("validation", "test")}
              for lang, pair in (("en", ("cat", "dog")), ("de", ("Katze", "Hund")))}
    rows, predictions = Retrieval().pool(tables, vectors)
    # each query's relevant sentences: its own language's and the other's "cat" -> both ranked first: AP 1
    assert {(r["language"], r["split"], r["value"]) for r in rows} == {
        (lang, split, 100.0) for lang in ("en", "de") for split in ("validation", "test")}
    top = json.loads(predictions[0]["prediction"])
    assert set(top[:2]) == {"en:0_0", "de:0_0"} and set(top) == {"en:0_0", "en:0_1", "de:0_0", "de:0_1"}
    candidate_calls = [c for c in calls if not c[0].startswith("where")]
    assert len(candidate_calls) == 1  # the test split's pool is the validation split's: encoded once
