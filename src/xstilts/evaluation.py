"""Prediction and scoring of one task table: batched inference, QA span decoding, metric dispatch."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

from xstilts import metrics
from xstilts.features import Features, collate, length_grouped_batches, tokenise
from xstilts.models import TransferModel


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing on CPU (fp32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def predict(model: TransferModel, task: str, features: Features, *, pad_id: int, batch_size: int,
            device: torch.device) -> list[Any]:
    """Raw per-row outputs: class index, per-token label ids, or (start, end) logits for QA windows."""
    model.eval()
    out: list[Any] = [None] * len(features)
    for idx in length_grouped_batches(features.lengths, batch_size, torch.Generator(), shuffle=False):
        batch = {k: v.to(device) for k, v in collate(features, idx, pad_id).items()}
        with autocast(device):
            _, logits = model(task, batch)
        if features.family == "qa":
            starts, ends = (x.float().cpu().numpy() for x in logits)
            for r, i in enumerate(idx):
                n = len(features.columns["input_ids"][i])
                out[i] = (starts[r, :n], ends[r, :n])
        elif features.family == "tagging":
            best = logits.argmax(-1).cpu().numpy()
            for r, i in enumerate(idx):
                out[i] = best[r, : len(features.columns["input_ids"][i])]
        else:
            for r, i in enumerate(idx):
                out[i] = int(logits[r].argmax())
    return out


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


def score_table(model: TransferModel, task: str, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, *,
                family: str, metric: str, labels: list[str], language: str = "en", qa_style: str = "squad",
                seqeval: str = "1.2.2", max_length: int, doc_stride: int = 128, batch_size: int = 64,
                device: torch.device) -> dict[str, float]:
    """Metrics (0-100) of the model's predictions on one normalised table; a tagging F1 as the named
    seqeval version computes it (`metrics.TAG_F1`)."""
    feats = tokenise(family, df, tokenizer, max_length, doc_stride=doc_stride, train=False)
    outputs = predict(model, task, feats, pad_id=tokenizer.pad_token_id, batch_size=batch_size, device=device)
    if family in ("classification", "multiple_choice"):
        return {"accuracy": metrics.accuracy(outputs, df["label"].tolist())}
    if family == "tagging":
        preds = [[labels[t] for t in sentence] for sentence in sentence_labels(feats, outputs, len(df))]
        golds = [[labels[t] for t in tags] for tags in df["tags"]]
        if metric == "token_accuracy":
            return {"token_accuracy": metrics.token_accuracy(preds, golds)}
        return {"f1": metrics.TAG_F1[seqeval](preds, golds)}
    answers = decode_spans(df, feats, outputs, allow_empty=qa_style == "squad_v2")
    refs = dict(zip(df["id"], df["answer_texts"].map(list), strict=True))
    if qa_style == "mlqa":
        return metrics.mlqa_scores(answers, refs, language)
    if qa_style == "squad_v2":
        return metrics.squad_v2_scores(answers, refs)
    return metrics.squad_scores(answers, refs)


def qa_style(task: str) -> str:
    """Which official QA scorer a task uses."""
    return {"mlqa": "mlqa", "squad_v2": "squad_v2"}.get(task, "squad")
