"""Encoder architectures: the known XLM-R sizes, their parameters, and the FLOPs of a forward pass.

FLOPs are counted as nanoGPT and PaLM count them: 2 per multiply-add of the weight matrices of the transformer
layers for every token (`matmul_params`: the embedding tables are lookups, not products), plus attention's
score and value products, 4 x layers x hidden x n per token of a sequence of n tokens; a training step is 3
forward passes (the backward pass is 2), so training costs 6 x matmul_params x tokens plus 12 x layers x hidden
x n^2 per sequence. The MLM head's dense layer and decoder count too when the head runs (every token). Nothing
here imports torch: `xstilts plan` prices a grid on a laptop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINING_PASSES = 3  # forward + backward (twice the forward's FLOPs)


@dataclass(frozen=True)
class Architecture:
    """A BERT-style encoder's shape (a Hugging Face config's `num_hidden_layers`, `hidden_size`, ...)."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    positions: int = 514
    type_vocab: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Architecture:
        """From a Hugging Face `config.json` (its dict)."""
        return cls(layers=config["num_hidden_layers"], hidden=config["hidden_size"],
                   heads=config["num_attention_heads"], intermediate=config["intermediate_size"],
                   vocab=config["vocab_size"], positions=config.get("max_position_embeddings", 514),
                   type_vocab=config.get("type_vocab_size", 1))

    @property
    def layer_params(self) -> int:
        """One transformer layer: Q, K, V, output projections, the feed-forward pair, biases, two layer norms."""
        h, i = self.hidden, self.intermediate
        return 4 * h * h + 2 * h * i + 9 * h + i

    @property
    def params(self) -> int:
        """Every parameter of the encoder with its pooler (what `AutoModel` loads). XLM-R XL and XXL normalise
        before their sublayers: their embeddings' layer norm is the encoder's last one instead, the same count."""
        h = self.hidden
        embeddings = (self.vocab + self.positions + self.type_vocab) * h + 2 * h
        return embeddings + self.layers * self.layer_params + h * h + h

    @property
    def matmul_params(self) -> int:
        """The weights that multiply every token: the layers' matrices (biases and norms are not products)."""
        return self.layers * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate)

    @property
    def mlm_head_params(self) -> int:
        """The MLM head's matrices (dense, then the decoder onto the vocabulary), applied to every token."""
        return self.hidden * self.hidden + self.hidden * self.vocab

    def forward_flops(self, lengths: Iterable[int], mlm: bool = False) -> float:
        """FLOPs of one forward pass over sequences of these lengths (real tokens only)."""
        weights = self.matmul_params + (self.mlm_head_params if mlm else 0)
        tokens = squares = 0
        for n in lengths:
            tokens += n
            squares += n * n
        return 2.0 * weights * tokens + 4.0 * self.layers * self.hidden * squares


# The XLM-R family (Conneau et al. 2020; Goyal et al. 2021), as their hub configs give them.
_BASE = Architecture(layers=12, hidden=768, heads=12, intermediate=3072, vocab=250002)
_LARGE = Architecture(layers=24, hidden=1024, heads=16, intermediate=4096, vocab=250002)
_XL = Architecture(layers=36, hidden=2560, heads=32, intermediate=10240, vocab=250880)
_XXL = Architecture(layers=48, hidden=4096, heads=32, intermediate=16384, vocab=250880)
ARCHITECTURES: dict[str, Architecture] = {
    "xlm-roberta-base": _BASE, "FacebookAI/xlm-roberta-base": _BASE,
    "xlm-roberta-large": _LARGE, "FacebookAI/xlm-roberta-large": _LARGE,
    "facebook/xlm-roberta-xl": _XL, "facebook/xlm-roberta-xxl": _XXL,
}


def architecture(model: str | Path, folder: Path | None = None) -> tuple[Architecture, str]:
    """The architecture of the configured model, and where it was read: the model's folder (or `folder`, where
    the workflow puts it) when its config.json is there, else the table of known hub models."""
    for candidate in (Path(str(model)), folder):
        if candidate is not None and (candidate / "config.json").is_file():
            config = json.loads((candidate / "config.json").read_text())
            return Architecture.from_config(config), str(candidate / "config.json")
    if str(model) in ARCHITECTURES:
        return ARCHITECTURES[str(model)], "known architectures"
    raise ValueError(f"no architecture known for model {str(model)!r}: download it first (`snakemake ... --until "
                     f"fetch_model`), or use one of {', '.join(ARCHITECTURES)}")
