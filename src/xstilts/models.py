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
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from xstilts.families import Head, family


class TransferModel(nn.Module):
    """A shared encoder and a head per task (several heads in multi-task training)."""

    def __init__(self, encoder: PreTrainedModel, heads: dict[str, Head]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        head = self.heads[task]
        batch = head.inputs(batch)
        return head(head.encode(self.encoder, batch), batch)


def _dropout(dropout: float | None) -> dict[str, float]:
    """Config overrides that set the encoder's dropout (BERT-style config names)."""
    return {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}


LOAD_SEED = 0  # weights a checkpoint lacks (an MLM checkpoint has no pooler) are drawn from this seed


def load_encoder(path: str | Path, dropout: float | None = None, attention: str = "sdpa"
                 ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An encoder and its tokenizer from a local folder (jobs run offline) or a hub id; `dropout`
    replaces the checkpoint's own; `attention` is the attention kernel (`xstilts.packing.implementation`).
    Weights the checkpoint lacks are initialised from LOAD_SEED, without touching the caller's random state,
    so a loaded encoder is the same every time."""
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(LOAD_SEED)
        encoder = AutoModel.from_pretrained(str(path), attn_implementation=attention, **_dropout(dropout))
    return encoder, tokenizer


def random_encoder(like: str | Path, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`like`'s architecture and tokenizer with weights drawn as the architecture initialises them
    (seeded): the untrained control's encoder."""
    torch.manual_seed(seed)
    return AutoModel.from_config(AutoConfig.from_pretrained(str(like))), AutoTokenizer.from_pretrained(str(like))


def load_encoder_with_mlm_head(path: str | Path, dropout: float | None = None, attention: str = "sdpa"
                               ) -> tuple[PreTrainedModel, nn.Module, PreTrainedTokenizerBase]:
    """The encoder and its pretrained MLM head from one checkpoint (the decoder stays tied to the
    encoder's embeddings); the head is whatever the masked-LM model holds beside its base model."""
    mlm = AutoModelForMaskedLM.from_pretrained(str(path), attn_implementation=attention, **_dropout(dropout))
    heads = [m for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    if len(heads) != 1:
        raise ValueError(f"{path}: cannot tell the MLM head among {[n for n, _ in mlm.named_children()]}")
    return mlm.base_model, heads[0], AutoTokenizer.from_pretrained(str(path))


def build_model(encoder: PreTrainedModel, tasks: dict[str, dict[str, Any]], dropout: float = 0.1,
                extra_heads: dict[str, Head] | None = None) -> TransferModel:
    """Fresh heads for the given tasks (name -> {"family", "num_labels"}), each its family's, plus
    ready-made ones."""
    hidden = encoder.config.hidden_size
    heads: dict[str, nn.Module] = {name: family(t["family"]).head(hidden, t.get("num_labels", 0), dropout)
                                   for name, t in tasks.items()}
    return TransferModel(encoder, {**heads, **(extra_heads or {})})


def save_encoder(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path,
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """The encoder (safetensors, config) and its tokenizer: a phase-(ii) checkpoint. `state`: its weights when
    the module does not hold them whole (a sharded model's, gathered)."""
    encoder.save_pretrained(out, safe_serialization=True, **({"state_dict": state} if state is not None else {}))
    tokenizer.save_pretrained(out)


def part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The weights of a submodule (`encoder.`, `heads.`) in a whole model's, their names without the prefix."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def save_model(model: TransferModel, tokenizer: PreTrainedTokenizerBase, out: Path,
               state: dict[str, torch.Tensor] | None = None) -> None:
    """Encoder (safetensors, config, tokenizer) plus `heads.safetensors` and `heads.json`. `state`: the whole
    model's weights when the module does not hold them (a sharded model's, gathered)."""
    save_encoder(model.encoder, tokenizer, out, None if state is None else part(state, "encoder."))
    heads = {n: {"family": h.family, "num_labels": h.num_labels} for n, h in model.heads.items()}
    weights = model.heads.state_dict() if state is None else part(state, "heads.")
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "heads.safetensors"))
    (out / "heads.json").write_text(json.dumps(heads, indent=1))


def load_model(path: Path) -> tuple[TransferModel, PreTrainedTokenizerBase]:
    """A model saved by `save_model`."""
    encoder, tokenizer = load_encoder(path)
    model = build_model(encoder, json.loads((path / "heads.json").read_text()))
    model.heads.load_state_dict(load_file(str(path / "heads.safetensors")))
    return model, tokenizer


def continue_head(model: TransferModel, path: Path, name: str) -> None:
    """Load the one head of the phase-(iii) checkpoint at `path` into `model.heads[name]`: a later stage of a
    two-stage phase (iii) goes on with the earlier stage's head (COPA after SIQA: one score per choice)."""
    heads = json.loads((path / "heads.json").read_text())
    if len(heads) != 1 or next(iter(heads.values()))["family"] != model.heads[name].family:
        raise ValueError(f"{path}: expected one {model.heads[name].family} head to continue, found {heads}")
    model.heads[name].load_state_dict(part(load_file(str(path / "heads.safetensors")), f"{next(iter(heads))}."))
