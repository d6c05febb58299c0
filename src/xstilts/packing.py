"""Padding-free packed batches: the encoder runs on the real tokens of a batch laid end to end.

Where the attention kernel takes variable-length sequences (`VARLEN_ATTENTION`: FlashAttention's varlen
kernels through transformers, or torch's own `torch.nn.attention.varlen`, registered here as `xstilts_varlen`),
a padded batch's real tokens are flattened into one sequence with the boundaries of its rows (`Packing`, made on
the host by the training loop, so no device sync) and each row's own positions; the encoder's output is scattered
back into the padded shape, so that every head reads `[rows, length, hidden]` as before. Padding costs no FLOPs.
Elsewhere (sdpa, eager, the CPU) batches stay length-grouped and padded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface, PretrainedConfig, PreTrainedModel

from xstilts.settings import Attention

VARLEN = "xstilts_varlen"
# The attention implementations that read packed batches (cu_seq_lens_* keyword arguments).
VARLEN_ATTENTION = frozenset({"flash_attention_2", "flash_attention_3", VARLEN})
# Models whose positions start after the padding index (RoBERTa's rule); others count from 0.
_PADDING_OFFSET_MODELS = frozenset({"xlm-roberta", "xlm-roberta-xl", "roberta", "camembert"})


def implementation(setting: Attention, device: torch.device) -> str:
    """The `attn_implementation` for a configured attention on a device: sdpa on the CPU (it has no varlen or
    flash kernels); refused at once when the package a kernel needs is missing."""
    if device.type != "cuda":
        return "sdpa"
    needs = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}.get(setting)
    if needs and importlib.util.find_spec(needs) is None:
        raise RuntimeError(f"attention {setting} needs the package {needs}, which is not installed: install it, or "
                           "configure execution.attention: varlen (torch's kernel) or sdpa")
    return VARLEN if setting == "varlen" else setting


def packs(encoder: PreTrainedModel) -> bool:
    """Whether the encoder takes packed batches (its attention reads variable-length sequences)."""
    return encoder.config._attn_implementation in VARLEN_ATTENTION


def position_offset(config: PretrainedConfig) -> int:
    """The position id of a sequence's first token."""
    return config.pad_token_id + 1 if config.model_type in _PADDING_OFFSET_MODELS else 0


@dataclass(frozen=True)
class Packing:
    """A padded batch's real tokens as one sequence: their places in the flattened batch (`index`), their
    positions within their rows, the rows' cumulative boundaries (`cu`, int32) and the longest row."""

    index: torch.Tensor
    positions: torch.Tensor
    cu: torch.Tensor
    max_length: int

    def to(self, device: torch.device, non_blocking: bool = False) -> Packing:
        return Packing(*(t.to(device, non_blocking=non_blocking) for t in (self.index, self.positions, self.cu)),
                       self.max_length)


def pack(attention_mask: torch.Tensor, first_position: int) -> Packing:
    """The packing of a right-padded batch from its attention mask (any leading shape: rows are its last axis)."""
    rows = attention_mask.reshape(-1, attention_mask.shape[-1]).bool()
    lengths = rows.sum(1)
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = lengths.cumsum(0)
    positions = (rows.long().cumsum(1) - 1 + first_position)[rows]
    return Packing(rows.reshape(-1).nonzero().squeeze(1), positions, cu, int(lengths.max()))


def encode(encoder: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           packing: Packing | None = None) -> torch.Tensor:
    """The encoder's last hidden states, `[*input_ids.shape, hidden]`; with `packing`, computed on the real
    tokens only (zeros at the padding)."""
    if packing is None:
        return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    flat = input_ids.reshape(-1)[packing.index][None]
    hidden = encoder(input_ids=flat, position_ids=packing.positions[None], cu_seq_lens_q=packing.cu,
                     cu_seq_lens_k=packing.cu, max_length_q=packing.max_length,
                     max_length_k=packing.max_length).last_hidden_state[0]
    out = hidden.new_zeros(input_ids.numel(), hidden.shape[-1]).index_copy(0, packing.index, hidden)
    return out.view(*input_ids.shape, hidden.shape[-1])


def varlen_attn(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seq_q: torch.Tensor,
                cu_seq_k: torch.Tensor, max_q: int, max_k: int) -> torch.Tensor:
    """torch's variable-length FlashAttention (torch >= 2.10, CUDA): [tokens, heads, head size] in and out."""
    from torch.nn.attention.varlen import varlen_attn as kernel

    return kernel(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k)


def _varlen_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: Any, dropout: float = 0.0, scaling: float | None = None,
                    **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention interface over `varlen_attn` (a packed batch: [1, heads, tokens, head size])."""
    if "cu_seq_lens_q" not in kwargs:
        raise RuntimeError("xstilts_varlen attention needs a packed batch (xstilts.packing.encode)")
    if dropout:
        raise RuntimeError("xstilts_varlen attention has no attention dropout; train with dropout 0")
    if scaling is not None and abs(scaling - query.shape[-1] ** -0.5) > 1e-6:
        raise RuntimeError(f"xstilts_varlen attention scales by 1/sqrt(head size), not {scaling}")
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    out = varlen_attn(q, k, v, kwargs["cu_seq_lens_q"], kwargs["cu_seq_lens_k"], kwargs["max_length_q"],
                      kwargs["max_length_k"])
    return out[None], None


AttentionInterface.register(VARLEN, _varlen_forward)
