"""The loaders on hand-made files in every hub schema (tests/fixtures/hub, laid out like the demo's hub
mirror) and in the original formats of the sources that have no loadable hub copy (tests/fixtures/local):
each normalised table row by row, the catalogue against the hub's configs, and the errors that say
what to do (offline hub, unprepared cache, missing local source)."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xstilts.catalogue import DATASETS, HUB_REVISIONS, INTERMEDIATE_TASKS, TARGETS
from xstilts.data import Sources, bitext_sides, prepare_dataset, prepare_target, read_meta
from xstilts.errors import DataError
from xstilts.retrieval import best_threshold, bucc_f1

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
LOCAL = FIXTURES / "local"
SOURCES = Sources(hub_mirror=FIXTURES / "hub", local={"ccg": LOCAL / "ccgbank"})


def plain(value: Any) -> Any:
    """Parquet's numpy arrays and NaN as the Python lists and None the expectations are written in."""
    if isinstance(value, np.ndarray | list):
        return [plain(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def rows(path: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    df = pd.read_parquet(path, columns=columns)
    return [{k: plain(v) for k, v in r.items()} for r in df.to_dict("records")]


def pairs(*triples: tuple[str, str | None, int]) -> list[dict[str, Any]]:
    return [{"text_a": a, "text_b": b, "label": y} for a, b, y in triples]


def choices(*triples: tuple[str, list[str], int]) -> list[dict[str, Any]]:
    return [{"context": c, "choices": ch, "label": y} for c, ch, y in triples]


def tagged(*items: tuple[list[str], list[int]]) -> list[dict[str, Any]]:
    return [{"tokens": t, "tags": g} for t, g in items]


# Every English training set, by hand from the fixture files: (train rows, dev rows).
DATASET_ROWS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "anli": (pairs(("A dog runs in the park.", "An animal is outside.", 0),  # train_r1 + r2 + r3
                   ("The shop opens at nine.", "The shop is closed all day.", 2),
                   ("Maria wrote a book in 2001.", "Maria is a famous author.", 1)),
             pairs(("Tom ate an apple.", "Tom ate fruit.", 0), ("It rained on Monday.", "Monday was dry.", 2),
                   ("The film lasts two hours.", "The film is in colour.", 1))),
    "commonsenseqa": (  # answerKey "C" is the third choice; the unlabelled dev row (answerKey "") is dropped
        choices(("Where do you keep milk cold?", ["oven", "shelf", "fridge", "car", "desk"], 2),
                ("What do you use to write?", ["pen", "spoon", "shoe", "cup", "lamp"], 0)),
        choices(("What keeps rain off?", ["sun", "grass", "wind", "sand", "umbrella"], 4))),
    "cosmosqa": (  # jiant: "context question" against each answer
        choices(("Ann missed the bus. She walked to work. Why did Ann walk?",
                 ["She likes rain.", "She missed the bus.", "Her car is red.", "None of the above choices ."], 1)),
        choices(("Ben baked bread all night. What may be true about Ben?",
                 ["He is tired.", "He can fly.", "He hates bread.", "He slept all night."], 0))),
    "hellaswag": (  # jiant: ctx_a against "ctx_b ending"; labels are strings; "" (test) is dropped
        choices(("Then, the man writes over the snow.",
                 ["then , the man adds wax.", "then , the man puts on a christmas coat.",
                  "then , the man continues.", "then , the man eats."], 2),
                ("A woman mixes flour and sugar in a bowl.",
                 ["She pours the dough on a tray.", "She paints the bowl.", "She drives away.", "She sings."], 0)),
        choices(("A man is sitting on a roof.",
                 ["he is using wrap to wrap a pair of skis.", "he is ripping level tiles off.",
                  "he is holding a rubik's cube.", "he starts pulling up roofing on a roof."], 3))),
    "mnli": (pairs(("Conceptually cream skimming has two basic dimensions.",
                    "Product and geography are what make cream skimming work.", 1),
                   ("He went to the store.", "He stayed home.", 2)),
             pairs(("The new rights are nice enough.", "Everyone really likes the newest benefits.", 1),
                   ("A cat sleeps.", "An animal sleeps.", 0))),
    "qqp": (pairs(("How do I learn Python?", "What is the best way to learn Python?", 1),
                  ("Why is the sky blue?", "How tall is Everest?", 0)),
            pairs(("What is 2+2?", "How much is two plus two?", 1))),
    "sst2": (pairs(("a gorgeous , witty film ", None, 1), ("dull and lifeless ", None, 0)),
             pairs(("it 's a charming journey .", None, 1))),  # the -1 (test-like) row is dropped
    "pawsx": (pairs(("In 1965 he moved to Paris .", "He moved to Paris in 1965 .", 1),  # labels "1", "0"
                    ("Bob sold the car to Ann .", "Ann sold the car to Bob .", 0)),
              pairs(("The river flows north .", "North is where the river flows .", 1))),
    "siqa": (  # XTREME-R's run_xcopa.py: "context question" against each answer; labels "1"-"3" as 0-2
        choices(("Cameron decided to have a barbecue and gathered her friends together. How would Others feel as a "
                 "result?", ["like attending", "like staying home", "a good friend to have"], 0),
                ("Remy baited Kai's hook. What will Remy want to do next?",
                 ["put the boat in the water", "invite Kai out", "cast the line"], 2)),
        choices(("Kendall worked the weekend and made bank on tips. What will Kendall want to do next?",
                 ["Quit her job", "Save the money", "get hired"], 1))),
    "copa": (  # "premise What was the cause?" (or effect) against each choice
        choices(("My body cast a shadow over the grass. What was the cause?",
                 ["The sun was rising.", "The grass was cut."], 0),
                ("The woman tolerated her friend's difficult behavior. What was the cause?",
                 ["The woman knew her friend was going through a hard time.",
                  "The woman felt that her friend took advantage of her kindness."], 0),
                ("The physician misdiagnosed the patient. What was the effect?",
                 ["The patient filed a malpractice lawsuit.", "The patient disclosed confidential information."], 0)),
        choices(("The man turned on the faucet. What was the effect?",
                 ["The toilet filled with water.", "Water flowed from the spout."], 1))),
    "toxicity": (  # TextDetox's English split in seeded parts: 8 of its 10 rows, 1 (the test part holds the other)
        pairs(*((f"english comment {i}", None, i % 2) for i in (3, 5, 6, 1, 4, 7, 8, 9))),
        pairs(("english comment 0", None, 0))),
    "udpos": (tagged((["The", "Donaudampfschifffahrtsgesellschaft", "sank", "."], [5, 11, 15, 12]),
                     (["Anna", "lives", "in", "Paris"], [11, 15, 1, 11])),
              tagged((["Bob", "works", "\u200b", "."], [11, 15, 16, 12]))),
    "panx": (tagged((["Angela", "Merkel", "visited", "New", "York"], [1, 2, 0, 5, 6]),
                    (["Acme", "Corp", "hired", "Bob"], [3, 4, 0, 1])),
             tagged((["Paris", "is", "big"], [5, 0, 0]))),
    # CCGbank AUTO files: train = section 02, dev = section 00 (section 23 is test, unused); the labels
    # are every supertag of the data, sorted (see test_ccg_labels_are_the_supertags_of_the_data).
    "ccg": (tagged((["Pierre", "Vinken", "joins", "the", "board", "."], [4, 3, 1, 5, 3, 2]),
                   (["Vinken", "chairs", "Elsevier"], [3, 1, 3])),
            tagged((["Vinken", "will", "retire"], [3, 0, 6]))),
}
QA_ROWS: dict[str, tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]] = {
    "squad_v2": ([("v2a", ["1995"]), ("v2b", [])], [("v2c", ["France", "France"]), ("v2d", [])]),
    "squad": ([("s1", ["Vienna"])], [("s2", ["Normans", "Normans", "Normans were the people"])]),
    # the TyDiQA config mixes languages: English rows only, told apart by the id prefix
    "tydiqa": ([("english-7074384927432542356-0", ["northeastern Africa"])], [("english-1-0", ["north"])]),
}


def test_every_task_of_design_section_2_is_in_the_catalogue() -> None:
    assert INTERMEDIATE_TASKS == ("anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp",
                                  "squad_v2", "sst2")
    assert list(TARGETS) == ["xnli", "pawsx", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba",
                             "mewslix", "lareqa", "masakhaner", "americasnli", "toxicity"]
    assert set(DATASET_ROWS) | set(QA_ROWS) == set(DATASETS)
    assert {t: TARGETS[t].trainset for t in TARGETS} == {
        "xnli": "mnli", "pawsx": "pawsx", "xcopa": "copa", "udpos": "udpos", "panx": "panx", "xquad": "squad",
        "mlqa": "squad", "tydiqa": "tydiqa", "bucc": None, "tatoeba": None, "mewslix": None, "lareqa": None,
        "masakhaner": "panx", "americasnli": "mnli", "toxicity": "toxicity"}


def test_hub_configs_and_splits_match_the_hub() -> None:
    assert [(h.path, h.config, h.split) for h in DATASETS["anli"].train] == [
        ("facebook/anli", "plain_text", f"train_r{r}") for r in (1, 2, 3)]
    assert DATASETS["mnli"].dev[0].split == "validation_matched"
    # main holds only a loading script: the commit of its parquet export (refs/convert/parquet), issue 10
    assert (DATASETS["cosmosqa"].train[0].path, DATASETS["cosmosqa"].train[0].revision) == (
        "allenai/cosmos_qa", "ed50fe83db62b355759053b1cd5eef344ee371e0")
    assert DATASETS["hellaswag"].train[0].revision == "049e80830aedaee63cd025622acf83822eb46553"  # parquet
    assert TARGETS["udpos"].configs["af"] == "udpos.Afrikaans"  # the parquet conversion's name
    assert TARGETS["udpos"].configs["el"] == "udpos.Greek" and TARGETS["udpos"].configs["fa"] == "udpos.Persian"
    assert TARGETS["tatoeba"].configs["zh"] == "tatoeba.cmn" and TARGETS["tatoeba"].configs["fa"] == "tatoeba.pes"
    assert TARGETS["tatoeba"].configs["sw"] == "tatoeba.swh" and TARGETS["tatoeba"].configs["te"] == "tatoeba.tel"
    assert TARGETS["mlqa"].configs["ar"] == "MLQA.ar.ar" and TARGETS["xnli"].configs["sw"] == "XNLI"
    assert TARGETS["udpos"].splits_for("kk") == ("test",) and TARGETS["udpos"].splits_for("de") == (
        "validation", "test")
    assert {t: TARGETS[t].report_split for t in TARGETS} == {
        "xnli": "test", "pawsx": "test", "xcopa": "test", "udpos": "test", "panx": "test", "xquad": "validation",
        "mlqa": "test", "tydiqa": "validation", "bucc": "test", "tatoeba": "validation", "mewslix": "test",
        "lareqa": "validation", "masakhaner": "test", "americasnli": "test", "toxicity": "test"}


@pytest.mark.parametrize("name", sorted(DATASET_ROWS))
def test_dataset_normalised_rows(name: str, tmp_path: Path) -> None:
    meta = prepare_dataset(name, tmp_path, SOURCES)
    train, dev = DATASET_ROWS[name]
    assert rows(tmp_path / "train.parquet") == train
    assert rows(tmp_path / "dev.parquet") == dev
    assert meta["rows"] == {"train": len(train), "dev": len(dev)}
    assert read_meta(tmp_path) == meta


@pytest.mark.parametrize("name", sorted(QA_ROWS))
def test_qa_dataset_normalised_rows(name: str, tmp_path: Path) -> None:
    prepare_dataset(name, tmp_path, SOURCES)
    for split, expected in zip(("train", "dev"), QA_ROWS[name], strict=True):
        table = rows(tmp_path / f"{split}.parquet")
        assert [(r["id"], r["answer_texts"]) for r in table] == expected
        for r in table:  # every start points at its answer in the context
            for text, start in zip(r["answer_texts"], r["answer_starts"], strict=True):
                assert r["context"][start:start + len(text)] == text


def test_ccg_labels_are_the_supertags_of_the_data(tmp_path: Path) -> None:
    meta = prepare_dataset("ccg", tmp_path, SOURCES)
    assert meta["labels"] == ["(S[dcl]\\NP)/(S[b]\\NP)", "(S[dcl]\\NP)/NP", ".", "N", "N/N", "NP[nb]/N", "S[b]\\NP"]
    assert meta["family"] == "tagging" and meta["metric"] == "token_accuracy"


def test_cosmosqa_from_its_release_files(tmp_path: Path) -> None:
    """train.csv and valid.csv as released; "N/A" and "NA" are answers, not missing values."""
    prepare_dataset("cosmosqa", tmp_path, Sources(local={"cosmosqa": LOCAL / "cosmosqa"}))
    assert rows(tmp_path / "train.parquet") == choices(
        ("Ann missed the bus, so she walked. Why did Ann walk?", ["She likes rain.", "She missed the bus.",
                                                                 "N/A", "NA"], 1))
    assert rows(tmp_path / "dev.parquet") == choices(
        ("Ben baked bread all night. What may be true about Ben?",
         ["He is tired.", "He can fly.", "He hates bread.", "He slept, all night."], 0))


def prepare(name: str, languages: list[str], tmp_path: Path, sources: Sources = SOURCES) -> dict[str, Any]:
    return prepare_target(name, languages, tmp_path, sources)


def test_xnli_rows_per_language_with_string_labels(tmp_path: Path) -> None:
    meta = prepare("xnli", ["en", "ar", "zh"], tmp_path)
    assert meta["rows"] == {"validation": {"en": 2, "ar": 1, "zh": 1}, "test": {"en": 1, "ar": 1, "zh": 1}}
    assert rows(tmp_path / "validation" / "en.parquet") == pairs(("A man plays guitar.", "A man makes music.", 0),
                                                                 ("Two dogs run.", "No animal moves.", 2))
    assert rows(tmp_path / "validation" / "ar.parquet") == pairs(("رجل يعزف على الغيتار.", "الرجل نائم.", 2))
    assert rows(tmp_path / "test" / "zh.parquet") == pairs(("她在读书。", "她在看书。", 0))
    assert rows(tmp_path / "test" / "ar.parquet") == pairs(("هي تقرأ.", "هي تقرأ كتابا.", 1))


def test_pawsx_rows(tmp_path: Path) -> None:
    prepare("pawsx", ["en", "zh"], tmp_path)
    assert rows(tmp_path / "test" / "en.parquet") == pairs(("Lisa met Tom in Rome .", "Tom met Lisa in Rome .", 1),
                                                           ("Lisa paid Tom .", "Tom paid Lisa .", 0))
    assert rows(tmp_path / "validation" / "zh.parquet") == pairs(
        ("他在1965年搬到了巴黎。", "1965年，他搬到了巴黎。", 1))


def test_udpos_languages_without_a_validation_split(tmp_path: Path) -> None:
    meta = prepare("udpos", ["en", "af", "th"], tmp_path)
    assert meta["rows"] == {"validation": {"en": 1, "af": 1}, "test": {"en": 1, "af": 1, "th": 1}}
    assert not (tmp_path / "validation" / "th.parquet").exists()
    assert rows(tmp_path / "test" / "th.parquet") == tagged((["แมว", "นอน"], [7, 15]))
    assert rows(tmp_path / "validation" / "af.parquet") == tagged((["Die", "kat", "slaap", "."], [5, 7, 15, 12]))


def test_panx_right_to_left(tmp_path: Path) -> None:
    prepare("panx", ["en", "ar"], tmp_path)
    assert rows(tmp_path / "validation" / "ar.parquet") == tagged((["زار", "محمد", "القاهرة"], [0, 1, 5]))
    assert rows(tmp_path / "test" / "ar.parquet") == tagged((["جامعة", "القاهرة"], [3, 4]))


@pytest.mark.parametrize(("name", "languages", "expected"), [
    ("xquad", ["zh", "ar"], {("validation", "zh"): [("xq1", ["北京"], [0]), ("xq2", ["三千多年"], [31])],
                             ("validation", "ar"): [("xq3", ["القاهرة"], [10])]}),
    ("mlqa", ["zh"], {("validation", "zh"): [("ml1", ["政治和文化中心"], [19])],
                      ("test", "zh"): [("ml2", ["北京"], [0])]}),
    ("tydiqa", ["en", "ar", "ko"], {("validation", "en"): [("english-1-0", ["north"], [20])],
                                    ("validation", "ar"): [("arabic--5346925545604566530-0", ["أفريقيا"], [25])],
                                    ("validation", "ko"): [("korean-123-0", ["서울"], [0])]}),
])
def test_qa_targets(name: str, languages: list[str], expected: dict, tmp_path: Path) -> None:
    meta = prepare(name, languages, tmp_path)
    assert {(s, lang) for s, langs in meta["rows"].items() for lang in langs} == set(expected)
    for (split, lang), want in expected.items():
        table = rows(tmp_path / split / f"{lang}.parquet")
        assert [(r["id"], r["answer_texts"], r["answer_starts"]) for r in table] == want
        for r in table:
            assert r["context"][r["answer_starts"][0]:][: len(r["answer_texts"][0])] == r["answer_texts"][0]


def test_tatoeba_sentences_lose_the_hubs_newlines(tmp_path: Path) -> None:
    prepare("tatoeba", ["zh", "he"], tmp_path)
    assert rows(tmp_path / "validation" / "zh.parquet") == [
        {"source": "我爱你。", "target": "I love you."}, {"source": "你好吗？", "target": "How are you?"}]
    assert rows(tmp_path / "validation" / "he.parquet") == [{"source": "אני אוהב אותך.", "target": "I love you."}]


def test_bucc_from_the_hub_holds_gold_pairs_only(tmp_path: Path) -> None:
    prepare("bucc", ["de"], tmp_path)
    assert rows(tmp_path / "validation" / "de.parquet") == [
        {"source": "Der Hund schläft.", "target": "The dog sleeps."},
        {"source": "Wir essen Brot.", "target": "We eat bread."}]
    assert bitext_sides(pd.read_parquet(tmp_path / "validation" / "de.parquet")).gold == {(0, 0), (1, 1)}


def test_bucc_from_the_original_files_keeps_every_sentence(tmp_path: Path) -> None:
    """BUCC's "sample" is the dev split and "training" the test split (XTREME's renaming)."""
    prepare("bucc", ["de"], tmp_path, Sources(hub_mirror=FIXTURES / "hub", local={"bucc": LOCAL / "bucc2018"}))
    dev = pd.read_parquet(tmp_path / "validation" / "de.parquet")
    assert [{k: plain(v) for k, v in r.items()} for r in dev.to_dict("records")] == [
        {"source": "Der Hund schläft.", "target": "The dog sleeps."},  # gold de-2 en-3
        {"source": "Wir essen Brot.", "target": "We eat bread."},  # gold de-4 en-1
        {"source": "Das ist ein Satz ohne Partner.", "target": None},
        {"source": "Niemand übersetzt diesen Satz.", "target": None},
        {"source": None, "target": "This sentence has no partner."},
        {"source": None, "target": "Nobody translates this."}]
    for duplicates in ("xtreme", "jiant"):  # no text twice: both readings alike
        sources, targets, _, _, gold = bitext_sides(dev, duplicates)
        assert sources == ["Der Hund schläft.", "Wir essen Brot.", "Das ist ein Satz ohne Partner.",
                           "Niemand übersetzt diesen Satz."]
        assert targets == ["The dog sleeps.", "We eat bread.", "This sentence has no partner.",
                           "Nobody translates this."]
        assert gold == {(0, 0), (1, 1)}
    # test: de-12 and de-13 share their text ("Es regnet.": one candidate); a tab inside a sentence stays
    test = pd.read_parquet(tmp_path / "test" / "de.parquet")
    sources, targets, _, _, gold = bitext_sides(test, "jiant")
    assert sources == ["Es regnet.", "Die Sonne scheint.", "Katzen\tund Hunde."]
    assert targets == ["It is raining.", "The sun is out today."]
    assert gold == {(0, 0)}
    # XTREME's reading: "Es regnet." names no sentence, so the gold pair de-12 en-11 cannot be found
    xtreme = bitext_sides(test)
    assert (xtreme.sources, xtreme.targets) == (sources, targets)
    assert xtreme.source_keys[0] is None and len(xtreme.gold) == 1
    assert xtreme.keyed({(0, 0): 1.5, (1, 1): 1.2}) == {(xtreme.source_keys[1], xtreme.target_keys[1]): 1.2}


def test_bucc_repeated_text_as_xtreme_scores_it() -> None:
    """Sources "x", "x" (de-0, de-1), gold de-0-en-0 and de-1-en-1; mining pairs "x" with one target.
    XTREME deletes the repeated text from its sentence ids: no candidate left, both gold pairs missed,
    F1 0. The jiant reading keeps "x" with both gold pairs: 1 of 1 right, 1 of 2 found, F1 2/3."""
    df = pd.DataFrame({"source": ["x", "x"], "target": ["a", "b"]})
    mined = {(0, 0): 1.1}  # (source "x", target "a")
    expected = {"xtreme": 0.0, "jiant": 200 / 3}
    for duplicates, f1 in expected.items():
        bitext = bitext_sides(df, duplicates)
        assert bitext.sources == ["x"] and bitext.targets == ["a", "b"] and len(bitext.gold) == 2
        candidates = bitext.keyed(mined)
        threshold = best_threshold(candidates, bitext.gold)
        assert bucc_f1(candidates, bitext.gold, threshold)["f1"] == pytest.approx(f1)
    with pytest.raises(ValueError, match="duplicates 'laser'; allowed: xtreme, jiant"):
        bitext_sides(df, "laser")


def test_missing_local_source_is_a_clear_error_for_that_task_only(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"task 'ccg' has no copy on the hub: set `sources\.ccg`.*data/AUTO"):
        prepare_dataset("ccg", tmp_path / "ccg", Sources(hub_mirror=FIXTURES / "hub"))
    gone = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"task 'bucc': `sources.bucc` is {gone}, which does not exist"):
        prepare("bucc", ["de"], tmp_path / "bucc", Sources(local={"bucc": gone}))
    with pytest.raises(DataError, match=r"no fr-en\.\{sample,dev\}\.gold"):
        prepare("bucc", ["fr"], tmp_path / "bucc", Sources(local={"bucc": LOCAL / "bucc2018"}))
    prepare_dataset("mnli", tmp_path / "mnli", Sources(hub_mirror=FIXTURES / "hub", local={"ccg": gone}))


def test_the_grid_plans_without_local_sources(tmp_path: Path) -> None:
    """`snakemake -n` of the paper grid with CCGbank and BUCC named but absent: every job is planned,
    the ccg data set too (its preparation fails alone, with the message above)."""
    overlay = tmp_path / "sources.yaml"
    overlay.write_text(f"results: {tmp_path / 'results'}\nsources: {{ccg: {tmp_path}/no-ccgbank, "
                       f"bucc: {tmp_path}/no-bucc}}\n")
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm", "--configfile",
                           "config.yaml", str(overlay)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "prepare_dataset" in done.stdout and "wildcards: dataset=ccg" in done.stdout


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_offline_hub_fails_at_once_naming_the_data_set_and_command(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With the offline switches jobs set and an empty datasets cache: no retries, a message to act on."""
    import datasets
    import huggingface_hub

    for switch in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(switch, "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # both read their switch at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    block_network(monkeypatch)
    out = tmp_path / "results" / "data" / "train" / "mnli"
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        prepare_dataset("mnli", out, Sources())
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "task 'mnli': cannot load nyu-mll/glue config mnli split train" in message
    assert f"`snakemake --profile profiles/local {out / 'meta.json'}`" in message
    assert not out.exists()


def test_unprepared_cache_names_the_data_set_and_the_command(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # paths relative to the workflow's directory, as the rules pass them
    with pytest.raises(DataError) as err:
        read_meta(Path("results/data/eval/xnli"))
    assert str(err.value).startswith("data set 'xnli' is not prepared: results/data/eval/xnli/meta.json is missing")
    assert "`snakemake --profile profiles/local results/data/eval/xnli/meta.json`" in str(err.value)


def test_training_job_without_its_cache_fails_at_once(tiny_encoder: Path, tmp_path: Path) -> None:
    """`xstilts train` as the rule runs it (relative results folder), offline, with nothing prepared."""
    start = time.perf_counter()
    (tmp_path / "grid.yaml").write_text(f"model: {tiny_encoder}\nrows: [none]\ntargets: [xnli]\n")
    done = subprocess.run([sys.executable, "-m", "xstilts", "train", "target", "none", "mnli", "--configfile",
                           str(ROOT / "config.yaml"), "grid.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert ("data set 'mnli' is not prepared: results/data/train/mnli/meta.json is missing" in done.stderr)
    assert "`snakemake --profile profiles/local results/data/train/mnli/meta.json`" in done.stderr
    assert time.perf_counter() - start < 60 and not (tmp_path / "results" / "checkpoints").exists()


def _hub_splits() -> list:
    """Every hub split the catalogue reads: the datasets' train and dev, every target's (language, split)."""
    splits = [h for ds in DATASETS.values() if ds.on_hub for h in (*ds.train, *ds.dev)]
    return splits + [t.source(lang, split) for t in TARGETS.values() if t.on_hub for lang in t.languages
                     if lang not in t.local_languages for split in t.splits_for(lang)]


def test_every_hub_load_names_the_catalogues_revision() -> None:
    splits = _hub_splits()
    assert set(HUB_REVISIONS) == {h.path for h in splits}
    assert all(h.revision == HUB_REVISIONS[h.path] for h in splits)
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for sha in HUB_REVISIONS.values() if sha is not None)


class FakeHub:
    """`datasets.load_dataset_builder` for one hub repo: serves fixed rows and resolves every revision to
    `commit` (the hub resolves a pinned sha to itself and the main branch to its head)."""

    def __init__(self, rows: list[dict[str, Any]], commit: str) -> None:
        self.rows, self.commit, self.asked = rows, commit, []

    def __call__(self, path: str, name: str | None = None, revision: str | None = None) -> Any:
        import datasets

        self.asked.append((path, name, revision))
        hub = self

        class Builder:
            hash = revision or hub.commit

            def download_and_prepare(self) -> None:
                pass

            def as_dataset(self, split: str) -> datasets.Dataset:
                return datasets.Dataset.from_list(hub.rows)

        return Builder()


def test_hub_loads_read_the_pinned_commit_or_the_configured_one_and_meta_records_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    hub = FakeHub([{"sentence": "good film", "label": 1, "idx": 0}, {"sentence": "bad film", "label": 0, "idx": 1}],
                  commit="c" * 40)
    monkeypatch.setattr(datasets, "load_dataset_builder", hub)
    meta = prepare_dataset("sst2", tmp_path / "pinned", Sources.from_config({"hub_mirror": None}))
    pinned = HUB_REVISIONS["nyu-mll/glue"]
    assert hub.asked == [("nyu-mll/glue", "sst2", pinned)] * 2  # train and validation, at the catalogue's pin
    assert meta["data"] == [{"hub": "nyu-mll/glue", "revision": pinned}]
    assert json.loads((tmp_path / "pinned" / "meta.json").read_text())["data"] == meta["data"]
    hub.asked.clear()
    other = "0123456789abcdef0123456789abcdef01234567"
    meta = prepare_dataset("sst2", tmp_path / "other", Sources.from_config({"revisions": {"nyu-mll/glue": other}}))
    assert hub.asked == [("nyu-mll/glue", "sst2", other)] * 2 and meta["data"] == [{"hub": "nyu-mll/glue",
                                                                                    "revision": other}]
    # an unpinned repo (revision None) is read at the hub's main branch; the commit it resolved to is recorded
    hub = FakeHub([{"tokens": ["Ek", "lees", "."], "pos_tags": [10, 15, 12]}], commit="c" * 40)
    monkeypatch.setattr(datasets, "load_dataset_builder", hub)
    meta = prepare_target("udpos", ["af"], tmp_path / "udpos", Sources())
    assert {a[2] for a in hub.asked} == {HUB_REVISIONS["google/xtreme"]}
    assert meta["data"] == [{"hub": "google/xtreme", "revision": HUB_REVISIONS["google/xtreme"] or "c" * 40}]


def test_local_and_mirror_sources_record_the_folder_and_a_digest_of_the_files_read(tmp_path: Path) -> None:
    meta = prepare_dataset("mnli", tmp_path / "mnli", SOURCES)
    [origin] = meta["data"]
    assert origin["folder"] == str(FIXTURES / "hub") and origin["files"] == 2  # train and validation_matched
    again = prepare_dataset("mnli", tmp_path / "again", SOURCES)
    assert again["data"] == meta["data"] and len(origin["sha256"]) == 64
