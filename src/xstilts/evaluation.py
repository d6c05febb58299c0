"""Prediction and scoring of one task table through its family (`xstilts.families`): batched inference,
one prediction per example, the metrics, and the per-example records of predictions.parquet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

from xstilts import packing
from xstilts.families import Family, Scoring, family
from xstilts.features import Features, length_grouped_batches
from xstilts.models import TransferModel


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing on CPU (fp32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


Reader = Callable[[Any, list[int], Features], list[Any]]  # (logits, the batch's rows, features) -> per row


@torch.inference_mode()
def predict(model: TransferModel, head: str, fam: Family, features: Features, *, pad_id: int, batch_size: int,
            device: torch.device, read: Reader | None = None) -> list[Any]:
    """Per-row outputs of the model's `head`, in row order (batches packed when the encoder's attention takes
    them): its raw outputs (`Family.outputs`), or what `read` takes from the logits."""
    model.eval()
    read = read or fam.outputs
    out: list[Any] = [None] * len(features)
    packed, first_position = packing.packs(model.encoder), packing.position_offset(model.encoder.config)
    for idx in length_grouped_batches(features.lengths, batch_size, torch.Generator(), shuffle=False):
        host = fam.collate(features, idx, pad_id)
        if packed:
            host["packing"] = packing.pack(host["attention_mask"], first_position)
        batch = {k: v.to(device) for k, v in host.items()}
        with autocast(device):
            _, logits = model(head, batch)
        for i, value in zip(idx, read(logits, idx, features), strict=True):
            out[i] = value
    return out


def class_probabilities(model: TransferModel, head: str, scoring: Scoring, df: pd.DataFrame,
                        tokenizer: PreTrainedTokenizerBase, *, max_length: int, batch_size: int,
                        device: torch.device) -> np.ndarray:
    """A classification head's class probabilities [examples, labels] on one table (the attack's oracle)."""
    fam = family(scoring.family)
    feats = fam.tokenise(df, tokenizer, max_length)
    rows = predict(model, head, fam, feats, pad_id=tokenizer.pad_token_id, batch_size=batch_size, device=device,
                   read=lambda logits, idx, _: list(logits.float().softmax(-1).cpu().numpy()))
    return np.stack(rows) if rows else np.zeros((0, len(scoring.labels)))


@dataclass(frozen=True)
class TableResult:
    """A table's metrics (0-100) and its examples' predictions, golds and scores (None: the metric has no
    per-example score)."""

    metrics: dict[str, float]
    ids: list[str]
    predictions: list[Any]
    golds: list[Any]
    scores: list[float] | None

    def records(self, fam: Family, scoring: Scoring) -> list[dict[str, Any]]:
        """predictions.parquet rows of this table: id, prediction, gold (as text), score."""
        scores = self.scores or [None] * len(self.ids)
        return [{"id": i, "prediction": fam.show(p, scoring), "gold": fam.show(g, scoring), "score": s}
                for i, p, g, s in zip(self.ids, self.predictions, self.golds, scores, strict=True)]


def evaluate_table(model: TransferModel, head: str, scoring: Scoring, df: pd.DataFrame,
                   tokenizer: PreTrainedTokenizerBase, *, language: str = "en", max_length: int,
                   doc_stride: int = 128, batch_size: int = 64, device: torch.device) -> TableResult:
    """The model's `head` on one normalised table of `scoring.family`: predictions and metrics (a tagging
    F1 as the named seqeval version computes it, QA by the named official scorer)."""
    fam = family(scoring.family)
    feats = fam.tokenise(df, tokenizer, max_length, doc_stride=doc_stride)
    outputs = predict(model, head, fam, feats, pad_id=tokenizer.pad_token_id, batch_size=batch_size, device=device)
    predictions, golds = fam.decode(df, feats, outputs, scoring), fam.golds(df, scoring)
    return TableResult(fam.score(predictions, golds, scoring, language), fam.ids(df), predictions, golds,
                       fam.example_scores(predictions, golds, scoring, language))


def score_table(model: TransferModel, head: str, scoring: Scoring, df: pd.DataFrame,
                tokenizer: PreTrainedTokenizerBase, **options: Any) -> dict[str, float]:
    """The metrics of `evaluate_table`."""
    return evaluate_table(model, head, scoring, df, tokenizer, **options).metrics
