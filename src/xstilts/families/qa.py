"""Extractive QA (SQuAD, XQuAD, MLQA, TyDiQA-GoldP; SQuAD 2.0 with no-answer questions): windows of the
context after the question, a start and an end logit per token, spans decoded as the SQuAD code does."""

from __future__ import annotations

from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from xstilts import metrics
from xstilts.families import Family, Head, Scoring
from xstilts.features import Features, padded

MAX_QUERY_LENGTH = 64  # XTREME's and jiant's SQuAD code: questions are cut to 64 tokens


class SpanHead(Head):
    """A start and an end logit per token; padding can be neither."""

    family = "qa"

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 2)

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        start, end = self.out(self.dropout(hidden)).float().unbind(-1)
        mask = batch["attention_mask"] == 0
        start, end = start.masked_fill(mask, -1e4), end.masked_fill(mask, -1e4)
        loss = None
        if "start_positions" in batch:
            loss = (F.cross_entropy(start, batch["start_positions"]) +
                    F.cross_entropy(end, batch["end_positions"])) / 2
        return loss, (start, end)


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


def decode_spans(df: pd.DataFrame, features: Features, outputs: list[Any], *, n_best: int = 20,
                 max_answer_length: int = 30, allow_empty: bool = False) -> dict[str, str]:
    """The best answer per question over all its windows, decoded as the SQuAD code does (HF
    `utils_qa.postprocess_qa_predictions`; XTREME's and jiant's `compute_predictions_logits`).

    Candidates pair the `n_best` highest start and end logits of a window; a span lies in the context,
    starts at a token for which its window has the most context (`max_context`), ends at or after its
    start within `max_answer_length` tokens, and has text. Its score is start + end logit and its text
    the context between its tokens' character offsets. With `allow_empty` (SQuAD 2.0) the answer is ""
    when the null score (<s> start + end, the lowest over the windows) beats the best span.
    """
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for f, (start, end) in enumerate(outputs):
        ex = features.columns["example_index"][f]
        offsets, max_context = features.columns["offsets"][f], features.columns["max_context"][f]
        context = df["context"].iat[ex]
        null[ex] = min(null.get(ex, np.inf), float(start[0] + end[0]))
        top_e = np.argsort(end)[::-1][:n_best]
        for s in np.argsort(start)[::-1][:n_best]:
            if offsets[s] is None or not max_context[s]:
                continue
            for e in top_e:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score, text = float(start[s] + end[e]), context[offsets[s][0]:offsets[e][1]]
                if text and (ex not in best or score > best[ex][0]):
                    best[ex] = (score, text)
    answers = {}
    for ex, qid in enumerate(df["id"]):
        score, text = best.get(ex, (-np.inf, ""))
        answers[qid] = "" if allow_empty and null.get(ex, -np.inf) > score else text
    return answers


class ExtractiveQA(Family):
    """A context, a question and its answers (texts and character starts; none: unanswerable); scored by
    the task's official scorer (`Scoring.qa_scorer`: SQuAD v1.1, MLQA, SQuAD 2.0), F1 and exact match."""

    name = "qa"

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128, max_query_length: int = MAX_QUERY_LENGTH) -> Features:
        """Windows of the context after the question, as XTREME's and jiant's SQuAD code makes them.

        The question is cut to `max_query_length` tokens; consecutive windows start `doc_stride` context
        tokens apart (their stride, not HF run_qa's overlap). A window labels the first and last tokens of
        the answer when it holds all of it, else <s> (position 0: no answer). `offsets` map context tokens
        back to characters of the context (None elsewhere); `max_context` marks the context tokens for which
        this window has the most context, the only places where decoding lets a span start.
        """
        tok = tokenizer
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
        return Features(columns, [len(x) for x in columns["input_ids"]])

    def collate(self, features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        cols = features.columns
        input_ids, mask = padded([cols["input_ids"][i] for i in indices], pad_id)
        return {"input_ids": input_ids, "attention_mask": mask,
                "start_positions": torch.tensor([cols["start_positions"][i] for i in indices]),
                "end_positions": torch.tensor([cols["end_positions"][i] for i in indices])}

    def head(self, hidden: int, num_labels: int, dropout: float) -> Head:
        return SpanHead(hidden, num_labels, dropout)

    def outputs(self, logits: Any, indices: list[int], features: Features) -> list[Any]:
        starts, ends = (x.float().cpu().numpy() for x in logits)
        return [(starts[r, :n], ends[r, :n]) for r, n in
                ((r, len(features.columns["input_ids"][i])) for r, i in enumerate(indices))]

    def decode(self, df: pd.DataFrame, features: Features, outputs: list[Any], scoring: Scoring) -> list[Any]:
        answers = decode_spans(df, features, outputs, allow_empty=scoring.qa_scorer == "squad_v2")
        return [answers[qid] for qid in df["id"]]

    def golds(self, df: pd.DataFrame, scoring: Scoring) -> list[Any]:
        return [list(texts) for texts in df["answer_texts"]]

    def _examples(self, predictions: list[Any], golds: list[Any], scoring: Scoring,
                  language: str) -> list[tuple[float, float]]:
        keys = [str(i) for i in range(len(golds))]
        return metrics.qa_examples(dict(zip(keys, predictions, strict=True)), dict(zip(keys, golds, strict=True)),
                                   scoring.qa_scorer, language)

    def score(self, predictions: list[Any], golds: list[Any], scoring: Scoring, language: str) -> dict[str, float]:
        return metrics.qa_totals(self._examples(predictions, golds, scoring, language))

    def example_scores(self, predictions: list[Any], golds: list[Any], scoring: Scoring,
                       language: str) -> list[float]:
        both = scoring.metric == "f1_em"  # XTREME's QA headline: (F1 + EM) / 2
        return [100.0 * ((f1 + em) / 2 if both else f1)
                for f1, em in self._examples(predictions, golds, scoring, language)]
