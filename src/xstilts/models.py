"""An encoder from the hub with one head per task; saving and loading as safetensors.

Phase (ii) keeps only the encoder (`save_encoder`); phase (iii) saves the encoder and its head
(`save_model`), so evaluation loads exactly what was selected on the English dev set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xstilts.features import IGNORE


class Head(nn.Module):
    """A task head over the encoder's last hidden states; returns (loss or None, logits)."""

    def __init__(self, family: str, hidden: int, num_labels: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.family, self.num_labels = family, num_labels
        self.dropout = nn.Dropout(dropout)
        if family in ("classification", "multiple_choice"):  # RoBERTa's head on <s>
            self.dense = nn.Linear(hidden, hidden)
            self.out = nn.Linear(hidden, 1 if family == "multiple_choice" else num_labels)
        elif family == "tagging":
            self.out = nn.Linear(hidden, num_labels)
        elif family == "qa":
            self.out = nn.Linear(hidden, 2)
        else:
            raise ValueError(f"no head for family {family!r}")

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        if self.family in ("classification", "multiple_choice"):
            x = self.dropout(torch.tanh(self.dense(self.dropout(hidden[:, 0]))))
            logits = self.out(x)
            if self.family == "multiple_choice":
                logits = logits.view(batch["input_ids"].shape[:2])
            loss = F.cross_entropy(logits.float(), batch["labels"]) if "labels" in batch else None
            return loss, logits
        logits = self.out(self.dropout(hidden))
        if self.family == "tagging":
            loss = (F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE)
                    if "labels" in batch else None)
            return loss, logits
        start, end = logits.float().unbind(-1)
        mask = batch["attention_mask"] == 0
        start, end = start.masked_fill(mask, -1e4), end.masked_fill(mask, -1e4)
        loss = None
        if "start_positions" in batch:
            loss = (F.cross_entropy(start, batch["start_positions"]) +
                    F.cross_entropy(end, batch["end_positions"])) / 2
        return loss, (start, end)


class TransferModel(nn.Module):
    """A shared encoder and a head per task (several heads in multi-task training)."""

    def __init__(self, encoder: PreTrainedModel, heads: dict[str, Head]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if ids.dim() == 3:  # multiple choice: (batch, choices, length) -> (batch * choices, length)
            ids, mask = ids.flatten(0, 1), mask.flatten(0, 1)
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.heads[task](hidden, batch)


def load_encoder(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An encoder and its tokenizer from a local folder (jobs run offline) or a hub id."""
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoder = AutoModel.from_pretrained(str(path))
    return encoder, tokenizer


def build_model(encoder: PreTrainedModel, tasks: dict[str, dict[str, Any]], dropout: float = 0.1
                ) -> TransferModel:
    """Fresh heads for the given tasks: name -> {"family", "num_labels"}."""
    hidden = encoder.config.hidden_size
    heads = {name: Head(t["family"], hidden, t.get("num_labels", 0), dropout) for name, t in tasks.items()}
    return TransferModel(encoder, heads)


def save_encoder(model: TransferModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    model.encoder.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def save_model(model: TransferModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Encoder (safetensors, config, tokenizer) plus `heads.safetensors` and `heads.json`."""
    save_encoder(model, tokenizer, out)
    heads = {n: {"family": h.family, "num_labels": h.num_labels} for n, h in model.heads.items()}
    state = {k: v.contiguous() for k, v in model.heads.state_dict().items()}
    save_file(state, str(out / "heads.safetensors"))
    (out / "heads.json").write_text(json.dumps(heads, indent=1))


def load_model(path: Path) -> tuple[TransferModel, PreTrainedTokenizerBase]:
    """A model saved by `save_model`."""
    encoder, tokenizer = load_encoder(path)
    model = build_model(encoder, json.loads((path / "heads.json").read_text()))
    model.heads.load_state_dict(load_file(str(path / "heads.safetensors")))
    return model, tokenizer
