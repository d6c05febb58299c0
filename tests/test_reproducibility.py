"""The same command, the same numbers: the demo's tokenizer is trained to the same file every time
(the whole grid's bitwise repeat is tests/test_workflow.py)."""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import sentences
from xstilts.demo.pretrain import canonical_pieces, train_tokenizer

MIXED = [*sentences(400), *sentences(100, seed=3), "北京 上海 东京 深圳 懐 奨 歱 冖 倉", "Müller Việt في الْمدينة"]


def test_demo_tokenizer_is_the_same_file_every_time(tmp_path: Path) -> None:
    """tokenizers' Unigram trainer varies run to run (a randomly seeded HashMap orders its sums and the
    scores of rare characters); trained five times, the saved tokenizer is byte-identical."""
    files = set()
    for i in range(5):
        train_tokenizer(MIXED, vocab_size=300).save_pretrained(tmp_path / str(i))
        files.add((tmp_path / str(i) / "tokenizer.json").read_bytes())
    assert len(files) == 1


def test_canonical_pieces_ignore_the_order_of_rare_characters_and_last_digits() -> None:
    special = [("<s>", 0.0), ("<pad>", 0.0)]
    trained = [("▁the", -2.5), ("a", -3.0000000000001), ("b", -3.0), ("▁cat", -7.25),
               ("x", -12.0), ("y", -11.9999), ("z", -11.9998)]  # x, y, z: dropped characters (min + k x 1e-4)
    rng = random.Random(0)
    variants = set()
    for _ in range(20):
        order = trained[:]
        rng.shuffle(order)
        jittered = [(p, s + rng.choice([-1, 1]) * 1e-14) for p, s in order]
        shuffled_rare = dict(zip(["x", "y", "z"], rng.sample([-12.0, -11.9999, -11.9998], 3), strict=True))
        variants.add(tuple(canonical_pieces(special + [(p, shuffled_rare.get(p, s)) for p, s in jittered], 2)))
    assert variants == {(("<s>", 0.0), ("<pad>", 0.0), ("▁the", -2.5), ("a", -3.0), ("b", -3.0), ("▁cat", -7.25),
                         ("z", -11.9998), ("y", -11.9999), ("x", -12.0))}
