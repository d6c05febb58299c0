"""The demo's synthetic hub mirror: layout, hub schemas, exact labels and spans, determinism, learnability."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts.catalogue import DATASETS, NER_TAGS, TARGETS, UPOS_TAGS, HubSplit
from xstilts.demo.world import DemoSizes, generate_hub_mirror
from xstilts.languages import TYDIQA_PREFIXES

# Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Bengali, Tamil, Thai, Georgian, Hangul, Han, Kana.
LANGUAGES = {
    "xnli": ["en", "de", "ru", "zh", "ar"],
    "pawsx": ["en", "ja", "ko"],
    "udpos": ["en", "el", "he", "hi"],
    "panx": ["en", "th", "ka", "ta"],
    "xquad": ["en", "es", "ru", "zh"],
    "mlqa": ["en", "ar", "hi"],
    "tydiqa": ["en", "bn", "ko", "fi"],
    "bucc": ["de", "fr", "ru", "zh"],
    "tatoeba": ["ja", "ar", "bn", "sw"],
}
SIZES = DemoSizes()

S, I32, I64 = pa.string(), pa.int32(), pa.int64()
STRS = pa.list_(S)
SQUAD_ANSWERS = pa.struct([("text", STRS), ("answer_start", pa.list_(I32))])
XTREME_ANSWERS = pa.struct([("answer_start", pa.list_(I32)), ("text", STRS)])
NLI = [("premise", S), ("hypothesis", S), ("label", I64)]
SQUAD = [("id", S), ("title", S), ("context", S), ("question", S), ("answers", SQUAD_ANSWERS)]
# The hub's column names and types, per dataset / target.
SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "anli": [("uid", S), *NLI, ("reason", S)],
    "commonsenseqa": [("id", S), ("question", S), ("question_concept", S),
                      ("choices", pa.struct([("label", STRS), ("text", STRS)])), ("answerKey", S)],
    "cosmosqa": [("id", S), ("context", S), ("question", S), ("answer0", S), ("answer1", S), ("answer2", S),
                 ("answer3", S), ("label", I64)],
    "hellaswag": [("ind", I64), ("activity_label", S), ("ctx_a", S), ("ctx_b", S), ("ctx", S),
                  ("endings", STRS), ("source_id", S), ("split", S), ("split_type", S), ("label", S)],
    "mnli": [*NLI, ("idx", I32)],
    "qqp": [("question1", S), ("question2", S), ("label", I64), ("idx", I32)],
    "sst2": [("sentence", S), ("label", I64), ("idx", I32)],
    "squad_v2": SQUAD,
    "squad": SQUAD,
    "xnli": [("language", S), ("sentence1", S), ("sentence2", S), ("gold_label", S)],
    "pawsx": [("sentence1", S), ("sentence2", S), ("label", S)],
    "udpos": [("tokens", STRS), ("pos_tags", pa.list_(I64))],
    "panx": [("tokens", STRS), ("ner_tags", pa.list_(I64)), ("langs", STRS)],
    "xquad": [("id", S), ("context", S), ("question", S), ("answers", XTREME_ANSWERS)],
    "mlqa": [("id", S), ("title", S), ("context", S), ("question", S), ("answers", XTREME_ANSWERS)],
    "tydiqa": [("id", S), ("title", S), ("context", S), ("question", S), ("answers", XTREME_ANSWERS)],
    "bucc": [("source_sentence", S), ("target_sentence", S), ("source_lang", S), ("target_lang", S)],
    "tatoeba": [("source_sentence", S), ("target_sentence", S), ("source_lang", S), ("target_lang", S)],
    "ccg": [("tokens", STRS), ("tags", STRS)],
    # XTREME-R's XCOPA training sets and the toxicity target's English split (the hub's column types)
    "siqa": [("context", S), ("question", S), ("answerA", S), ("answerB", S), ("answerC", S), ("label", S)],
    "copa": [("premise", S), ("choice1", S), ("choice2", S), ("question", S), ("idx", I32), ("label", I64)],
    "toxicity": [("text", S), ("toxic", I64)],
}  # fmt: skip


def hub_file(root: Path, hub: HubSplit) -> Path:
    return root / hub.path / (hub.config or "default") / f"{hub.split}.parquet"


def dataset_files(root: Path) -> list[tuple[str, str, Path]]:
    """(dataset, role, file) for every English training split the catalogue reads."""
    files = [(ds.name, role, hub_file(root, hub)) for ds in DATASETS.values() if ds.name != "ccg"
             for role, hubs in (("train", ds.train), ("dev", ds.dev)) for hub in hubs]
    return files + [("ccg", role, root / "local" / "ccg" / f"{role}.parquet") for role in ("train", "dev")]


def target_files(root: Path) -> list[tuple[str, str, str, Path]]:
    """(target, language, split, file) for every evaluation split asked for."""
    return [(name, lang, split, hub_file(root, TARGETS[name].source(lang, split)))
            for name, langs in LANGUAGES.items() for lang in langs for split in TARGETS[name].splits]


def target_rows(name: str, lang: str, path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    if name == "xnli":
        df = df[df["language"] == lang]
    if name == "tydiqa":
        df = df[df["id"].str.startswith(TYDIQA_PREFIXES[lang] + "-")]
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    generate_hub_mirror(root, LANGUAGES, seed=0, sizes=SIZES)
    return root


def test_every_file_has_the_hub_schema(mirror: Path) -> None:
    for name, _, path in dataset_files(mirror):
        assert list(zip(pq.read_schema(path).names, pq.read_schema(path).types, strict=True)) == SCHEMAS[name], path
    for name, _, _, path in target_files(mirror):
        assert list(zip(pq.read_schema(path).names, pq.read_schema(path).types, strict=True)) == SCHEMAS[name], path


def test_row_counts(mirror: Path) -> None:
    for name, role, path in dataset_files(mirror):
        expected = SIZES.train if role == "train" else SIZES.dev
        if name == "toxicity":  # one English split, cut into seeded train, dev and test parts when read
            expected = SIZES.train + SIZES.dev + SIZES.eval
        english = target_rows(name, "en", path) if name == "tydiqa" else pd.read_parquet(path)
        assert len(english) == expected, path
    for name, lang, split, path in target_files(mirror):
        rows = target_rows(name, lang, path)
        # English dev splits of a training set double as its evaluation data (PAWS-X.en validation, ...).
        shared = lang == "en" and any(hub_file(mirror, h) == path for ds in DATASETS.values() for h in ds.dev)
        assert len(rows) == (SIZES.dev if shared else SIZES.eval), (name, lang, split)


def test_corpus(mirror: Path) -> None:
    languages = {"en"} | {lang for langs in LANGUAGES.values() for lang in langs}
    assert {p.stem for p in (mirror / "corpus").glob("*.txt")} == languages
    english = (mirror / "corpus" / "en.txt").read_text(encoding="utf-8").splitlines()
    assert len(english) == SIZES.corpus

    def anchors(line: str) -> list[str]:  # names and numbers, past the (capitalised) first word
        return re.findall(r"\b[A-Z][a-z]+\b|\d+", line.split(" ", 1)[1])

    for lang in languages - {"en"}:
        lines = (mirror / "corpus" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        assert len(lines) == SIZES.corpus
        assert all(anchors(x) == anchors(e) for x, e in zip(lines[::2], english[::2], strict=True)), lang
        assert sum(x != e for x, e in zip(lines, english, strict=True)) == SIZES.corpus, lang


def test_qa_answer_offsets(mirror: Path) -> None:
    qa = [(n, "en", p) for n, _, p in dataset_files(mirror) if n in ("squad", "squad_v2", "tydiqa")]
    qa += [(n, lang, p) for n, lang, _, p in target_files(mirror) if n in ("xquad", "mlqa", "tydiqa")]
    for name, lang, path in qa:
        rows = target_rows(name, lang, path) if name == "tydiqa" else pd.read_parquet(path)
        answered = 0
        for context, answers in zip(rows["context"], rows["answers"], strict=True):
            assert len(answers["text"]) == len(answers["answer_start"]) <= 1
            for text, start in zip(answers["text"], answers["answer_start"], strict=True):
                assert text and context[start:start + len(text)] == text, (path, text, start)
                answered += 1
        if name == "squad_v2":
            assert 0.25 < 1 - answered / len(rows) < 0.42
        else:
            assert answered == len(rows), path
        # some paragraphs outrun the demo's 128-token windows (about two tokens a word): windows get exercised
        assert (rows["context"].str.split().str.len() >= 100).any(), path


def test_translations_keep_names_and_numbers(mirror: Path) -> None:
    xnli = pd.read_parquet(hub_file(mirror, TARGETS["xnli"].source("en", "test")))
    english = xnli[xnli["language"] == "en"].reset_index(drop=True)
    scripts = {"ru": "[а-я]", "zh": "[\u4e00-\u9fff]", "ar": "[\u0600-\u06ff]"}
    for lang in LANGUAGES["xnli"][1:]:
        rows = xnli[xnli["language"] == lang].reset_index(drop=True)
        assert (rows["gold_label"] == english["gold_label"]).all()
        assert (rows["sentence1"] != english["sentence1"]).all()
        digits = [re.findall(r"\d+", s) for s in rows["sentence1"]]
        assert digits == [re.findall(r"\d+", s) for s in english["sentence1"]]
        if lang in scripts:
            assert rows["sentence2"].str.contains(scripts[lang]).all(), lang
    for name in ("bucc", "tatoeba"):
        for lang, split, path in [(g, s, p) for n, g, s, p in target_files(mirror) if n == name]:
            rows = pd.read_parquet(path)
            assert rows["target_sentence"].is_unique and (rows["source_sentence"] != rows["target_sentence"]).all()
            assert set(rows["target_lang"]) == {"en" if name == "bucc" else "eng"}, (lang, split)


def test_tags_line_up_with_tokens(mirror: Path) -> None:
    files = [(n, "en", p) for n, _, p in dataset_files(mirror) if n in ("udpos", "panx", "ccg")]
    files += [(n, lang, p) for n, lang, _, p in target_files(mirror) if n in ("udpos", "panx")]
    for name, lang, path in files:
        df = pd.read_parquet(path)
        column = {"udpos": "pos_tags", "panx": "ner_tags", "ccg": "tags"}[name]
        assert (df["tokens"].map(len) == df[column].map(len)).all(), path
        tags = {t for seq in df[column] for t in seq}
        if name == "udpos":
            assert tags <= set(range(len(UPOS_TAGS))) and len(tags) >= 12
        if name == "panx":
            assert tags == set(range(len(NER_TAGS)))  # every B- and I- tag occurs
            assert all(set(x) == {lang} for x in df["langs"])
        if name == "ccg":
            assert {"NP", "N/N", "(S\\NP)/NP", "."} <= tags


def test_multiple_choice_labels(mirror: Path) -> None:
    files = {n: pd.read_parquet(p) for n, role, p in dataset_files(mirror) if role == "train"}
    csqa = files["commonsenseqa"]
    assert all(list(c["label"]) == list("ABCDE") and len(set(c["text"])) == 5 for c in csqa["choices"])
    assert csqa["answerKey"].value_counts().min() >= SIZES.train // 5
    assert set(files["cosmosqa"]["label"]) == {0, 1, 2, 3}
    hellaswag = files["hellaswag"]
    assert set(hellaswag["label"]) == {"0", "1", "2", "3"} and (hellaswag["endings"].map(len) == 4).all()
    assert (hellaswag["ctx"] == hellaswag["ctx_a"] + " " + hellaswag["ctx_b"]).all()


def test_datasets_reads_the_files(mirror: Path, tmp_path: Path) -> None:
    import datasets
    from datasets import List, Value

    def load(hub: HubSplit) -> datasets.Dataset:
        return datasets.load_dataset("parquet", data_files=str(hub_file(mirror, hub)), split="train",
                                     cache_dir=str(tmp_path))

    squad = load(DATASETS["squad"].train[0])
    assert squad.features["answers"] == {"text": List(Value("string")), "answer_start": List(Value("int32"))}
    assert isinstance(squad[0]["answers"]["text"][0], str) and isinstance(squad[0]["answers"]["answer_start"][0], int)
    csqa = load(DATASETS["commonsenseqa"].dev[0])
    assert csqa.features["choices"] == {"label": List(Value("string")), "text": List(Value("string"))}
    assert csqa[0]["choices"]["label"] == list("ABCDE")
    row = load(TARGETS["mlqa"].source("ar", "test"))[0]
    start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
    assert row["context"][start:start + len(text)] == text
    assert load(TARGETS["panx"].source("th", "validation")).features["ner_tags"] == List(Value("int64"))


def _accuracy(mirror: Path, name: str) -> tuple[float, float]:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    ds = DATASETS[name]
    train, dev = (pd.concat([pd.read_parquet(hub_file(mirror, h)) for h in hubs], ignore_index=True)
                  for hubs in (ds.train, ds.dev))
    a, b = {"mnli": ("premise", "hypothesis"), "anli": ("premise", "hypothesis"), "sst2": ("sentence", None),
            "qqp": ("question1", "question2"), "pawsx": ("sentence1", "sentence2")}[name]
    vectorizer = CountVectorizer(ngram_range=(1, 2)).fit(pd.concat([train[a], train[b]] if b else [train[a]]))

    def features(df: pd.DataFrame) -> sp.csr_matrix:
        x = vectorizer.transform(df[a])
        if b is None:
            return x
        y = vectorizer.transform(df[b])
        return sp.hstack([x, y, abs(x - y)]).tocsr()

    with threadpool_limits(1):  # BLAS threads fighting over a busy machine make this 100x slower
        model = LogisticRegression(max_iter=2000).fit(features(train), train["label"].astype(int))
    accuracy = float((model.predict(features(dev)) == dev["label"].astype(int)).mean())
    return accuracy, 1 / len(ds.labels)


@pytest.mark.parametrize("name", ["mnli", "anli", "qqp", "sst2", "pawsx"])
def test_english_signal_is_learnable(mirror: Path, name: str) -> None:
    accuracy, chance = _accuracy(mirror, name)
    print(f"{name}: bag-of-bigrams logistic regression dev accuracy {accuracy:.3f} (chance {chance:.3f})")
    assert accuracy >= chance + 0.25


def test_deterministic_per_seed(tmp_path: Path) -> None:
    languages = {"xnli": ["en", "zh"], "tydiqa": ["en", "ko"], "panx": ["ru"], "tatoeba": ["ja"]}
    sizes = DemoSizes(train=30, dev=20, eval=15, corpus=40)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_hub_mirror(tmp_path / name, languages, seed=seed, sizes=sizes)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert not any(p.suffix == ".tmp" for p in files)
    for rel in files:
        if rel.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / rel), pd.read_parquet(tmp_path / "b" / rel))
            assert not pq.read_table(tmp_path / "a" / rel).equals(pq.read_table(tmp_path / "c" / rel)), rel
        else:
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
            # the world's facts follow the seed; its word forms, and so its lexicons, follow the language alone
            same_forms = rel.parts[0] == "lexicons"
            assert ((tmp_path / "a" / rel).read_bytes() == (tmp_path / "c" / rel).read_bytes()) == same_forms, rel


def test_refuses_unknown_targets_and_languages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown target 'xnlii'"):
        generate_hub_mirror(tmp_path, {"xnlii": ["en"]})
    with pytest.raises(ValueError, match="'xx'"):
        generate_hub_mirror(tmp_path, {"pawsx": ["en", "xx"]})
