"""Decoding predictions back to the data: QA spans (n-best, max answer length, max context, SQuAD 2.0
no-answer) mapped to the exact original text, tagging labels mapped to words, each then scored end to
end by the official metrics; the retrieval targets evaluated from an encoder; and the evaluation job on
trained checkpoints: per-example predictions that add up to the headline, lengths from the checkpoint."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from tests import test_training
from tests.conftest import sentences
from xstilts import metrics
from xstilts.aggregate import cell_scores
from xstilts.catalogue import TARGETS
from xstilts.config import ConfigError, load_config
from xstilts.data import Sources, prepare_target
from xstilts.demo.pretrain import train_tokenizer
from xstilts.errors import DataError
from xstilts.evaluation import evaluate_table, score_table
from xstilts.families import Scoring, family
from xstilts.families.qa import decode_spans
from xstilts.families.tagging import sentence_labels
from xstilts.features import Features
from xstilts.grid import Grid
from xstilts.jobs import evaluate, train
from xstilts.layout import SPEC_FILE
from xstilts.models import build_model, load_encoder, load_model
from xstilts.settings import RetrievalSettings, RobustnessSettings
from xstilts.specs import EvaluateSpec, TrainSpec, read_spec

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = Sources(hub_mirror=FIXTURES / "hub")
CPU = torch.device("cpu")


def make_grid(results: Path, model: Path, targets: list[str], **overrides: Any) -> Grid:
    """config.yaml with the baseline row alone, these targets, `model` as the base model."""
    return Grid(load_config([ROOT / "config.yaml"], overrides={
        "results": str(results), "model": str(model), "rows": ["none"], "targets": targets, **overrides}))


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
        feats = family("qa").tokenise(df, tok, 40, doc_stride=16)
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
    return df, family("qa").tokenise(df, tok, 64)


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
    feats = family("qa").tokenise(df, tok, 40, doc_stride=12)
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
    everywhere = Features({**feats.columns, "max_context": [[True] * len(m) for m in max_context]}, feats.lengths)
    edge = offsets[0][shared]
    assert decode_spans(df, everywhere, [high, low]) == {"q": context[edge[0]:edge[1]]}


def test_tag_predictions_map_back_to_words_and_score(tok, tmp_path: Path) -> None:
    meta = prepare_target("panx", ["en", "ar"], tmp_path, SOURCES)
    labels = meta["labels"]
    for lang in ("en", "ar"):
        df = pd.read_parquet(tmp_path / "test" / f"{lang}.parquet")
        feats = family("tagging").tokenise(df, tok, 64)
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
    options = {"max_length": max_length, "device": CPU}
    scores = score_table(model, "udpos", Scoring("tagging", "token_accuracy", ("NOUN", "VERB")), df, tok, **options)
    assert scores["token_accuracy"] == pytest.approx(100 * 8 / 48)
    # only the last word is a VERB: gold chunks NOUN(0-46), VERB(47); predicted NOUN(0-47): F1 0 (the
    # words that fit in one window would score 100)
    df = pd.DataFrame({"tokens": [words], "tags": [[0] * 47 + [1]]})
    scoring = Scoring("tagging", "f1", ("NOUN", "VERB"), seqeval="0.0.12")
    assert score_table(model, "udpos", scoring, df, tok, **options)["f1"] == 0.0



RETRIEVAL = {"defaults": {"max_length": 64, "batch_size": 4, "k": 2}, "bucc": {"k": 2}}  # (config.yaml sets bucc k: 4)


def test_retrieval_targets_from_an_encoder(tiny_encoder: Path, tmp_path: Path) -> None:
    """BUCC from the original files (distractors included) and Tatoeba through the evaluation job; an
    encoder finds a sentence's identical copy (Tatoeba against itself scores 100, every sentence's
    prediction right)."""
    grid = make_grid(tmp_path, tiny_encoder, ["bucc", "tatoeba"], retrieval=RETRIEVAL)
    prepare_target("bucc", ["de"], grid.layout.eval_data("bucc"),
                   Sources(local={"bucc": FIXTURES / "local" / "bucc2018"}))
    spec = grid.evaluate("none", "bucc", 3)
    assert spec.model == tiny_encoder and spec.retrieval == RetrievalSettings(max_length=64, batch_size=4, k=2)
    scores = evaluate(spec)
    assert set(zip(scores["split"], scores["metric"], strict=True)) == {
        (s, m) for s in ("validation", "test") for m in ("precision", "recall", "f1")}
    assert scores["value"].between(0, 100).all()
    assert dict(zip(scores["split"], scores["n_examples"], strict=True)) == {"validation": 2, "test": 1}
    facts = json.loads(pd.read_parquet(spec.out)["run_facts"].iat[0])  # what it was made with
    assert facts["seed"] == 3 and facts["deterministic"] is False and facts["device"] == "cpu"
    assert facts["versions"]["torch"] == torch.__version__ and facts["threads"]["torch"] == torch.get_num_threads()
    assert read_spec(spec.out.parent) == spec  # the job's spec beside its scores
    mined = pd.read_parquet(spec.predictions)
    assert set(mined["split"]) == {"validation", "test"} and mined["score"].isna().all()  # F1: corpus-level

    copies = pd.DataFrame({"source": sentences(12, seed=7), "target": sentences(12, seed=7)})
    assert copies["source"].is_unique
    data = grid.layout.eval_data("tatoeba")
    (data / "validation").mkdir(parents=True)
    copies.to_parquet(data / "validation" / "de.parquet")
    (data / "meta.json").write_text('{"languages": ["de"], "rows": {"validation": {"de": 12}}}')
    spec = grid.evaluate("none", "tatoeba", 3)
    scores = evaluate(spec)
    assert scores[["split", "metric", "value", "n_examples"]].to_dict("records") == [
        {"split": "validation", "metric": "accuracy", "value": 100.0, "n_examples": 12}]
    found = pd.read_parquet(spec.predictions)
    keys = found[["language", "split", "condition"]].drop_duplicates()
    assert keys.values.tolist() == [["de", "validation", "clean"]]
    assert found["id"].tolist() == found["prediction"].tolist() == found["gold"].tolist() == [str(i) for i in range(12)]
    assert found["score"].tolist() == [100.0] * 12


def test_bucc_repeated_text_through_the_evaluation_job(tiny_encoder: Path, tmp_path: Path) -> None:
    """The minimal case of `test_bucc_repeated_text_as_xtreme_scores_it` end to end: F1 0 by default
    (XTREME), 2/3 with `duplicates: jiant`; any pooling and layer mine the one pair there is."""
    grid = make_grid(tmp_path, tiny_encoder, ["bucc"])
    data = grid.layout.eval_data("bucc")
    table = pd.DataFrame({"source": ["x", "x"], "target": ["cat", "dog"]})
    for split in ("validation", "test"):
        (data / split).mkdir(parents=True)
        table.to_parquet(data / split / "de.parquet")
    (data / "meta.json").write_text('{"languages": ["de"]}')
    spec = grid.evaluate("none", "bucc", 1)
    expected = [({}, 0.0), ({"duplicates": "jiant"}, 200 / 3),
                ({"duplicates": "jiant", "pooling": "cls", "layer": 1}, 200 / 3)]
    for settings, f1 in expected:
        scores = evaluate(replace(spec, retrieval=RetrievalSettings.from_dict(settings)))
        assert scores.loc[scores["metric"] == "f1", "value"].tolist() == pytest.approx([f1, f1])
        assert scores["n_examples"].tolist() == [2] * 6
    bad = replace(spec, out=tmp_path / "bad" / "scores.parquet", predictions=tmp_path / "bad" / "predictions.parquet")
    with pytest.raises(ValueError, match="pooling='max'; allowed: mean, cls"):
        evaluate(replace(bad, retrieval=RetrievalSettings.from_dict({"pooling": "max"})))
    with pytest.raises(ValueError, match="pooling 'max'; allowed: mean, cls"):  # past the settings' own check
        evaluate(replace(bad, retrieval=RetrievalSettings(pooling="max")))  # type: ignore[arg-type]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match=r"retrieval\.bucc\.pooling: 'max' is not allowed"):  # the config refuses
        make_grid(tmp_path, tiny_encoder, ["bucc"], retrieval={"bucc": {"pooling": "max"}})


def test_scores_say_what_data_they_came_from(tiny_encoder: Path, tmp_path: Path) -> None:
    """The run facts of a scores.parquet copy the prepared data's origins and not-comparable languages:
    BUCC from the hub (its mirror here) holds gold pairs only."""
    grid = make_grid(tmp_path, tiny_encoder, ["bucc"], retrieval=RETRIEVAL)
    meta = prepare_target("bucc", ["de"], grid.layout.eval_data("bucc"), SOURCES)
    spec = grid.evaluate("none", "bucc", 1)
    evaluate(spec)
    facts = json.loads(pd.read_parquet(spec.out)["run_facts"].iat[0])
    assert facts["data"] == {"eval/bucc": {"origins": meta["data"], "not_comparable": meta["not_comparable"]}}
    assert facts["data"]["eval/bucc"]["origins"][0]["folder"] == str(FIXTURES / "hub")
    assert "gold pairs only" in facts["data"]["eval/bucc"]["not_comparable"]["de"]


# --- the evaluation job on trained checkpoints ------------------------------------------------------

# Tiny trainings: XNLI from MNLI-like pairs, XQuAD from SQuAD-like questions with long contexts.
TRAINING = {"save_every": 0,
            "defaults": {"lr": 1e-3, "batch_size": 8, "grad_accum": 1, "epochs": 1, "max_length": 32,
                         "eval_batch_size": 8, "dropout": 0.0},
            "tasks": {"mnli": {"max_length": 24}, "squad": {"grad_accum": 1, "max_length": 48, "doc_stride": 16}}}
EVAL_TABLES = {"xnli": {"validation": {"en": 10, "de": 7}, "test": {"en": 9, "de": 6}},
               "xquad": {"validation": {"en": 5, "zh": 4}}}


def write_prepared(folder: Path, tables: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    """A prepared cache by hand: `name.parquet` (or `split/lang.parquet`) tables and meta.json."""
    for name, df in tables.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(folder / f"{name}.parquet")
    (folder / "meta.json").write_text(json.dumps(meta))


def eval_table(target: str, n: int, seed: int) -> pd.DataFrame:
    return test_training.classification_table(n, seed) if target == "xnli" else test_training.qa_table(n, seed)


@pytest.fixture(scope="module")
def trained(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Grid:
    """The baseline row's XNLI (MNLI) and XQuAD (SQuAD) models, trained by the training job, and the two
    targets' data on two languages each."""
    results = tmp_path_factory.mktemp("results")
    grid = make_grid(results, tiny_encoder, ["xnli", "xquad"], training=TRAINING)
    labels = {"mnli": list(TARGETS["xnli"].labels), "squad": []}
    for dataset, table in (("mnli", test_training.classification_table), ("squad", test_training.qa_table)):
        write_prepared(grid.layout.train_data(dataset), {"train": table(32, 1), "dev": table(8, 2)},
                       {"name": dataset, "labels": labels[dataset]})
    for target, splits in EVAL_TABLES.items():
        tables = {f"{split}/{lang}": eval_table(target, n, 10 + i)
                  for split, langs in splits.items() for i, (lang, n) in enumerate(langs.items())}
        write_prepared(grid.layout.eval_data(target), tables,
                       {"name": target, "labels": list(TARGETS[target].labels), "languages": ["en", "de"],
                        "rows": splits})
    for trainset in ("mnli", "squad"):
        train(grid.train_target("none", trainset, 1))
    return grid


def test_predictions_are_one_row_per_example_and_average_to_the_headline(trained: Grid, tmp_path: Path) -> None:
    """predictions.parquet: one row per example of every language, split and condition, with its id, the
    prediction and gold as text, and a score on the headline's scale whose mean is the headline: accuracy
    (XNLI), (F1 + EM) / 2 (XQuAD). A perturbation adds rows and leaves the clean ones as they were."""
    robustness = RobustnessSettings(conditions=("char_noise",), sample=1.0)
    for target in ("xnli", "xquad"):
        plain = replace(trained.evaluate("none", target, 1), out=tmp_path / "plain" / target / "scores.parquet",
                        predictions=tmp_path / "plain" / target / "predictions.parquet")
        spec = replace(plain, conditions=("clean", "char_noise"), robustness=robustness, perturbed=tmp_path / "cache",
                       out=tmp_path / target / "scores.parquet", predictions=tmp_path / target / "predictions.parquet")
        scores = evaluate(spec)
        clean_alone = evaluate(plain)
        pd.testing.assert_frame_equal(scores[scores["condition"] == "clean"].reset_index(drop=True), clean_alone)
        predictions = pd.read_parquet(spec.predictions)
        keys = ["language", "split", "condition"]
        report_split = TARGETS[target].report_split  # perturbations: on the split the tables show only
        assert sorted(map(tuple, predictions[keys].drop_duplicates().values)) == sorted(
            (lang, split, condition) for split, langs in EVAL_TABLES[target].items() for lang in langs
            for condition in ("clean", "char_noise") if condition == "clean" or split == report_split)
        for (lang, split, condition), rows in predictions.groupby(keys):
            df = pd.read_parquet(spec.data / split / f"{lang}.parquet")
            ids = df["id"].tolist() if "id" in df else [str(i) for i in range(len(df))]
            assert rows["id"].tolist() == ids  # one row per example, in table order, under every condition
            here = scores[(scores["language"] == lang) & (scores["split"] == split)
                          & (scores["condition"] == condition)]
            assert set(here["n_examples"]) == {len(df)}
            value = dict(zip(here["metric"], here["value"], strict=True))
            if target == "xnli":
                assert rows["gold"].tolist() == [TARGETS["xnli"].labels[y] for y in df["label"]]
                assert set(rows["prediction"]) <= set(TARGETS["xnli"].labels)
                assert set(rows["score"]) <= {0.0, 100.0}
                headline = value["accuracy"]
            else:
                assert rows["gold"].map(json.loads).tolist() == df["answer_texts"].map(list).tolist()
                if condition == "clean":
                    assert all(p in c for p, c in zip(rows["prediction"], df["context"], strict=True))
                headline = (value["f1"] + value["exact_match"]) / 2
            assert rows["score"].notna().all() and rows["score"].between(0, 100).all()
            assert rows["score"].mean() == pytest.approx(headline, abs=1e-9)
        # the aggregate's headline of each language (clean, report split) is the mean of its examples' scores
        report = (predictions["condition"] == "clean") & (predictions["split"] == TARGETS[target].report_split)
        clean = predictions[report]
        cells = cell_scores(scores.assign(intermediate="none", target=target, seed=1)).set_index("language")["value"]
        assert cells.to_dict() == pytest.approx(clean.groupby("language")["score"].mean().to_dict(), abs=1e-9)
    # each perturbed table was made once, by the first cell that needed it, and is read back by the others
    cached = sorted((tmp_path / "cache").rglob("*.parquet"))
    assert len(cached) == sum(len(splits[TARGETS[t].report_split]) for t, splits in EVAL_TABLES.items())
    times = [p.stat().st_mtime_ns for p in cached]
    again = replace(trained.evaluate("none", "xnli", 1), conditions=("clean", "char_noise"), robustness=robustness,
                    perturbed=tmp_path / "cache", out=tmp_path / "again" / "scores.parquet",
                    predictions=tmp_path / "again" / "predictions.parquet")
    pd.testing.assert_frame_equal(evaluate(again), pd.read_parquet(tmp_path / "xnli" / "scores.parquet")[
        ["language", "split", "condition", "metric", "value", "n_examples"]])
    assert [p.stat().st_mtime_ns for p in cached] == times


def test_perturbations_are_scored_on_a_sample_against_the_clean_scores_of_the_same_examples(
        trained: Grid, tmp_path: Path) -> None:
    """With `sample` < 1 a perturbation scores a seeded sample of the examples, and `clean_sample` holds the clean
    predictions of those examples (no forward pass): the reference of its drops."""
    spec = replace(trained.evaluate("none", "xnli", 1), conditions=("clean", "clean_sample", "char_noise"),
                   robustness=RobustnessSettings(conditions=("char_noise",), sample=0.5), perturbed=tmp_path / "cache",
                   out=tmp_path / "scores.parquet", predictions=tmp_path / "predictions.parquet")
    scores = evaluate(spec).set_index(["language", "split", "condition", "metric"])
    predictions = pd.read_parquet(spec.predictions)
    for lang, n in EVAL_TABLES["xnli"]["test"].items():
        rows = predictions[(predictions["language"] == lang) & (predictions["split"] == "test")]
        clean, sample, noisy = (rows[rows["condition"] == c].set_index("id") for c in ("clean", "clean_sample",
                                                                                      "char_noise"))
        assert len(sample) == len(noisy) == round(n / 2) and list(sample.index) == list(noisy.index)
        pd.testing.assert_frame_equal(sample.drop(columns="condition"),
                                      clean.loc[sample.index].drop(columns="condition"))
        assert scores.loc[(lang, "test", "clean_sample", "accuracy"), "value"] == pytest.approx(sample["score"].mean())
        assert scores.loc[(lang, "test", "char_noise", "accuracy"), "n_examples"] == len(sample)
    assert "clean_sample" not in set(predictions[predictions["split"] == "validation"]["condition"])


def test_evaluation_takes_the_checkpoints_lengths_not_the_configs(trained: Grid, tmp_path: Path) -> None:
    """A phase-(iii) model is evaluated with the max length, stride and batch size it was trained with (its
    `_spec.json`), whatever the config says at evaluation time; a checkpoint without its spec is refused."""
    model_dir = trained.layout.target_model("none", "squad", 1)
    made = read_spec(model_dir)
    assert isinstance(made, TrainSpec) and made.trainset == "squad"
    hp = made.hparams["squad"]
    assert (hp.max_length, hp.doc_stride) == (48, 16)
    training = {**TRAINING, "tasks": {"squad": {"max_length": 256, "doc_stride": 64, "eval_batch_size": 3}}}
    now = make_grid(trained.layout.root, trained.config["model"], ["xnli", "xquad"], training=training)
    assert (now.hparams("squad").max_length, now.hparams("squad").doc_stride) == (256, 64)
    spec = replace(now.evaluate("none", "xquad", 1), out=tmp_path / "scores.parquet",
                   predictions=tmp_path / "predictions.parquet")
    scores = evaluate(spec)
    predictions = pd.read_parquet(spec.predictions)

    model, tokenizer = load_model(model_dir)
    scoring = Scoring.of(TARGETS["xquad"])
    differs = []
    for lang in EVAL_TABLES["xquad"]["validation"]:
        df = pd.read_parquet(spec.data / "validation" / f"{lang}.parquet")
        options = {"language": lang, "batch_size": hp.eval_batch_size, "device": CPU}
        expected = evaluate_table(model, "squad", scoring, df, tokenizer, max_length=hp.max_length,
                                  doc_stride=hp.doc_stride, **options)
        got = scores[scores["language"] == lang]
        assert dict(zip(got["metric"], got["value"], strict=True)) == expected.metrics
        assert predictions.loc[predictions["language"] == lang, "prediction"].tolist() == expected.predictions
        configured = evaluate_table(model, "squad", scoring, df, tokenizer, max_length=256, doc_stride=64, **options)
        differs.append(configured.predictions != expected.predictions)
    assert any(differs)  # the config's lengths would have given other answers

    unrecorded = tmp_path / "unrecorded"
    shutil.copytree(model_dir, unrecorded)
    (unrecorded / SPEC_FILE).unlink()
    old = replace(spec, model=unrecorded, out=tmp_path / "old" / "scores.parquet",
                  predictions=tmp_path / "old" / "predictions.parquet")
    with pytest.raises(DataError, match=f"{unrecorded / SPEC_FILE} is missing or is not a phase-\\(iii\\)"):
        evaluate(old)
    assert not (tmp_path / "old").exists()


def test_evaluate_spec_round_trips_through_its_json(trained: Grid) -> None:
    spec = trained.evaluate("none", "xquad", 1)
    assert isinstance(spec, EvaluateSpec) and spec.retrieval is None
    evaluate(spec)
    assert read_spec(spec.out.parent) == spec
