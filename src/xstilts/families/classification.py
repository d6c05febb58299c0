"""Classification of one text (SST-2) or of a pair of texts (NLI, paraphrase): RoBERTa's head on <s>."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from xstilts import metrics
from xstilts.families import Family, Head, Scoring
from xstilts.features import Features


class ClassificationHead(Head):
    """RoBERTa's classification head on the first token (<s>): dropout, dense, tanh, dropout, out."""

    family = "classification"

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_labels)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(hidden[:, 0])))))

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        logits = self.logits(hidden)
        return (F.cross_entropy(logits.float(), batch["labels"]) if "labels" in batch else None), logits


class Classification(Family):
    """One text (`text_a`) and a label index; scored by accuracy (and the F1 of the last label, `f1` targets)."""

    name = "classification"

    def texts(self, df: pd.DataFrame) -> tuple[list[str], list[str] | None]:
        return df["text_a"].tolist(), None

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128) -> Features:
        first, second = self.texts(df)
        ids = tokenizer(first, second, truncation=True, max_length=max_length)["input_ids"]
        return Features({"input_ids": ids, "labels": df["label"].tolist()}, [len(x) for x in ids])

    def head(self, hidden: int, num_labels: int, dropout: float) -> Head:
        return ClassificationHead(hidden, num_labels, dropout)

    def score(self, predictions: list[Any], golds: list[Any], scoring: Scoring, language: str) -> dict[str, float]:
        """Accuracy; with the metric "f1" also the F1 of the last label (toxic)."""
        scores = {"accuracy": metrics.accuracy(predictions, golds)}
        if scoring.metric == "f1":
            scores["f1"] = metrics.positive_f1(predictions, golds, positive=len(scoring.labels) - 1)
        return scores

    def example_scores(self, predictions: list[Any], golds: list[Any], scoring: Scoring,
                       language: str) -> list[float] | None:
        """Each example's accuracy; None for F1 (corpus-level)."""
        if scoring.metric == "f1":
            return None
        return [100.0 * (p == g) for p, g in zip(predictions, golds, strict=True)]

    def show(self, value: Any, scoring: Scoring) -> str:
        return scoring.labels[value] if scoring.labels and 0 <= value < len(scoring.labels) else str(value)


class PairClassification(Classification):
    """Two texts (`text_a`, `text_b`: premise and hypothesis, two questions, two sentences) and a label."""

    name = "pair_classification"

    def texts(self, df: pd.DataFrame) -> tuple[list[str], list[str] | None]:
        return df["text_a"].tolist(), df["text_b"].tolist()
