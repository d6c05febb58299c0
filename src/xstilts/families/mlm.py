"""Masked language modelling, mixed into phase (ii) (the paper's alternative): plain text lines, masked by
the pretrained MLM head itself; never scored."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from xstilts.families import Family, Head
from xstilts.features import IGNORE, Features


class MaskedLMHead(Head):
    """The pretrained MLM head. It masks its own inputs (BERT's 80/10/10 rule over `mask_prob` of the
    non-special tokens) with torch's generator, so a resumed run (RNG state restored) masks exactly as an
    uninterrupted one."""

    family = "mlm"

    def __init__(self, lm_head: nn.Module, tokenizer: PreTrainedTokenizerBase, mask_prob: float = 0.15) -> None:
        super().__init__()
        self.lm_head, self.mask_prob, self.num_labels = lm_head, mask_prob, 0
        self.mask_id, self.vocab_size = tokenizer.mask_token_id, len(tokenizer)
        self.register_buffer("special", torch.tensor(sorted(set(tokenizer.all_special_ids))), persistent=False)

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


class MaskedLM(Family):
    """Lines of text (`text`); the head is the checkpoint's own (`MaskedLMHead`), not a fresh one."""

    name = "mlm"

    def tokenise(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, *,
                 doc_stride: int = 128) -> Features:
        ids = tokenizer(df["text"].tolist(), truncation=True, max_length=max_length)["input_ids"]
        return Features({"input_ids": ids}, [len(x) for x in ids])
