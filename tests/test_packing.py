"""Padding-free packed batches (xstilts.packing) on the CPU: torch's varlen kernel needs CUDA, so the tests put a
per-sequence SDPA in its place; the packed encoder then gives the padded encoder's hidden states at every real
token, for plain and multiple-choice batches, and trains to the same losses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from transformers import XLMRobertaConfig, XLMRobertaModel

from tests.test_training import CPU, HP, classification_table, task
from xstilts import packing
from xstilts.families import family
from xstilts.models import build_model, load_encoder
from xstilts.training import train

CONFIG = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=80, type_vocab_size=1, pad_token_id=1, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)


def reference_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor,
                     max_q: int, max_k: int) -> torch.Tensor:
    """varlen attention, one sequence at a time: [tokens, heads, head size]."""
    out = torch.empty_like(q)
    for a, b in zip(cu_q[:-1].tolist(), cu_q[1:].tolist(), strict=True):
        out[a:b] = F.scaled_dot_product_attention(*(t[a:b].transpose(0, 1) for t in (q, k, v))).transpose(0, 1)
    return out


@pytest.fixture
def encoders(monkeypatch: pytest.MonkeyPatch) -> tuple[XLMRobertaModel, XLMRobertaModel]:
    """The same weights with sdpa (padded) and with the registered varlen attention (packed)."""
    monkeypatch.setattr(packing, "varlen_attn", reference_varlen)
    torch.manual_seed(0)
    padded = XLMRobertaModel(XLMRobertaConfig(**CONFIG, attn_implementation="sdpa")).eval()
    packed = XLMRobertaModel(XLMRobertaConfig(**CONFIG, attn_implementation=packing.VARLEN)).eval()
    packed.load_state_dict(padded.state_dict())
    return padded, packed


def batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(lengths), max(lengths)), CONFIG["pad_token_id"])
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, 120, (n,))
    return ids, (ids != CONFIG["pad_token_id"]).long()


def test_packing_holds_the_real_tokens_their_positions_and_boundaries() -> None:
    _, mask = batch([3, 1, 4])
    p = packing.pack(mask, first_position=2)
    assert p.index.tolist() == [0, 1, 2, 4, 8, 9, 10, 11]
    assert p.positions.tolist() == [2, 3, 4, 2, 2, 3, 4, 5]  # XLM-R: padding index + 1 onwards
    assert p.cu.tolist() == [0, 3, 4, 8] and p.cu.dtype == torch.int32 and p.max_length == 4
    assert packing.position_offset(XLMRobertaConfig(**CONFIG)) == 2
    assert not packing.packs(XLMRobertaModel(XLMRobertaConfig(**CONFIG)))  # sdpa: padded batches


def test_packed_encoder_gives_the_padded_hidden_states(encoders: tuple[XLMRobertaModel, XLMRobertaModel]) -> None:
    padded, packed = encoders
    assert packing.packs(packed)
    ids, mask = batch([7, 3, 12, 1])
    offset = packing.position_offset(packed.config)
    with torch.no_grad():
        want = packing.encode(padded, ids, mask)
        got = packing.encode(packed, ids, mask, packing.pack(mask, offset))
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], rtol=1e-5, atol=1e-5)
    assert (got[~real] == 0).all()


def test_multiple_choice_rows_pack_like_any_rows(encoders: tuple[XLMRobertaModel, XLMRobertaModel]) -> None:
    padded, packed = encoders
    ids, mask = batch([5, 9, 2, 6, 8, 3])
    ids, mask = ids.view(2, 3, -1), mask.view(2, 3, -1)  # 2 questions x 3 choices
    head = family("multiple_choice").head(32, 3, 0.0)
    with torch.no_grad():
        want = head.encode(padded, {"input_ids": ids, "attention_mask": mask})
        got = head.encode(packed, {"input_ids": ids, "attention_mask": mask,
                                   "packing": packing.pack(mask, packing.position_offset(packed.config))})
    real = mask.flatten(0, 1).bool()
    torch.testing.assert_close(got[real], want[real], rtol=1e-5, atol=1e-5)


def test_packed_training_follows_the_padded_losses(tiny_encoder: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packing, "varlen_attn", reference_varlen)
    _, tokenizer = load_encoder(tiny_encoder)
    hp = replace(HP, epochs=1, dropout=0.0)
    data = [replace(task("cls", "pair_classification", classification_table, tokenizer, ["0", "1"]), hp=hp)]
    losses = {}
    for attention in ("sdpa", packing.VARLEN):
        encoder, _ = load_encoder(tiny_encoder, dropout=0.0, attention=attention)
        torch.manual_seed(0)
        model = build_model(encoder, {"cls": {"family": "pair_classification", "num_labels": 2}}, dropout=0.0)
        run = train(model, tokenizer, data, optim=hp, seed=1, device=CPU, state_dir=tmp_path / attention)
        losses[attention] = [e["loss"] for e in run.log]
    assert len(losses["sdpa"]) == 10
    assert losses[packing.VARLEN] == pytest.approx(losses["sdpa"], rel=1e-4)
