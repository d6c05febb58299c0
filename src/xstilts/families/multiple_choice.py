"""Multiple choice (CommonsenseQA, Cosmos QA, HellaSwag): the context against each choice, one score each."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch.nn import functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.families import Head
from xstilts.families.classification import Classification, ClassificationHead
from xstilts.features import Features, padded
from xstilts.packing import encode


class MultipleChoiceHead(ClassificationHead):
    """RoBERTa's head with one output: a score per (context, choice) sequence, a softmax over the choices."""

    family = "multiple_choice"

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__(hidden, 1, dropout)
        self.num_labels = num_labels

    def encode(self, encoder: PreTrainedModel, batch: dict[str, Any]) -> torch.Tensor:
        """(batch, choices, length) inputs read as batch x choices sequences (a packing's rows are the same)."""
        ids, mask = batch["input_ids"].flatten(0, 1), batch["attention_mask"].flatten(0, 1)
        return encode(encoder, ids, mask, batch.get("packing"))

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        logits = self.logits(hidden).view(batch["input_ids"].shape[:2])
        return (F.cross_entropy(logits.float(), batch["labels"]) if "labels" in batch else None), logits


class MultipleChoice(Classification):
    """A context, a list of choices and the index of the right one; scored by accuracy."""

    name = "multiple_choice"

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128) -> Features:
        counts = df["choices"].map(len).tolist()
        firsts = [c for c, n in zip(df["context"], counts, strict=True) for _ in range(n)]
        seconds = [str(choice) for choices in df["choices"] for choice in choices]
        flat = tokenizer(firsts, seconds, truncation=True, max_length=max_length)["input_ids"]
        ids, start = [], 0
        for n in counts:
            ids.append(flat[start:start + n])
            start += n
        return Features({"input_ids": ids, "labels": df["label"].tolist()},
                        [max(len(x) for x in row) * len(row) for row in ids])

    def collate(self, features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        rows = [seq for i in indices for seq in features.columns["input_ids"][i]]
        input_ids, mask = padded(rows, pad_id)
        shape = (len(indices), -1, mask.shape[1])
        return {"input_ids": input_ids.view(shape), "attention_mask": mask.view(shape),
                "labels": torch.tensor([features.columns["labels"][i] for i in indices])}

    def head(self, hidden: int, num_labels: int, dropout: float) -> Head:
        return MultipleChoiceHead(hidden, num_labels, dropout)

    def show(self, value: Any, scoring: Any) -> str:
        return str(value)
