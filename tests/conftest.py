"""Shared fixtures: a tiny XLM-R-architecture encoder with a real (trained) Unigram tokenizer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from xstilts.demo.pretrain import train_tokenizer

# One thread: the tests' tiny models gain nothing from more, and on a 2-core machine shared with other work
# several threads contend (the QA training test: seconds with one thread, 15 minutes with two under load).
torch.set_num_threads(1)

WORDS = ("anna bob carla lives works in at paris rome berlin acme globex the a film was good bad great "
         "awful is not city company person who where what").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer XLM-R and its tokenizer, saved like a hub checkpoint."""
    out = tmp_path_factory.mktemp("tiny_encoder")
    tokenizer = train_tokenizer([*sentences(500), "北京 في الْمدينة Müller Việt"], vocab_size=300)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=258,
                              type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    XLMRobertaModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
