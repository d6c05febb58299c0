"""Decoding predictions back to the data: QA spans (n-best, max answer length, max context, SQuAD 2.0
no-answer) mapped to the exact original text, tagging labels mapped to words, each then scored end to
end by the official metrics; and the retrieval targets evaluated from an encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import sentences
from xstilts import metrics
from xstilts.data import Sources, prepare_target
from xstilts.demo.pretrain import train_tokenizer
from xstilts.evaluation import decode_spans, score_table, sentence_labels
from xstilts.features import Features, tokenise
from xstilts.jobs import evaluate_cell
from xstilts.models import build_model, load_encoder

FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = Sources(hub_mirror=FIXTURES / "hub")


def peaked(feats: Features, f: int, start: int, end: int, null: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of window `f` that favour (start, end), with the <s> logits summing to `null`."""
    n = len(feats.columns["input_ids"][f])
    s, e = np.full(n, -5.0), np.full(n, -5.0)
    s[start], e[end] = 5.0, 5.0
    s[0], e[0] = null / 2, null / 2
    return s, e


def qa_table(name: str, languages: list[str], tmp_path: Path) -> dict[str, pd.DataFrame]:
    meta = prepare_target(name, languages, tmp_path, SOURCES)
    return {lang: pd.read_parquet(tmp_path / split / f"{lang}.parquet")
            for split, langs in meta["rows"].items() for lang in langs}


@pytest.fixture(scope="module")
def tok():
    lines = [*sentences(300), "北京是中华人民共和国的首都，也是全国的政治和文化中心。北京已有三千多年的历史。",
             "تقع مدينة القاهرة على ضفاف نهر النيل، وهي عاصمة جمهورية مصر العربية."]
    return train_tokenizer(lines, vocab_size=400)


def test_decoded_spans_are_the_exact_original_text_and_score_100(tok, tmp_path: Path) -> None:
    """Logits that point at each labelled answer decode to it exactly (CJK, Arabic), and MLQA's and
    SQuAD's scripts give 100 on them."""
    for name, lang in (("xquad", "zh"), ("xquad", "ar"), ("mlqa", "zh")):
        df = qa_table(name, [lang], tmp_path / name)[lang]
        feats = tokenise("qa", df, tok, 40, doc_stride=16)
        outputs = [peaked(feats, f, feats.columns["start_positions"][f], feats.columns["end_positions"][f])
                   for f in range(len(feats))]
        answers = decode_spans(df, feats, outputs)
        refs = dict(zip(df["id"], df["answer_texts"].map(list), strict=True))
        assert answers == {qid: texts[0] for qid, texts in refs.items()}
        assert metrics.mlqa_scores(answers, refs, lang) == {"f1": 100.0, "exact_match": 100.0}
        assert metrics.squad_scores(answers, refs) == {"f1": 100.0, "exact_match": 100.0}


def one_window(tok) -> tuple[pd.DataFrame, Features]:
    context = "Anna lives in Paris and works in Rome ."
    df = pd.DataFrame({"id": ["q"], "context": [context], "question": ["where does anna work"],
                       "answer_texts": [["Rome"]], "answer_starts": [[context.index("Rome")]]})
    return df, tokenise("qa", df, tok, 64)


def tokens_of(feats: Features, context: str, word: str) -> tuple[int, int]:
    """The first and last tokens of `word` in the first window."""
    start, end = context.index(word), context.index(word) + len(word)
    offsets = [(j, o) for j, o in enumerate(feats.columns["offsets"][0]) if o is not None]
    return next(j for j, o in offsets if o[1] > start), next(j for j, o in reversed(offsets) if o[0] < end)


def test_squad_v2_no_answer_when_the_null_score_wins(tok) -> None:
    df, feats = one_window(tok)
    context = df["context"][0]
    rome = tokens_of(feats, context, "Rome")
    span = peaked(feats, 0, *rome, null=9.0)  # span 10 > null 9
    assert decode_spans(df, feats, [span], allow_empty=True) == {"q": "Rome"}
    null = peaked(feats, 0, *rome, null=11.0)  # null 11 > span 10
    assert decode_spans(df, feats, [null], allow_empty=True) == {"q": ""}
    assert decode_spans(df, feats, [null]) == {"q": "Rome"}  # SQuAD v1.1 always answers
    refs = {"q": ["Rome"], "unanswerable": []}
    assert metrics.squad_v2_scores({"q": "Rome", "unanswerable": ""}, refs) == {"f1": 100.0, "exact_match": 100.0}


def test_spans_respect_order_and_max_answer_length(tok) -> None:
    df, feats = one_window(tok)
    context = df["context"][0]
    (anna, _), (rome, rome_end) = tokens_of(feats, context, "Anna"), tokens_of(feats, context, "Rome")
    start, end = peaked(feats, 0, rome, anna)  # end before start: not a span
    end[rome_end] = 1.0  # the best valid span: Rome
    assert decode_spans(df, feats, [(start, end)]) == {"q": "Rome"}
    start, end = peaked(feats, 0, anna, rome_end)  # "Anna ... Rome": many tokens
    end[anna + 2] = 0.0  # a 3-token span, second best
    assert decode_spans(df, feats, [(start, end)], max_answer_length=rome_end - anna + 1) == {
        "q": context[:context.index("Rome") + 4]}
    offsets = feats.columns["offsets"][0]
    assert decode_spans(df, feats, [(start, end)], max_answer_length=3) == {"q": context[:offsets[anna + 2][1]]}


def test_spans_start_only_where_their_window_has_the_most_context(tok) -> None:
    """Two windows share tokens; a span may start at one only in the window where it is more central."""
    context = " ".join(sentences(8, seed=2))
    df = pd.DataFrame({"id": ["q"], "context": [context], "question": ["who"], "answer_texts": [[]],
                       "answer_starts": [[]]})
    feats = tokenise("qa", df, tok, 40, doc_stride=12)
    offsets, max_context = feats.columns["offsets"], feats.columns["max_context"]
    # the last context token of window 0 is shared with window 1, which has the more context on it
    shared = max(j for j, o in enumerate(offsets[0]) if o is not None)
    j2 = offsets[1].index(offsets[0][shared])
    assert not max_context[0][shared] and max_context[1][j2]
    high = peaked(feats, 0, shared, shared)  # score 12 in window 0, where the token is at the edge
    high[0][shared] = 7.0
    low = peaked(feats, 1, j2 + 1, j2 + 1)  # score 10 in window 1, one token later
    later = offsets[1][j2 + 1]
    assert decode_spans(df, feats, [high, low]) == {"q": context[later[0]:later[1]]}
    everywhere = Features("qa", {**feats.columns, "max_context": [[True] * len(m) for m in max_context]},
                          feats.lengths)
    edge = offsets[0][shared]
    assert decode_spans(df, everywhere, [high, low]) == {"q": context[edge[0]:edge[1]]}


def test_tag_predictions_map_back_to_words_and_score(tok, tmp_path: Path) -> None:
    meta = prepare_target("panx", ["en", "ar"], tmp_path, SOURCES)
    labels = meta["labels"]
    for lang in ("en", "ar"):
        df = pd.read_parquet(tmp_path / "test" / f"{lang}.parquet")
        feats = tokenise("tagging", df, tok, 64)
        outputs = [np.array([t if t >= 0 else 0 for t in row]) for row in feats.columns["labels"]]
        preds = [[labels[t] for t in sentence] for sentence in sentence_labels(feats, outputs, len(df))]
        golds = [[labels[t] for t in tags] for tags in df["tags"]]
        assert preds == golds
        assert metrics.seqeval_f1(preds, golds) == 100.0


def test_every_word_of_a_long_sentence_is_scored(tiny_encoder: Path) -> None:
    """A sentence of 3 x max_length words: every gold tag is predicted and scored, as XTREME scores it
    (truncated to max_length tokens, only the first third or less would count)."""
    encoder, tok = load_encoder(tiny_encoder)
    model = build_model(encoder, {"udpos": {"family": "tagging", "num_labels": 2}})
    with torch.no_grad():  # a head that tags every token NOUN
        model.heads["udpos"].out.weight.zero_()
        model.heads["udpos"].out.bias.copy_(torch.tensor([1.0, 0.0]))
    max_length = 16
    words = sentences(20, seed=5)
    words = " ".join(words).split()[: 3 * max_length]
    assert len(words) == 3 * max_length
    df = pd.DataFrame({"tokens": [words], "tags": [[0] * 8 + [1] * 40]})  # 8 of 48 words are NOUN
    options = {"family": "tagging", "labels": ["NOUN", "VERB"], "max_length": max_length,
               "device": torch.device("cpu")}
    scores = score_table(model, "udpos", df, tok, metric="token_accuracy", **options)
    assert scores["token_accuracy"] == pytest.approx(100 * 8 / 48)
    # only the last word is a VERB: gold chunks NOUN(0-46), VERB(47); predicted NOUN(0-47): F1 0 (the
    # words that fit in one window would score 100)
    df = pd.DataFrame({"tokens": [words], "tags": [[0] * 47 + [1]]})
    assert score_table(model, "udpos", df, tok, metric="f1", seqeval="0.0.12", **options)["f1"] == 0.0


def test_retrieval_targets_from_an_encoder(tiny_encoder: Path, tmp_path: Path) -> None:
    """BUCC from the original files (distractors included) and Tatoeba through `evaluate_cell`; an
    encoder finds a sentence's identical copy (Tatoeba against itself scores 100)."""
    data = tmp_path / "data"
    prepare_target("bucc", ["de"], data / "bucc", Sources(local={"bucc": FIXTURES / "local" / "bucc2018"}))
    settings = {"max_length": 64, "batch_size": 4, "k": 2}
    scores = evaluate_cell(target="bucc", model_dir=tiny_encoder, data_dir=data, out=tmp_path / "bucc.parquet",
                           hparams={}, retrieval_settings=settings, seed=3)
    assert set(zip(scores["split"], scores["metric"], strict=True)) == {
        (s, m) for s in ("validation", "test") for m in ("precision", "recall", "f1")}
    assert scores["value"].between(0, 100).all()
    assert dict(zip(scores["split"], scores["n_examples"], strict=True)) == {"validation": 2, "test": 1}
    facts = json.loads(pd.read_parquet(tmp_path / "bucc.parquet")["run_facts"].iat[0])  # what it was made with
    assert facts["seed"] == 3 and facts["deterministic"] is False and facts["device"] == "cpu"
    assert facts["versions"]["torch"] == torch.__version__ and facts["threads"]["torch"] == torch.get_num_threads()

    copies = pd.DataFrame({"source": sentences(12, seed=7), "target": sentences(12, seed=7)})
    assert copies["source"].is_unique
    (data / "tatoeba" / "validation").mkdir(parents=True)
    copies.to_parquet(data / "tatoeba" / "validation" / "de.parquet")
    (data / "tatoeba" / "meta.json").write_text('{"languages": ["de"], "rows": {"validation": {"de": 12}}}')
    scores = evaluate_cell(target="tatoeba", model_dir=tiny_encoder, data_dir=data,
                           out=tmp_path / "tatoeba.parquet", hparams={}, retrieval_settings=settings, seed=3)
    assert scores[["split", "metric", "value", "n_examples"]].to_dict("records") == [
        {"split": "validation", "metric": "accuracy", "value": 100.0, "n_examples": 12}]


def test_bucc_repeated_text_through_evaluate_cell(tiny_encoder: Path, tmp_path: Path) -> None:
    """The minimal case of `test_bucc_repeated_text_as_xtreme_scores_it` end to end: F1 0 by default
    (XTREME), 2/3 with `duplicates: jiant`; any pooling and layer mine the one pair there is."""
    data = tmp_path / "data"
    table = pd.DataFrame({"source": ["x", "x"], "target": ["cat", "dog"]})
    for split in ("validation", "test"):
        (data / "bucc" / split).mkdir(parents=True)
        table.to_parquet(data / "bucc" / split / "de.parquet")
    (data / "bucc" / "meta.json").write_text('{"languages": ["de"]}')
    expected = [({}, 0.0), ({"duplicates": "jiant"}, 200 / 3),
                ({"duplicates": "jiant", "pooling": "cls", "layer": 1}, 200 / 3)]
    for settings, f1 in expected:
        scores = evaluate_cell(target="bucc", model_dir=tiny_encoder, data_dir=data, out=tmp_path / "bucc.parquet",
                               hparams={}, retrieval_settings=settings, seed=1)
        assert scores.loc[scores["metric"] == "f1", "value"].tolist() == pytest.approx([f1, f1])
        assert scores["n_examples"].tolist() == [2] * 6
    with pytest.raises(ValueError, match="pooling='max'; allowed: mean, cls"):
        evaluate_cell(target="bucc", model_dir=tiny_encoder, data_dir=data, out=tmp_path / "bad.parquet",
                      hparams={}, retrieval_settings={"pooling": "max"}, seed=1)
    assert not (tmp_path / "bad.parquet").exists()


def test_scores_say_what_data_they_came_from(tiny_encoder: Path, tmp_path: Path) -> None:
    """The run facts of a scores.parquet copy the prepared data's origins and not-comparable languages:
    BUCC from the hub (its mirror here) holds gold pairs only."""
    data = tmp_path / "data"
    meta = prepare_target("bucc", ["de"], data / "bucc", SOURCES)
    evaluate_cell(target="bucc", model_dir=tiny_encoder, data_dir=data, out=tmp_path / "bucc.parquet", hparams={},
                  retrieval_settings={"max_length": 64, "batch_size": 4, "k": 2}, seed=1)
    facts = json.loads(pd.read_parquet(tmp_path / "bucc.parquet")["run_facts"].iat[0])
    assert facts["data"] == {"eval/bucc": {"origins": meta["data"], "not_comparable": meta["not_comparable"]}}
    assert facts["data"]["eval/bucc"]["origins"][0]["folder"] == str(FIXTURES / "hub")
    assert "gold pairs only" in facts["data"]["eval/bucc"]["not_comparable"]["de"]
