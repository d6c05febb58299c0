"""Task families as one protocol: each family tokenises its tables, collates batches, builds its head,
decodes the model's outputs into one prediction per example, and scores them.

One object per family (`FAMILIES`): classification, pair classification, multiple choice, tagging,
extractive QA, retrieval, and MLM (mixed into phase ii, never scored). What differs between the tasks of
a family (labels, the seqeval version, the QA scorer, the retrieval search) is catalogue data, given to
the family's steps as a `Scoring`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import torch
from torch import nn

from xstilts.features import Features, padded

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Scoring:
    """How a task's predictions are scored: its family, metric and labels (CCG's come from its data), the
    seqeval version a tagging F1 follows, the official QA scorer."""

    family: str
    metric: str
    labels: tuple[str, ...] = ()
    seqeval: str = "1.2.2"
    qa_scorer: str = "squad"

    @classmethod
    def of(cls, task: Any, labels: Sequence[str] | None = None) -> Scoring:
        """The scoring of a catalogue entry (`Dataset` or `Target`); `labels` replace its own."""
        return cls(task.family, task.metric, tuple(task.labels if labels is None else labels), task.seqeval,
                   task.qa_scorer)


class Head(nn.Module):
    """A task head over the encoder; `forward(hidden, batch)` returns (loss or None, logits)."""

    family: ClassVar[str]

    def encode(self, encoder: PreTrainedModel, batch: dict[str, Any]) -> torch.Tensor:
        """The encoder's last hidden states for this head's inputs (padding-free when the batch is packed)."""
        from xstilts.packing import encode

        return encode(encoder, batch["input_ids"], batch["attention_mask"], batch.get("packing"))

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch as this head reads it (the MLM head masks its inputs here)."""
        return batch


class Family:
    """The steps every family has. A prediction is a plain value (a label index, a list of tag indices, an
    answer text, ...); `show` writes it into predictions.parquet."""

    name: ClassVar[str]

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128) -> Features:
        raise NotImplementedError

    def collate(self, features: Features, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
        """A batch of the given rows, padded only to the longest of them; labels where the rows have them."""
        input_ids, mask = padded([features.columns["input_ids"][i] for i in indices], pad_id)
        batch = {"input_ids": input_ids, "attention_mask": mask}
        if "labels" in features.columns:
            batch["labels"] = torch.tensor([features.columns["labels"][i] for i in indices])
        return batch

    def head(self, hidden: int, num_labels: int, dropout: float) -> Head:
        raise NotImplementedError

    def outputs(self, logits: Any, indices: list[int], features: Features) -> list[Any]:
        """The raw output of each row of a batch, on the host (`indices`: the batch's rows)."""
        best = logits.argmax(-1).cpu().tolist()
        return [int(b) for b in best]

    def decode(self, df: pd.DataFrame, features: Features, outputs: list[Any], scoring: Scoring) -> list[Any]:
        """One prediction per example (row of `df`) from the rows' raw outputs."""
        return outputs

    def golds(self, df: pd.DataFrame, scoring: Scoring) -> list[Any]:
        return df["label"].tolist()

    def score(self, predictions: list[Any], golds: list[Any], scoring: Scoring, language: str) -> dict[str, float]:
        raise NotImplementedError

    def example_scores(self, predictions: list[Any], golds: list[Any], scoring: Scoring,
                       language: str) -> list[float] | None:
        """Each example's score on the target's headline scale (its mean is the headline), where the
        metric has one; None for corpus-level metrics (entity F1)."""
        return None

    def show(self, value: Any, scoring: Scoring) -> str:
        """A prediction or gold value as text for predictions.parquet (JSON for lists)."""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def ids(self, df: pd.DataFrame) -> list[str]:
        """Each example's id: the table's `id` column, else its row number."""
        return df["id"].astype(str).tolist() if "id" in df else [str(i) for i in range(len(df))]


def _registry() -> dict[str, Family]:
    from xstilts.families.classification import Classification, PairClassification
    from xstilts.families.mlm import MaskedLM
    from xstilts.families.multiple_choice import MultipleChoice
    from xstilts.families.qa import ExtractiveQA
    from xstilts.families.retrieval import Retrieval
    from xstilts.families.tagging import Tagging

    families: list[Family] = [Classification(), PairClassification(), MultipleChoice(), Tagging(), ExtractiveQA(),
                              Retrieval(), MaskedLM()]
    return {f.name: f for f in families}


FAMILIES: dict[str, Family] = _registry()


def family(name: str) -> Family:
    return FAMILIES[name]
