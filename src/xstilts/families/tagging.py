"""Tagging (UD-POS, PAN-X, CCG supertags): a label per word, read off each word's first sub-token."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from xstilts import metrics
from xstilts.families import Family, Head, Scoring
from xstilts.features import IGNORE, Features, padded


class TaggingHead(Head):
    family = "tagging"

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        logits = self.out(self.dropout(hidden))
        loss = (F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE)
                if "labels" in batch else None)
        return loss, logits


def word_windows(lengths: list[int], budget: int) -> list[range]:
    """Consecutive runs of words whose sub-token counts sum to at most `budget`, each as long as fits
    (XTREME's `utils_preprocess.py` splits long sentences so; every word has at most `budget` tokens)."""
    windows, start, used = [], 0, 0
    for w, n in enumerate(lengths):
        if used + n > budget:
            windows.append(range(start, w))
            start, used = w, 0
        used += n
    return [*windows, range(start, len(lengths))]


def words_from_tokens(word_ids: list[int], token_labels: np.ndarray) -> dict[int, int]:
    """{word: label} of the words of one window, read off each word's first sub-token, in word order."""
    labels: dict[int, int] = {}
    for w, label in zip(word_ids, token_labels, strict=True):
        if w >= 0 and w not in labels:
            labels[w] = int(label)
    return labels


def sentence_labels(features: Features, outputs: list[np.ndarray], n_sentences: int) -> list[list[int]]:
    """Every word's label, sentence by sentence, gathered from the windows that hold them (XTREME
    scores each sentence whole)."""
    words: list[dict[int, int]] = [{} for _ in range(n_sentences)]
    for ex, word_ids, out in zip(features.columns["example_index"], features.columns["word_ids"], outputs,
                                 strict=True):
        words[ex].update(words_from_tokens(word_ids, out))
    return [[labels[w] for w in range(len(labels))] for labels in words]


class Tagging(Family):
    """Words (`tokens`) and a tag index per word (`tags`); scored by entity F1 as the task's seqeval version
    computes it (`metrics.TAG_F1`), or token accuracy (CCG)."""

    name = "tagging"

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128) -> Features:
        """Each sentence in windows of whole words that fit in `max_length` tokens, as XTREME splits long
        sentences for training and prediction: every word is in exactly one window.

        The label sits on the first sub-token of each word; other sub-tokens are ignored (-100). `word_ids`
        maps every token to its word's position in the sentence (-1: special token), `example_index` every
        window to its sentence. A word that tokenises to nothing (a zero-width space, an empty string), or
        alone to more tokens than a window holds, is read as `<unk>`, as XTREME's `utils_tag.py` and
        `utils_preprocess.py` do.
        """
        tok = tokenizer
        budget = max_length - tok.num_special_tokens_to_add(pair=False)
        if budget < 1:
            raise ValueError(f"max_length {max_length} leaves no room for a word besides the special tokens")
        words = [[str(w) for w in ws] for ws in df["tokens"]]
        vocabulary = sorted({w for ws in words for w in ws})
        pieces = dict(zip(vocabulary, tok(vocabulary, add_special_tokens=False)["input_ids"] if vocabulary else [],
                          strict=True))
        unknown = {w for w, ids in pieces.items() if not 0 < len(ids) <= budget}
        windows = [(ex, span) for ex, ws in enumerate(words)
                   for span in word_windows([1 if w in unknown else len(pieces[w]) for w in ws], budget)]
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
        return Features(columns, [len(x) for x in columns["input_ids"]])

    def collate(self, features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        cols = features.columns
        input_ids, mask = padded([cols["input_ids"][i] for i in indices], pad_id)
        return {"input_ids": input_ids, "attention_mask": mask,
                "labels": padded([cols["labels"][i] for i in indices], IGNORE)[0]}

    def head(self, hidden: int, num_labels: int, dropout: float) -> Head:
        return TaggingHead(hidden, num_labels, dropout)

    def outputs(self, logits: Any, indices: list[int], features: Features) -> list[Any]:
        best = logits.argmax(-1).cpu().numpy()
        return [best[r, : len(features.columns["input_ids"][i])] for r, i in enumerate(indices)]

    def decode(self, df: pd.DataFrame, features: Features, outputs: list[Any], scoring: Scoring) -> list[Any]:
        return sentence_labels(features, outputs, len(df))

    def golds(self, df: pd.DataFrame, scoring: Scoring) -> list[Any]:
        return [[int(t) for t in tags] for tags in df["tags"]]

    def score(self, predictions: list[Any], golds: list[Any], scoring: Scoring, language: str) -> dict[str, float]:
        names = scoring.labels
        preds = [[names[t] for t in sentence] for sentence in predictions]
        refs = [[names[t] for t in sentence] for sentence in golds]
        if scoring.metric == "token_accuracy":
            return {"token_accuracy": metrics.token_accuracy(preds, refs)}
        return {"f1": metrics.TAG_F1[scoring.seqeval](preds, refs)}

    def show(self, value: Any, scoring: Scoring) -> str:
        return super().show([scoring.labels[t] for t in value], scoring)
