"""Tokenisation of normalised task tables into model inputs, one function per family, and batching.

A `Features` holds one list per column (`input_ids` always; `labels`; QA's window bookkeeping) and the
length of every row, which the length-grouped sampler and the dynamic-padding collator use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, groupby
from typing import Any

import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

IGNORE = -100
FEATURES_VERSION = 3  # bump on any change to what the tokenisers produce: it keys the tokenised cache


@dataclass
class Features:
    family: str
    columns: dict[str, list[Any]]
    lengths: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lengths)


def _classification(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, **_: Any) -> Features:
    pairs = df["text_b"].notna().all() if "text_b" in df else False
    texts_b = df["text_b"].tolist() if pairs else None
    enc = tok(df["text_a"].tolist(), texts_b, truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    return Features("classification", {"input_ids": ids, "labels": df["label"].tolist()},
                    [len(x) for x in ids])


def _multiple_choice(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, **_: Any) -> Features:
    counts = df["choices"].map(len).tolist()
    firsts = [c for c, n in zip(df["context"], counts, strict=True) for _ in range(n)]
    seconds = [str(choice) for choices in df["choices"] for choice in choices]
    flat = tok(firsts, seconds, truncation=True, max_length=max_length)["input_ids"]
    ids, start = [], 0
    for n in counts:
        ids.append(flat[start:start + n])
        start += n
    return Features("multiple_choice", {"input_ids": ids, "labels": df["label"].tolist()},
                    [max(len(x) for x in row) * len(row) for row in ids])


def _word_windows(lengths: list[int], budget: int) -> list[range]:
    """Consecutive runs of words whose sub-token counts sum to at most `budget`, each as long as fits
    (XTREME's `utils_preprocess.py` splits long sentences so; every word has at most `budget` tokens)."""
    windows, start, used = [], 0, 0
    for w, n in enumerate(lengths):
        if used + n > budget:
            windows.append(range(start, w))
            start, used = w, 0
        used += n
    return [*windows, range(start, len(lengths))]


def _tagging(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, **_: Any) -> Features:
    """Each sentence in windows of whole words that fit in `max_length` tokens, as XTREME splits long
    sentences for training and prediction: every word is in exactly one window.

    The label sits on the first sub-token of each word; other sub-tokens are ignored (-100). `word_ids`
    maps every token to its word's position in the sentence (-1: special token), `example_index` every
    window to its sentence. A word that tokenises to nothing (a zero-width space, an empty string), or
    alone to more tokens than a window holds, is read as `<unk>`, as XTREME's `utils_tag.py` and
    `utils_preprocess.py` do.
    """
    budget = max_length - tok.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for a word besides the special tokens")
    words = [[str(w) for w in ws] for ws in df["tokens"]]
    vocabulary = sorted({w for ws in words for w in ws})
    pieces = dict(zip(vocabulary, tok(vocabulary, add_special_tokens=False)["input_ids"] if vocabulary else [],
                      strict=True))
    unknown = {w for w, ids in pieces.items() if not 0 < len(ids) <= budget}
    windows = [(ex, span) for ex, ws in enumerate(words)
               for span in _word_windows([1 if w in unknown else len(pieces[w]) for w in ws], budget)]
    if unknown:
        words = [[tok.unk_token if w in unknown else w for w in ws] for ws in words]
    enc = tok([words[ex][span.start:span.stop] for ex, span in windows], is_split_into_words=True)
    if any(len(ids) > max_length for ids in enc["input_ids"]):  # a tokenizer that splits words by context
        raise ValueError(f"tagging windows longer than {max_length} tokens: the tokenizer does not tokenise "
                         "each word as it does alone")
    columns: dict[str, list[Any]] = {"input_ids": enc["input_ids"], "labels": [], "word_ids": [],
                                     "example_index": [ex for ex, _ in windows]}
    for i, (ex, span) in enumerate(windows):
        wids = enc.word_ids(i)
        tags = df["tags"].iat[ex]
        columns["labels"].append([int(tags[span.start + w]) if w is not None and w != previous else IGNORE
                                  for w, previous in zip(wids, [None, *wids[:-1]], strict=True)])
        columns["word_ids"].append([-1 if w is None else span.start + w for w in wids])
    return Features("tagging", columns, [len(x) for x in columns["input_ids"]])


MAX_QUERY_LENGTH = 64  # XTREME's and jiant's SQuAD code: questions are cut to 64 tokens


def _questions(questions: pd.Series, tok: PreTrainedTokenizerBase, budget: int) -> tuple[list[str], list[int]]:
    """Questions left-stripped (some SQuAD questions start with much white space) and cut after their
    `budget`-th token, with their token counts."""
    texts = [q.lstrip() for q in questions]
    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    texts = [t if len(ids) <= budget else t[: offs[budget - 1][1]]
             for t, ids, offs in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True)]
    return texts, [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


def _max_context(spans: list[tuple[int, int]]) -> list[list[bool]]:
    """For each window (first context token's position in the document, context length) of one example,
    whether it is the window where each of its tokens has the most context: the largest
    min(left, right) + 0.01 * length, the first window on ties (the SQuAD code's `_check_is_max_context`)."""
    if len(spans) == 1:
        return [[True] * spans[0][1]]
    best: dict[int, tuple[float, int]] = {}
    for w, (start, length) in enumerate(spans):
        for p in range(start, start + length):
            score = min(p - start, start + length - 1 - p) + 0.01 * length
            if p not in best or score > best[p][0]:
                best[p] = (score, w)
    return [[best[p][1] == w for p in range(start, start + length)] for w, (start, length) in enumerate(spans)]


def _qa(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, *, doc_stride: int = 128,
        max_query_length: int = MAX_QUERY_LENGTH, **_: Any) -> Features:
    """Windows of the context after the question, as XTREME's and jiant's SQuAD code makes them.

    The question is cut to `max_query_length` tokens; consecutive windows start `doc_stride` context
    tokens apart (their stride, not HF run_qa's overlap). A window labels the first and last tokens of
    the answer when it holds all of it, else <s> (position 0: no answer). `offsets` map context tokens
    back to characters of the context (None elsewhere); `max_context` marks the context tokens for which
    this window has the most context, the only places where decoding lets a span start.
    """
    specials = tok.num_special_tokens_to_add(pair=True)
    questions, lengths = _questions(df["question"], tok, min(max_query_length, max_length - specials - 1))
    contexts = df["context"].tolist()
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    windows = []  # (example, input ids, offsets, sequence ids, overlap with the previous window)
    for n, rows in by_length.items():
        overlap = max(0, max_length - n - specials - doc_stride)  # the tokenizer's stride is an overlap
        enc = tok([questions[i] for i in rows], [contexts[i] for i in rows], truncation="only_second",
                  max_length=max_length, stride=overlap, return_overflowing_tokens=True,
                  return_offsets_mapping=True)
        windows += [(rows[sample], enc["input_ids"][w], enc["offset_mapping"][w], enc.sequence_ids(w), overlap)
                    for w, sample in enumerate(enc["overflow_to_sample_mapping"])]
    windows.sort(key=lambda window: window[0])  # stable: each example's windows stay in order
    columns: dict[str, list[Any]] = {k: [] for k in ("input_ids", "start_positions", "end_positions",
                                                      "example_index", "offsets", "max_context")}
    for ex, group in groupby(windows, key=lambda window: window[0]):
        group = list(group)
        spans, position = [], 0  # each window's context: (first token's position in the document, length)
        for window in group:
            spans.append((position, sum(s == 1 for s in window[3])))
            position += spans[-1][1] - window[4]
        texts, starts = df["answer_texts"].iat[ex], df["answer_starts"].iat[ex]
        for (_, ids, offs, seq, _), flags in zip(group, _max_context(spans), strict=True):
            ctx = [j for j, s in enumerate(seq) if s == 1]
            start_tok = end_tok = 0
            if len(texts) and ctx:
                a_start = int(starts[0])
                a_end = a_start + len(texts[0])
                if offs[ctx[0]][0] <= a_start and offs[ctx[-1]][1] >= a_end:
                    start_tok = next(j for j in ctx if offs[j][1] > a_start)
                    end_tok = next(j for j in reversed(ctx) if offs[j][0] < a_end)
            context_flags = iter(flags)
            columns["input_ids"].append(ids)
            columns["start_positions"].append(start_tok)
            columns["end_positions"].append(end_tok)
            columns["example_index"].append(ex)
            columns["offsets"].append([tuple(o) if s == 1 else None for o, s in zip(offs, seq, strict=True)])
            columns["max_context"].append([next(context_flags) if s == 1 else False for s in seq])
    return Features("qa", columns, [len(x) for x in columns["input_ids"]])


def _mlm(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, **_: Any) -> Features:
    """Plain text lines for mixed-in MLM batches; masking happens in the MLM head."""
    ids = tok(df["text"].tolist(), truncation=True, max_length=max_length)["input_ids"]
    return Features("mlm", {"input_ids": ids}, [len(x) for x in ids])


TOKENISERS = {"mlm": _mlm, "classification": _classification, "multiple_choice": _multiple_choice,
              "tagging": _tagging, "qa": _qa}


def tokenise(family: str, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int,
             **options: Any) -> Features:
    """Model inputs for one normalised table of the given family."""
    return TOKENISERS[family](df, tokenizer, max_length, **options)


def _padded(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` right-padded with `value` to the longest, as one (rows, width) tensor, and the real-token mask."""
    lengths = torch.tensor([len(r) for r in rows])
    mask = torch.arange(int(lengths.max())) < lengths[:, None]
    out = torch.full(mask.shape, value, dtype=torch.long)
    out[mask] = torch.tensor(list(chain.from_iterable(rows)), dtype=torch.long)  # row-major: prefix of each row
    return out, mask.long()


def collate(features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """A padded batch of the given rows: padded only to the longest row in the batch."""
    cols = features.columns
    if features.family == "multiple_choice":
        rows = [seq for i in indices for seq in cols["input_ids"][i]]
    else:
        rows = [cols["input_ids"][i] for i in indices]
    input_ids, mask = _padded(rows, pad_id)
    if features.family == "multiple_choice":
        input_ids, mask = input_ids.view(len(indices), -1, mask.shape[1]), mask.view(len(indices), -1, mask.shape[1])
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if features.family == "tagging":
        batch["labels"] = _padded([cols["labels"][i] for i in indices], IGNORE)[0]
    elif features.family == "qa":
        batch["start_positions"] = torch.tensor([cols["start_positions"][i] for i in indices])
        batch["end_positions"] = torch.tensor([cols["end_positions"][i] for i in indices])
    elif "labels" in cols:  # mlm rows have none: the MLM head masks its own inputs
        batch["labels"] = torch.tensor([cols["labels"][i] for i in indices])
    return batch


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator, *,
                           shuffle: bool = True, mega: int = 256, min_real: float = 0.95) -> list[list[int]]:
    """Batches of rows of similar length, to pad little.

    Training (`shuffle`): shuffle, sort by length within mega-batches of `mega` batches, cut into batches of
    `batch_size` rows, shuffle the batches (all draws from `generator`). Evaluation: all rows sorted by
    length, a batch ending at `batch_size` rows or where its real-token fraction would fall below `min_real`.
    """
    n = len(lengths)
    if not shuffle:
        batches, batch, real = [], [], 0
        for i in sorted(range(n), key=lengths.__getitem__):
            if batch and (len(batch) == batch_size or real + lengths[i] < min_real * (len(batch) + 1) * lengths[i]):
                batches.append(batch)
                batch, real = [], 0
            batch.append(i)
            real += lengths[i]
        return [*batches, batch] if batch else batches
    perm = torch.randperm(n, generator=generator).tolist()
    chunk = batch_size * mega
    batches = []
    for s in range(0, n, chunk):
        group = sorted(perm[s:s + chunk], key=lambda i: -lengths[i])
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]
