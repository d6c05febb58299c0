"""The greedy lexicon-substitution attack: its search against a hand-made oracle (the edits it keeps, its
query count, the limits k and budget, clean mistakes left alone), and on a tiny trained classifier (it flips
some predictions, and accuracy under attack never exceeds clean accuracy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tests import test_training
from xstilts.attack import apply_edits, attack_metrics, candidate_edits, greedy_attack
from xstilts.evaluation import class_probabilities, evaluate_table
from xstilts.families import Scoring
from xstilts.models import load_encoder
from xstilts.training import train

SWITCHES = {"a": (("de", ("A1", "A2")),), "b": (("de", ("B1",)),)}
WEIGHTS = {"A1": 0.1, "A2": 0.3, "B1": 0.25}


def oracle(calls: list[int]):
    """p(label 0) = 0.9 - the weights of the substituted words it holds; label 1 takes the rest."""
    def probabilities(batch: list[tuple[str | None, ...]]) -> np.ndarray:
        calls.append(len(batch))
        gold = [0.9 - sum(WEIGHTS.get(w, 0.0) for t in texts if t for w in t.split()) for texts in batch]
        return np.array([[p, 1 - p] for p in gold])
    return probabilities


def test_candidate_edits_cover_every_translation_of_either_text() -> None:
    assert candidate_edits(("a b, c", "b"), SWITCHES) == [(0, 0, "A1"), (0, 0, "A2"), (0, 1, "B1,"), (1, 0, "B1")]
    assert apply_edits(("a b, c", "b"), [(0, 1, "B1,"), (1, 0, "B1")]) == ("a B1, c", "B1")


def test_greedy_search_keeps_the_most_harmful_edit_each_step_until_the_prediction_flips() -> None:
    calls: list[int] = []
    found = greedy_attack([("a b c", None)], [0], [0], SWITCHES, oracle(calls), k=3, budget=50, seed=0)[0]
    # step 1: a->A1 (0.8), a->A2 (0.6), b->B1 (0.65): A2; step 2: b->B1 (0.35 < 0.5): flipped, success
    assert found.edits == ((0, 0, "A2"), (0, 1, "B1")) and found.texts == ("A2 B1 c", None)
    assert found.prediction == 1 and found.queries == 1 + 3 + 1 and calls == [1, 3, 1]
    one_step = greedy_attack([("a b c", None)], [0], [0], SWITCHES, oracle([]), k=1, budget=50, seed=0)[0]
    assert one_step.edits == ((0, 0, "A2"),) and one_step.prediction == 0 and one_step.queries == 4


def test_the_budget_caps_forward_passes_with_a_seeded_sample_of_edits() -> None:
    runs = [greedy_attack([("a b c", None)], [0], [0], SWITCHES, oracle([]), k=3, budget=3, seed=s)[0]
            for s in (0, 0, 1, 2, 3)]
    assert all(r.queries <= 3 for r in runs) and runs[0] == runs[1]
    assert len({r.edits for r in runs}) > 1  # which two of the three edits are tried depends on the seed


def test_no_harmful_edit_stops_and_clean_mistakes_are_left_alone() -> None:
    def flat(batch: list[tuple[str | None, ...]]) -> np.ndarray:
        return np.tile([0.9, 0.1], (len(batch), 1))

    found = greedy_attack([("a b", None), ("a", None), ("z", None)], [0, 0, 1], [0, 1, 0], SWITCHES, flat, k=3,
                          budget=50, seed=0)
    assert found[0].edits == () and found[0].queries == 1 + 3 and found[0].prediction == 0
    assert found[1].queries == 0 and found[1].prediction == 1  # wrong under clean: not attacked
    assert found[2].queries == 0 and found[2].prediction == 0
    metrics = attack_metrics(found, [0, 0, 1])
    assert metrics == {"accuracy": 100 / 3, "attack_success_rate": 0.0, "forward_passes": 4.0}
    flipped = greedy_attack([("a b c", None)], [0], [0], SWITCHES, oracle([]), k=3, budget=50, seed=0)
    assert attack_metrics(flipped, [0]) == {"accuracy": 0.0, "attack_success_rate": 100.0, "forward_passes": 5.0}


def test_the_attack_flips_a_tiny_trained_classifier(tiny_encoder: Path, tmp_path: Path) -> None:
    """A classifier of sentences that end in `great` (1) or `awful` (0), attacked with translations of its cue
    words into words it never saw: some predictions flip; accuracy under attack stays at or below clean."""
    _, tokenizer = load_encoder(tiny_encoder)
    data = test_training.task("t", "classification", test_training.classification_table, tokenizer, ["0", "1"])
    model, tokenizer = test_training.fresh_model(tiny_encoder, [data])
    torch.manual_seed(0)
    train(model, tokenizer, [data], optim=test_training.HP, seed=0, device=test_training.CPU,
          state_dir=tmp_path / "state")
    df = test_training.classification_table(40, 5)
    scoring = Scoring("classification", "accuracy", ("0", "1"))
    options = {"max_length": 48, "batch_size": 32, "device": test_training.CPU}
    clean = evaluate_table(model, "t", scoring, df, tokenizer, **options)
    assert clean.metrics["accuracy"] >= 70  # it learnt the cue (chance: 50)

    def probabilities(batch: list[tuple[str | None, ...]]) -> np.ndarray:
        frame = {"text_a": [t[0] for t in batch], "text_b": [t[1] for t in batch], "label": [0] * len(batch)}
        return class_probabilities(model, "t", scoring, pd.DataFrame(frame), tokenizer, **options)

    switches = {"great": (("xx", ("grossartig", "toll")),), "awful": (("xx", ("furchtbar", "schlimm")),),
                "the": (("xx", ("der",)),), "film": (("xx", ("Film",)),)}
    texts = [(a, None) for a in df["text_a"]]
    found = greedy_attack(texts, df["label"].tolist(), clean.predictions, switches, probabilities, k=2, budget=20,
                          seed=0)
    metrics = attack_metrics(found, df["label"].tolist())
    assert metrics["attack_success_rate"] > 0
    assert metrics["accuracy"] <= clean.metrics["accuracy"]
    assert 1 < metrics["forward_passes"] <= 20
    flipped = [r for r, gold in zip(found, df["label"], strict=True) if r.queries and r.prediction != gold]
    assert flipped and all(1 <= len(r.edits) <= 2 for r in flipped)
    # each flip is real: the model itself, run on the edited texts, predicts what the attack recorded
    assert probabilities([r.texts for r in flipped]).argmax(axis=1).tolist() == [r.prediction for r in flipped]
