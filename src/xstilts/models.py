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
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

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


class MaskedLMHead(nn.Module):
    """The pretrained MLM head, for multilingual MLM batches mixed into phase (ii).

    It masks its own inputs (BERT's 80/10/10 rule over `mask_prob` of the non-special tokens) with
    torch's generator, so a resumed run (RNG state restored) masks exactly as an uninterrupted one.
    """

    family = "mlm"

    def __init__(self, lm_head: nn.Module, tokenizer: PreTrainedTokenizerBase, mask_prob: float = 0.15) -> None:
        super().__init__()
        self.lm_head, self.mask_prob, self.num_labels = lm_head, mask_prob, 0
        self.mask_id, self.vocab_size = tokenizer.mask_token_id, len(tokenizer)
        self.register_buffer("special", torch.tensor(sorted(set(tokenizer.all_special_ids))), persistent=False)

    def mask(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids = batch["input_ids"].clone()
        maskable = ~torch.isin(ids, self.special) & (batch["attention_mask"] == 1)
        chosen = (torch.rand(ids.shape, device=ids.device) < self.mask_prob) & maskable
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
        roll = torch.rand(ids.shape, device=ids.device)
        ids = torch.where(chosen & (roll < 0.8), torch.full_like(ids, self.mask_id), ids)
        random_ids = torch.randint(self.vocab_size, ids.shape, device=ids.device)
        ids = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, ids)
        return {**batch, "input_ids": ids, "labels": labels}

    def forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        logits = self.lm_head(hidden)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE)
        return loss, logits


class TransferModel(nn.Module):
    """A shared encoder and a head per task (several heads in multi-task training)."""

    def __init__(self, encoder: PreTrainedModel, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        head = self.heads[task]
        if isinstance(head, MaskedLMHead):
            batch = head.mask(batch)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if ids.dim() == 3:  # multiple choice: (batch, choices, length) -> (batch * choices, length)
            ids, mask = ids.flatten(0, 1), mask.flatten(0, 1)
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return head(hidden, batch)


def _dropout(dropout: float | None) -> dict[str, float]:
    """Config overrides that set the encoder's dropout (BERT-style config names)."""
    return {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}


LOAD_SEED = 0  # weights a checkpoint lacks (an MLM checkpoint has no pooler) are drawn from this seed


def load_encoder(path: str | Path, dropout: float | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An encoder and its tokenizer from a local folder (jobs run offline) or a hub id; `dropout`
    replaces the checkpoint's own. Weights the checkpoint lacks are initialised from LOAD_SEED, without
    touching the caller's random state, so a loaded encoder is the same every time."""
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(LOAD_SEED)
        encoder = AutoModel.from_pretrained(str(path), **_dropout(dropout))
    return encoder, tokenizer


def random_encoder(like: str | Path, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`like`'s architecture and tokenizer with weights drawn as the architecture initialises them
    (seeded): the untrained control's encoder."""
    torch.manual_seed(seed)
    return AutoModel.from_config(AutoConfig.from_pretrained(str(like))), AutoTokenizer.from_pretrained(str(like))


def load_encoder_with_mlm_head(path: str | Path, dropout: float | None = None
                               ) -> tuple[PreTrainedModel, nn.Module, PreTrainedTokenizerBase]:
    """The encoder and its pretrained MLM head from one checkpoint (the decoder stays tied to the
    encoder's embeddings); the head is whatever the masked-LM model holds beside its base model."""
    mlm = AutoModelForMaskedLM.from_pretrained(str(path), **_dropout(dropout))
    heads = [m for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    if len(heads) != 1:
        raise ValueError(f"{path}: cannot tell the MLM head among {[n for n, _ in mlm.named_children()]}")
    return mlm.base_model, heads[0], AutoTokenizer.from_pretrained(str(path))


def build_model(encoder: PreTrainedModel, tasks: dict[str, dict[str, Any]], dropout: float = 0.1,
                extra_heads: dict[str, nn.Module] | None = None) -> TransferModel:
    """Fresh heads for the given tasks (name -> {"family", "num_labels"}), plus ready-made ones."""
    hidden = encoder.config.hidden_size
    heads: dict[str, nn.Module] = {name: Head(t["family"], hidden, t.get("num_labels", 0), dropout)
                                   for name, t in tasks.items()}
    return TransferModel(encoder, {**heads, **(extra_heads or {})})


def save_encoder(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """The encoder (safetensors, config) and its tokenizer: a phase-(ii) checkpoint."""
    encoder.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def save_model(model: TransferModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Encoder (safetensors, config, tokenizer) plus `heads.safetensors` and `heads.json`."""
    save_encoder(model.encoder, tokenizer, out)
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
