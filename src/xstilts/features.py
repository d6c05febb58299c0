"""Tokenisation of normalised task tables into model inputs, one function per family, and batching.

A `Features` holds one list per column (`input_ids` always; `labels`; QA's window bookkeeping) and the
length of every row, which the length-grouped sampler and the dynamic-padding collator use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

IGNORE = -100


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


def _tagging(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, **_: Any) -> Features:
    """The label sits on the first sub-token of each word; other sub-tokens are ignored (-100)."""
    words = [list(map(str, t)) for t in df["tokens"]]
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length)
    labels, word_ids = [], []
    for i, tags in enumerate(df["tags"]):
        wids = enc.word_ids(i)
        row, previous = [], None
        for w in wids:
            row.append(int(tags[w]) if w is not None and w != previous else IGNORE)
            previous = w
        labels.append(row)
        word_ids.append([-1 if w is None else w for w in wids])
    ids = enc["input_ids"]
    return Features("tagging", {"input_ids": ids, "labels": labels, "word_ids": word_ids},
                    [len(x) for x in ids])


def _qa(df: pd.DataFrame, tok: PreTrainedTokenizerBase, max_length: int, *, doc_stride: int = 128,
        train: bool = True, **_: Any) -> Features:
    """Sliding windows over the context; each window labels the answer's tokens or, if absent, <s>."""
    enc = tok(df["question"].tolist(), df["context"].tolist(), truncation="only_second",
              max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
              return_offsets_mapping=True)
    sample = enc["overflow_to_sample_mapping"]
    starts, ends, offsets = [], [], []
    for i, offs in enumerate(enc["offset_mapping"]):
        seq = enc.sequence_ids(i)
        ctx = [j for j, s in enumerate(seq) if s == 1]
        offsets.append([tuple(o) if seq[j] == 1 else None for j, o in enumerate(offs)])
        row = df.iloc[sample[i]]
        start_tok = end_tok = 0
        if len(row["answer_texts"]) and ctx:
            a_start = int(row["answer_starts"][0])
            a_end = a_start + len(row["answer_texts"][0])
            if offs[ctx[0]][0] <= a_start and offs[ctx[-1]][1] >= a_end:
                start_tok = next(j for j in ctx if offs[j][1] > a_start)
                end_tok = next(j for j in reversed(ctx) if offs[j][0] < a_end)
        starts.append(start_tok)
        ends.append(end_tok)
    ids = enc["input_ids"]
    columns: dict[str, list[Any]] = {"input_ids": ids, "start_positions": starts, "end_positions": ends,
                                     "example_index": list(sample), "offsets": offsets}
    return Features("qa", columns, [len(x) for x in ids])


TOKENISERS = {"classification": _classification, "multiple_choice": _multiple_choice,
              "tagging": _tagging, "qa": _qa}


def tokenise(family: str, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int,
             **options: Any) -> Features:
    """Model inputs for one normalised table of the given family."""
    return TOKENISERS[family](df, tokenizer, max_length, **options)


def collate(features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """A padded batch of the given rows: padded only to the longest row in the batch."""
    cols = features.columns
    if features.family == "multiple_choice":
        rows = [seq for i in indices for seq in cols["input_ids"][i]]
    else:
        rows = [cols["input_ids"][i] for i in indices]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, seq in enumerate(rows):
        input_ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
    if features.family == "multiple_choice":
        n = len(cols["input_ids"][indices[0]])
        input_ids, mask = input_ids.view(len(indices), n, width), mask.view(len(indices), n, width)
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if features.family == "tagging":
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for r, i in enumerate(indices):
            labels[r, : len(cols["labels"][i])] = torch.tensor(cols["labels"][i])
        batch["labels"] = labels
    elif features.family == "qa":
        batch["start_positions"] = torch.tensor([cols["start_positions"][i] for i in indices])
        batch["end_positions"] = torch.tensor([cols["end_positions"][i] for i in indices])
    else:
        batch["labels"] = torch.tensor([cols["labels"][i] for i in indices])
    return batch


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                           *, shuffle: bool = True, mega: int = 50) -> list[list[int]]:
    """Batches of similar length: shuffle, sort within mega-batches of `mega` batches, shuffle batches.

    Without shuffling (evaluation) all rows are sorted by length, which pads least.
    """
    n = len(lengths)
    if not shuffle:
        order = sorted(range(n), key=lambda i: lengths[i])
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    perm = torch.randperm(n, generator=generator).tolist()
    chunk = batch_size * mega
    batches = []
    for s in range(0, n, chunk):
        group = sorted(perm[s:s + chunk], key=lambda i: -lengths[i])
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]
