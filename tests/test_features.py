"""Tokenisation of the fixture tables: tagging alignment (first sub-token labelled, exact mapping back to
words, long sentences in windows of whole words), QA windows (the answer labelled in the window that holds
it, exact offsets, stride and max-context bookkeeping, long questions) and multiple-choice rows."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import PreTrainedTokenizerFast

from tests.conftest import sentences
from xstilts.data import Sources, prepare_dataset, prepare_target
from xstilts.demo.pretrain import train_tokenizer
from xstilts.families import family
from xstilts.families.qa import MAX_QUERY_LENGTH
from xstilts.families.tagging import sentence_labels, words_from_tokens
from xstilts.features import IGNORE

FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = Sources(hub_mirror=FIXTURES / "hub")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The normalised fixture tables (train/dev of the datasets, <split>/<lang> of the targets)."""
    root = tmp_path_factory.mktemp("prepared")
    for name in ("udpos", "squad_v2", "commonsenseqa"):
        prepare_dataset(name, root / name, SOURCES)
    prepare_target("panx", ["ar"], root / "panx", SOURCES)
    prepare_target("xquad", ["zh", "ar"], root / "xquad", SOURCES)
    return root


@pytest.fixture(scope="module")
def tok(prepared: Path) -> PreTrainedTokenizerFast:
    """A small Unigram tokenizer (XLM-R's special tokens and ids) that has seen the fixtures' scripts."""
    texts = [*pd.read_parquet(prepared / "squad_v2" / "train.parquet")["context"],
             *pd.read_parquet(prepared / "xquad" / "validation" / "zh.parquet")["context"],
             *(" ".join(t) for t in pd.read_parquet(prepared / "udpos" / "train.parquet")["tokens"]),
             *(" ".join(t) for t in pd.read_parquet(prepared / "panx" / "validation" / "ar.parquet")["tokens"]),
             "北京 是 首都 。"]
    return train_tokenizer([*sentences(300), *texts], vocab_size=400)


def test_tagging_labels_the_first_sub_token_and_maps_back_exactly(prepared: Path, tok) -> None:
    df = pd.concat([pd.read_parquet(prepared / "udpos" / "train.parquet"),
                    pd.read_parquet(prepared / "panx" / "validation" / "ar.parquet"),  # right to left
                    pd.DataFrame({"tokens": [["北京", "是", "首都", "。"]], "tags": [[5, 0, 0, 12]]})],
                   ignore_index=True)
    feats = family("tagging").tokenise(df, tok, 64)
    long_word = feats.columns["word_ids"][0].count(1)  # "Donaudampfschifffahrtsgesellschaft"
    assert long_word > 3
    for ids, labels, word_ids, tokens, tags in zip(feats.columns["input_ids"], feats.columns["labels"],
                                                   feats.columns["word_ids"], df["tokens"], df["tags"], strict=True):
        assert word_ids[0] == word_ids[-1] == -1 and labels[0] == labels[-1] == IGNORE  # <s>, </s>
        firsts = [j for j, w in enumerate(word_ids) if w >= 0 and w not in word_ids[:j]]
        assert [word_ids[j] for j in firsts] == list(range(len(tokens)))  # every word, in order
        assert [labels[j] for j in firsts] == list(tags)  # its label on its first sub-token
        assert all(labels[j] == IGNORE for j in range(len(ids)) if j not in firsts)  # nothing else
        for w, word in enumerate(tokens):  # the sub-tokens of a word spell it
            pieces = tok.convert_ids_to_tokens([i for i, v in zip(ids, word_ids, strict=True) if v == w])
            assert "".join(pieces).replace("▁", "") == word
        noisy = np.where(np.array(labels) == IGNORE, 99, np.array(labels))  # only first sub-tokens are read
        assert list(words_from_tokens(word_ids, noisy).values()) == list(tags)


def test_a_word_without_tokens_becomes_unk_and_keeps_its_label(prepared: Path, tok) -> None:
    df = pd.read_parquet(prepared / "udpos" / "dev.parquet")  # Bob works \u200b .
    df = pd.concat([df, pd.DataFrame({"tokens": [["", "x"]], "tags": [[1, 2]]})], ignore_index=True)
    assert tok("\u200b", add_special_tokens=False)["input_ids"] == [] and tok("")["input_ids"] == [0, 2]
    feats = family("tagging").tokenise(df, tok, 64)
    for labels, word_ids, tags in zip(feats.columns["labels"], feats.columns["word_ids"], df["tags"], strict=True):
        assert list(words_from_tokens(word_ids, np.array(labels)).values()) == list(tags)
    word_ids, ids = feats.columns["word_ids"][0], feats.columns["input_ids"][0]
    assert ids[word_ids.index(2)] == tok.unk_token_id


def test_long_sentence_is_split_into_windows_of_whole_words(tok) -> None:
    """XTREME's split: each window takes words while they fit in max_length tokens; every word is in
    exactly one window, and the windows' labels read back give every tag of the sentence."""
    words = sentences(1, seed=3)[0].split() * 10
    df = pd.DataFrame({"tokens": [["x", "y"], words], "tags": [[0, 1], list(range(len(words)))]})
    feats = family("tagging").tokenise(df, tok, 16)
    assert len(feats.columns["input_ids"][1]) <= 16  # the first window of the long sentence
    first = list(words_from_tokens(feats.columns["word_ids"][1], np.array(feats.columns["labels"][1])))
    assert 0 < len(first) < len(words) and first == list(range(len(first)))  # a prefix of the words
    assert feats.columns["example_index"][0] == 0 and set(feats.columns["example_index"][1:]) == {1}
    windows = [[w for w in dict.fromkeys(word_ids) if w >= 0] for word_ids in feats.columns["word_ids"][1:]]
    assert len(windows) > 2
    assert [w for window in windows for w in window] == list(range(len(words)))  # each word once, in order
    length = {w: len(tok(w, add_special_tokens=False)["input_ids"]) for w in words}
    budget = 16 - tok.num_special_tokens_to_add(pair=False)
    for window, following in pairwise(windows):
        assert sum(length[words[w]] for w in window) + length[words[following[0]]] > budget  # as long as fits
    assert all(len(ids) <= 16 for ids in feats.columns["input_ids"])
    labels = sentence_labels(feats, [np.array(labels) for labels in feats.columns["labels"]], len(df))
    assert labels == [list(tags) for tags in df["tags"]]


def test_a_word_longer_than_a_window_becomes_unk(prepared: Path, tok) -> None:
    long_word = "Donaudampfschifffahrtsgesellschaft"  # more than 4 tokens alone (first test)
    df = pd.DataFrame({"tokens": [["Bob", long_word, "works"]], "tags": [[1, 2, 3]]})
    feats = family("tagging").tokenise(df, tok, 6)  # room for 4 tokens besides <s> and </s>
    assert len(tok(long_word, add_special_tokens=False)["input_ids"]) > 4
    ids = [i for window in feats.columns["input_ids"] for i in window]
    word_ids = [w for window in feats.columns["word_ids"] for w in window]
    assert [i for i, w in zip(ids, word_ids, strict=True) if w == 1] == [tok.unk_token_id]
    assert sentence_labels(feats, [np.array(labels) for labels in feats.columns["labels"]], 1) == [[1, 2, 3]]


def qa_windows(prepared: Path, tok, max_length: int, doc_stride: int):
    df = pd.read_parquet(prepared / "squad_v2" / "train.parquet")  # v2a: answer "1995" late; v2b: none
    return df, family("qa").tokenise(df, tok, max_length, doc_stride=doc_stride)


def context_span(offsets: list) -> tuple[int, int]:
    chars = [o for o in offsets if o is not None]
    return chars[0][0], chars[-1][1]


def test_qa_answer_is_labelled_in_the_window_that_holds_it(prepared: Path, tok) -> None:
    df, feats = qa_windows(prepared, tok, 48, 16)
    cols = feats.columns
    windows = [f for f, ex in enumerate(cols["example_index"]) if ex == 0]
    assert len(windows) > 2 and cols["example_index"] == sorted(cols["example_index"])
    context, answer, start = df["context"][0], "1995", int(df["answer_starts"][0][0])
    holding = [f for f in windows if context_span(cols["offsets"][f])[0] <= start
               and context_span(cols["offsets"][f])[1] >= start + len(answer)]
    assert holding and holding[0] != windows[0]  # not in the first window
    for f in windows:
        s, e = cols["start_positions"][f], cols["end_positions"][f]
        if f in holding:
            assert 0 < s <= e and context[cols["offsets"][f][s][0]:cols["offsets"][f][e][1]] == answer
        else:
            assert s == e == 0  # <s>: no answer in this window
    unanswerable = [f for f, ex in enumerate(cols["example_index"]) if ex == 1]
    assert unanswerable and all(cols["start_positions"][f] == cols["end_positions"][f] == 0 for f in unanswerable)


def test_qa_windows_start_doc_stride_tokens_apart_and_each_token_has_one_max_context_window(
        prepared: Path, tok) -> None:
    _, feats = qa_windows(prepared, tok, 48, 16)
    cols = feats.columns
    windows = [f for f, ex in enumerate(cols["example_index"]) if ex == 0]
    contexts = [[j for j, o in enumerate(cols["offsets"][f]) if o is not None] for f in windows]
    for w, (previous, current) in enumerate(pairwise(contexts)):  # window w + 1 starts 16 tokens after w
        assert cols["offsets"][windows[w + 1]][current[0]] == cols["offsets"][windows[w]][previous[16]]
    owners: dict[int, list[int]] = {}  # document position of a context token -> windows marking it
    for w, (f, context) in enumerate(zip(windows, contexts, strict=True)):
        assert not any(flag for j, flag in enumerate(cols["max_context"][f]) if j not in context)
        for k, j in enumerate(context):
            owners.setdefault(16 * w + k, []).extend([w] if cols["max_context"][f][j] else [])
    assert all(len(w) == 1 for w in owners.values())  # every token: exactly one window
    # tokens 16.. of window 0 are tokens 0.. of window 1: each goes to the window where it is more central
    assert owners[16] == [0] and owners[len(contexts[0]) - 1] == [1] and len(contexts[0]) - 16 > 2


def test_long_questions_are_cut_to_the_query_budget(prepared: Path, tok) -> None:
    df = pd.read_parquet(prepared / "squad_v2" / "train.parquet").iloc[:1].copy()
    df["question"] = "   " + " ".join(sentences(30, seed=5))  # far beyond 64 tokens, leading spaces
    feats = family("qa").tokenise(df, tok, 128, doc_stride=64)
    for ids, offsets in zip(feats.columns["input_ids"], feats.columns["offsets"], strict=True):
        first_context = next(j for j, o in enumerate(offsets) if o is not None)
        assert first_context - 3 == MAX_QUERY_LENGTH  # <s> question </s></s> context </s>
        assert len(ids) <= 128


def test_qa_offsets_are_exact_for_cjk_and_arabic(prepared: Path, tok) -> None:
    for lang in ("zh", "ar"):
        df = pd.read_parquet(prepared / "xquad" / "validation" / f"{lang}.parquet")
        feats = family("qa").tokenise(df, tok, 40, doc_stride=16)
        labelled = set()
        for f, ex in enumerate(feats.columns["example_index"]):
            s, e = feats.columns["start_positions"][f], feats.columns["end_positions"][f]
            offsets = feats.columns["offsets"][f]
            if s:  # a window that holds the answer
                assert df["context"][ex][offsets[s][0]:offsets[e][1]] == df["answer_texts"][ex][0]
                labelled.add(ex)
        assert labelled == set(range(len(df)))


def test_multiple_choice_rows_hold_one_sequence_per_choice(prepared: Path, tok) -> None:
    df = pd.read_parquet(prepared / "commonsenseqa" / "train.parquet")
    feats = family("multiple_choice").tokenise(df, tok, 32)
    assert [len(row) for row in feats.columns["input_ids"]] == [5, 5]
    assert feats.columns["labels"] == [2, 0]
    assert feats.columns["input_ids"][0][2] == tok("Where do you keep milk cold?", "fridge", truncation=True,
                                                   max_length=32)["input_ids"]


def test_each_family_collates_its_own_batch(prepared: Path, tok) -> None:
    """Pairs tokenise both texts, single texts only `text_a`; every family pads to its batch's longest row
    and carries its own targets (class labels, per-token labels padded with IGNORE, answer positions, a
    (rows, choices, length) block for multiple choice)."""
    pairs = pd.DataFrame({"text_a": ["anna lives in paris", "bob"], "text_b": ["she works", "he is in rome ."],
                          "label": [2, 0]})
    both = family("pair_classification").tokenise(pairs, tok, 32)
    single = family("classification").tokenise(pairs, tok, 32)
    assert both.columns["input_ids"] == tok(pairs["text_a"].tolist(), pairs["text_b"].tolist(), truncation=True,
                                            max_length=32)["input_ids"]
    assert single.columns["input_ids"] == tok(pairs["text_a"].tolist(), truncation=True, max_length=32)["input_ids"]
    batch = family("pair_classification").collate(both, [1, 0], tok.pad_token_id)
    width = max(both.lengths)
    assert batch["input_ids"].shape == (2, width) and batch["labels"].tolist() == [0, 2]
    assert batch["attention_mask"].sum(1).tolist() == [both.lengths[1], both.lengths[0]]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tok.pad_token_id).all()

    tags = family("tagging").tokenise(pd.DataFrame({"tokens": [["x", "y"], ["anna", "lives", "in", "paris"]],
                                                    "tags": [[0, 1], [1, 0, 0, 2]]}), tok, 64)
    batch = family("tagging").collate(tags, [0, 1], tok.pad_token_id)
    assert batch["labels"].shape == batch["input_ids"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
    assert batch["labels"][0, : tags.lengths[0]].tolist() == tags.columns["labels"][0]

    _, windows = qa_windows(prepared, tok, 48, 16)
    batch = family("qa").collate(windows, [0, 1], tok.pad_token_id)
    assert batch["start_positions"].tolist() == windows.columns["start_positions"][:2]
    assert batch["end_positions"].tolist() == windows.columns["end_positions"][:2]
    assert "labels" not in batch

    df = pd.read_parquet(prepared / "commonsenseqa" / "train.parquet")
    choices = family("multiple_choice").tokenise(df, tok, 32)
    batch = family("multiple_choice").collate(choices, [1, 0], tok.pad_token_id)
    longest = max(len(seq) for row in choices.columns["input_ids"] for seq in row)
    assert batch["input_ids"].shape == (2, 5, longest) and batch["labels"].tolist() == [0, 2]
    assert batch["input_ids"][1, 2, : len(choices.columns["input_ids"][0][2])].tolist() == \
        choices.columns["input_ids"][0][2]
