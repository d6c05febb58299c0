"""Metrics against hand-computed values (the arithmetic is in the comments), and UD-POS against
XTREME's own regression test."""

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from xstilts.aggregate import cell_scores
from xstilts.benchmarks import XTREME
from xstilts.catalogue import TARGETS
from xstilts.metrics import (
    TAG_F1,
    accuracy,
    mlqa_scores,
    qa_examples,
    qa_totals,
    seqeval_0012_f1,
    seqeval_f1,
    squad_scores,
    squad_v2_scores,
    tag_counts,
    token_accuracy,
)


def test_accuracy():
    # matches at positions 0 and 2: 2 / 4
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_token_accuracy_counts_tokens_not_sentences():
    # sentence 1: 1 of 2 right, sentence 2: 1 of 1 right -> 2 / 3 tokens
    assert token_accuracy([["N", "V"], ["D"]], [["N", "N"], ["D"]]) == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        token_accuracy([["N"]], [["N", "V"]])


def test_seqeval_f1_bio_ner():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # gold entities PER(0-1), LOC(3), ORG(s2); predicted PER(0-1), ORG(3), ORG(s2): 2 correct of 3 and 3
    # P = R = 2/3 -> F1 = 2/3
    assert seqeval_f1(preds, refs) == pytest.approx(200 / 3)


def test_seqeval_f1_default_mode_accepts_i_start():
    # seqeval's default (conlleval) mode reads a leading I-PER as the start of an entity: PER(0-1) matches
    assert seqeval_f1([["I-PER", "I-PER"]], [["B-PER", "I-PER"]]) == pytest.approx(100.0)


def test_seqeval_f1_on_upos_merges_runs():
    refs = [["DET", "NOUN", "NOUN", "VERB", "PUNCT"]]
    preds = [["DET", "NOUN", "ADJ", "VERB", "PUNCT"]]
    # seqeval 1.2.2 splits "NOUN" into tag "N" + type "OUN"; equal types in a row form one chunk.
    # gold chunks: ET(0), OUN(1-2), ERB(3), UNCT(4) = 4; predicted: ET(0), OUN(1), DJ(2), ERB(3), UNCT(4) = 5
    # correct: ET(0), ERB(3), UNCT(4) = 3 -> P = 3/5, R = 3/4, F1 = 2 * 0.6 * 0.75 / 1.35 = 2/3
    assert seqeval_f1(preds, refs) == pytest.approx(200 / 3)
    # 0.0.12 reads whole tags as types (DET, NOUN, ...) and merges the NOUN run alike: the same 2/3
    assert seqeval_0012_f1(preds, refs) == pytest.approx(200 / 3)
    # token accuracy would be 4/5 = 80: the two are different numbers
    assert token_accuracy(preds, refs) == pytest.approx(80.0)


@pytest.mark.filterwarnings("ignore:F-score is ill-defined")  # 1.2.2 finds no chunk in ["X"]
@pytest.mark.parametrize(("refs", "preds", "f1_0012", "f1_122"), [
    # 0.0.12: chunk SCONJ vs CCONJ, different types; 1.2.2: both type "CONJ" (tags S and C)
    ([["SCONJ"]], [["CCONJ"]], 0.0, 100.0),
    # 0.0.12: chunk X = X; 1.2.2: no type after the first letter, no chunk at all
    ([["X"]], [["X"]], 100.0, 0.0),
    # 0.0.12: DET(0), X(1) vs DET(0), INTJ(1): 1 of 2 each way; 1.2.2: DET(0) only vs ET(0), NTJ(1): P 1/2, R 1
    ([["DET", "X"]], [["DET", "INTJ"]], 50.0, 200 / 3),
])
def test_upos_tags_read_as_seqeval_0012_does(refs, preds, f1_0012, f1_122):
    assert seqeval_0012_f1(preds, refs) == pytest.approx(f1_0012)
    assert seqeval_f1(preds, refs) == pytest.approx(f1_122)


def test_seqeval_0012_reads_bio_tags_as_1x_does():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    assert seqeval_0012_f1(preds, refs) == seqeval_f1(preds, refs) == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="as many predicted tags as reference"):
        seqeval_0012_f1([["NOUN"]], [["NOUN", "VERB"]])


def test_udpos_scores_xtreme_mock_data_as_evaluate_test_expects():
    """XTREME's `evaluate_test.py` expects avg_f1 = 70.21746048354693 on its mock UD-POS predictions
    (the per-language F1 of each language in its list, averaged): to float precision."""
    mock = json.loads((Path(__file__).parent / "fixtures" / "xtreme" / "udpos_mock.json").read_text())
    assert mock["languages"] == list(XTREME.languages["udpos"])  # XTREME's order: the sum's order
    score = TAG_F1[TARGETS["udpos"].seqeval]
    per_language = {lang: score(mock["sentences"][lang]["prediction"], mock["sentences"][lang]["gold"])
                    for lang in mock["languages"]}
    assert sum(per_language.values()) / len(per_language) == 70.21746048354693
    # seqeval 1.2.2 on the same predictions: 70.39805810699043, 6 languages differ
    seqeval_122 = {lang: seqeval_f1(mock["sentences"][lang]["prediction"], mock["sentences"][lang]["gold"])
                   for lang in mock["languages"]}
    assert sum(seqeval_122.values()) / len(seqeval_122) == pytest.approx(70.39805810699043, abs=1e-12)
    assert sum(per_language[lang] != seqeval_122[lang] for lang in mock["languages"]) == 6


def test_squad_scores():
    refs = {
        "q1": ["Eiffel Tower"],
        "q2": ["Paris", "France"],
        "q3": ["1889"],
        "q4": ["Berlin"],
    }
    preds = {
        # "the eiffel tower!" -> drop "!" -> drop "the" -> "eiffel tower": EM 1, F1 1
        "q1": "The Eiffel Tower!",
        # [in, paris, france] vs [paris]: 1 common, P = 1/3, R = 1, F1 = 2 (1/3) / (4/3) = 1/2; same for
        # [france]; max over golds = 1/2, EM 0
        "q2": "in Paris, France",
        # q3 has no prediction: 0
        # v1.1 removes ASCII punctuation only: "«berlin»" != "berlin", one token each, nothing common: 0
        "q4": "«Berlin»",
        "unknown": "ignored",
    }
    scores = squad_scores(preds, refs)
    assert scores["exact_match"] == pytest.approx(100 * 1 / 4)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.5) / 4)


def test_squad_scores_refuse_unanswerable():
    with pytest.raises(ValueError, match="squad_v2_scores"):
        squad_scores({"q": ""}, {"q": []})


def test_mlqa_german_articles_and_unicode_punctuation():
    refs = {"a": ["Vertrag von Versailles"], "b": ["Stadt"], "c": ["Berlin"]}
    preds = {
        # lower, drop ".", drop "der" -> "vertrag von versailles": EM 1, F1 1
        "a": "Der Vertrag von Versailles.",
        # "dieser" is no article (\b...\b): [dieser, stadt] vs [stadt]: P 1/2, R 1, F1 2/3, EM 0
        "b": "dieser Stadt",
        # « and » are Unicode punctuation (Pi, Pf): EM 1
        "c": "«Berlin»",
    }
    scores = mlqa_scores(preds, refs, "de")
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)


def test_mlqa_chinese_mixed_segmentation():
    refs = {"a": ["北京"], "b": ["2008年"], "c": ["长城"]}
    preds = {
        # tokens [北, 京, 大, 学] ("。" removed) vs [北, 京]: P 2/4, R 1, F1 = 2 (1/2) / (3/2) = 2/3
        "a": "北京大学。",
        # [2008, 年, 奥, 运, 会] vs [2008, 年]: P 2/5, R 1, F1 = 2 (2/5) / (7/5) = 4/7
        "b": "2008年奥运会",
        # "，" (U+FF0C) is punctuation: [长, 城] == [长, 城]: EM 1
        "c": "长城，",
    }
    scores = mlqa_scores(preds, refs, "zh")
    assert scores["exact_match"] == pytest.approx(100 * 1 / 3)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 4 / 7 + 1) / 3)


def test_mlqa_arabic_replaces_every_al():
    refs = {"a": ["كتاب"], "b": ["هل"], "c": ["مدينة"]}
    preds = {
        # "الكتاب" -> " كتاب" -> "كتاب": EM 1
        "a": "الكتاب",
        # official quirk: the mid-word "ال" of "هلال" is replaced too: "هل " -> "هل": EM 1
        "b": "هلال",
        # [في, مدينة] vs [مدينة] ("ال" of "المدينة" removed): P 1/2, R 1, F1 2/3, EM 0
        "c": "في المدينة",
    }
    scores = mlqa_scores(preds, refs, "ar")
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)


def test_mlqa_vietnamese_spanish_hindi_english():
    # vi: "cái" is removed -> "bàn": EM 1; "những" too
    assert mlqa_scores({"q": "cái bàn"}, {"q": ["bàn"]}, "vi")["exact_match"] == pytest.approx(100.0)
    assert mlqa_scores({"q": "những con mèo"}, {"q": ["con mèo"]}, "vi")["f1"] == pytest.approx(100.0)
    # es: "Los" is removed -> "angeles": EM 1
    assert mlqa_scores({"q": "Los Angeles"}, {"q": ["Angeles"]}, "es")["exact_match"] == pytest.approx(100.0)
    # hi: the danda "।" is punctuation (Po); no articles
    assert mlqa_scores({"q": "भारत।"}, {"q": ["भारत"]}, "hi")["exact_match"] == pytest.approx(100.0)
    # en: "$" is not a Unicode P* character but string.punctuation adds it; "€" is in neither
    assert mlqa_scores({"q": "$100"}, {"q": ["100"]}, "en")["exact_match"] == pytest.approx(100.0)
    assert mlqa_scores({"q": "€100"}, {"q": ["100"]}, "en")["exact_match"] == pytest.approx(0.0)
    # several golds: max over them; missing prediction counts 0 -> (1 + 0) / 2
    scores = mlqa_scores({"q1": "a cat"}, {"q1": ["dog", "the cat"], "q2": ["x"]}, "en")
    assert scores == pytest.approx({"f1": 50.0, "exact_match": 50.0})


def test_mlqa_unknown_language():
    with pytest.raises(ValueError, match="fr"):
        mlqa_scores({"q": "x"}, {"q": ["x"]}, "fr")


def test_squad_v2_scores():
    refs = {"q1": [], "q2": [], "q3": ["the Rhine", "Rhine river"], "q4": ["Rhine river"], "q5": ["The"]}
    preds = {
        "q1": "",  # unanswerable, no answer: EM 1, F1 1
        "q2": "Paris",  # unanswerable, answered: 0, 0
        "q3": "",  # answerable, no answer: 0, 0
        "q4": "river",  # [river] vs [rhine, river]: P 1, R 1/2, F1 2/3, EM 0
        "q5": "",  # the only gold normalises to "" and is dropped: unanswerable, so EM 1, F1 1
    }
    scores = squad_v2_scores(preds, refs)
    assert scores["exact_match"] == pytest.approx(100 * 2 / 5)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 5)
    # a prediction that normalises to nothing ("The.") is "no answer" too
    assert squad_v2_scores({"q": "The."}, {"q": []}) == pytest.approx({"f1": 100.0, "exact_match": 100.0})


def _cell(target: str, split: str, values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"intermediate": "mnli", "target": target, "seed": 1, "language": "de", "split": split,
                          "metric": m, "value": v} for m, v in values.items()])


def test_task_score():
    """A cell's headline (`aggregate.cell_scores`): QA (F1 + EM) / 2, the target's own metric elsewhere."""
    scores = pd.concat([_cell("xquad", "validation", {"f1": 80.0, "exact_match": 70.0}),  # (80 + 70) / 2
                        _cell("xnli", "test", {"accuracy": 50.0}),
                        _cell("panx", "test", {"f1": 61.0})], ignore_index=True)
    assert [TARGETS[t].metric for t in ("xquad", "xnli", "panx")] == ["f1_em", "accuracy", "f1"]
    headline = cell_scores(scores).set_index("target")["value"]
    assert headline.to_dict() == pytest.approx({"xquad": 75.0, "xnli": 50.0, "panx": 61.0})
    # QA without its exact match has no headline
    assert cell_scores(_cell("xquad", "validation", {"f1": 80.0}))["value"].isna().all()


@pytest.mark.parametrize("scorer, language", [("squad", "en"), ("mlqa", "de"), ("squad_v2", "en")])
def test_qa_examples_are_the_per_question_parts_of_the_official_totals(scorer: str, language: str):
    refs = {"q1": ["Eiffel Tower"], "q2": ["Paris", "France"], "q3": ["1889"], "q4": ["der Vertrag"],
            "q5": ["Berlin"]}
    preds = {"q1": "The Eiffel Tower!", "q2": "in Paris, France", "q4": "Vertrag", "q5": "«Berlin»", "x": "ignored"}
    official = {"squad": lambda: squad_scores(preds, refs), "mlqa": lambda: mlqa_scores(preds, refs, language),
                "squad_v2": lambda: squad_v2_scores(preds, refs)}[scorer]()
    examples = qa_examples(preds, refs, scorer, language)
    # SQuAD: "the" dropped (q1), [in, paris, france] vs [paris] F1 1/2 (q2), no prediction (q3), [vertrag] vs
    # [der, vertrag] F1 2/3 (q4), "«berlin»" not "berlin" (q5). MLQA in German: "the" kept, [the, eiffel,
    # tower] vs [eiffel, tower] F1 4/5 (q1), "der" dropped (q4), Unicode punctuation dropped (q5).
    expected = {"squad": [(1.0, 1.0), (0.5, 0.0), (0.0, 0.0), (2 / 3, 0.0), (0.0, 0.0)],
                "mlqa": [(0.8, 0.0), (0.5, 0.0), (0.0, 0.0), (1.0, 1.0), (1.0, 1.0)]}
    expected["squad_v2"] = expected["squad"]
    assert [x for pair in examples for x in pair] == pytest.approx([x for pair in expected[scorer] for x in pair])
    assert qa_totals(examples) == official


@pytest.mark.parametrize(("tags", "version"), [(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "1.2.2"),
                                               (["NOUN", "VERB", "ADJ", "X", "PUNCT", "SCONJ"], "0.0.12")])
def test_tag_counts_per_sentence_add_up_to_the_corpus_f1(tags: list[str], version: str) -> None:
    """The paired bootstrap resamples tagged sentences by their entity counts: summed, they are seqeval's F1."""
    rng = random.Random(3)
    for _ in range(5):
        refs = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(30)]
        preds = [[t if rng.random() < 0.6 else rng.choice(tags) for t in r] for r in refs]
        tp, predicted, gold = map(sum, zip(*tag_counts(preds, refs, version), strict=True))
        assert 200 * tp / (predicted + gold) == pytest.approx(TAG_F1[version](preds, refs))
