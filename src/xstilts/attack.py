"""The `adversarial` condition: a budgeted greedy word-substitution attack from bilingual lexicons, in the
manner of PolyGloss (Tan & Joty 2021, "Code-Mixing on Sesame Street"), on classification and pair
classification examples.

Each example the model classifies right (under `clean`) is attacked: its candidate edits are every word (of
either text) that the lexicons translate, each into each of its translations (`conditions.translation_options`,
in the languages `conditions.switch_languages` names). Step by step, at most `k` steps, every edit not yet
made at an untouched word is tried in one batch, and the one that lowers the gold label's probability most is
kept; the search stops when the prediction flips (success), when no edit lowers that probability, or when the
example's query budget (`budget` forward passes, its clean pass included) is spent: a step that would pass it
tries a seeded sample of the edits that fit. The model is an oracle here (texts -> class probabilities), so
the search is a pure function of the examples, the lexicons, the oracle and the seed.

Reported: accuracy under attack (the clean mistakes stay mistakes), the attack success rate (flipped over
attacked) and the forward passes per attacked example.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.conditions import join_words, split_words, translation_options
from xstilts.lexicons import Switches

Texts = tuple[str | None, ...]  # one example's texts (text_a, text_b); None: the family has no second text
Oracle = Callable[[list[Texts]], np.ndarray]  # examples -> class probabilities [n, labels]
Edit = tuple[int, int, str]  # (text, word, replacement)


@dataclass(frozen=True)
class Attacked:
    """One example after the attack: its texts, the prediction on them, the forward passes spent (0: not
    attacked) and the words substituted."""

    texts: Texts
    prediction: int
    queries: int
    edits: tuple[Edit, ...]


def candidate_edits(texts: Texts, switches: Switches) -> list[Edit]:
    """Every (text, word, translation) substitution the lexicons offer, in reading order."""
    edits = []
    for t, text in enumerate(texts):
        for w, word in enumerate(split_words(text)[0] if text else []):
            pre, post, options = translation_options(word, switches)
            edits += [(t, w, pre + found + post) for _, translations in options for found in translations]
    return edits


def apply_edits(texts: Texts, edits: Sequence[Edit]) -> Texts:
    out = list(texts)
    for t, text in enumerate(texts):
        mine = {w: replacement for e, w, replacement in edits if e == t}
        if mine and text is not None:
            words, spans = split_words(text)
            out[t] = join_words(text, spans, [mine.get(w, word) for w, word in enumerate(words)])[0]
    return tuple(out)


def greedy_attack(examples: Sequence[Texts], golds: Sequence[int], clean_predictions: Sequence[int],
                  switches: Switches, oracle: Oracle, *, k: int, budget: int, seed: int) -> list[Attacked]:
    """Every example after the attack (module docstring); examples the clean condition gets wrong are left as
    they are, with their clean prediction."""
    results = [Attacked(texts, int(p), 0, ()) for texts, p in zip(examples, clean_predictions, strict=True)]
    attacked = [i for i, (p, g) in enumerate(zip(clean_predictions, golds, strict=True)) if p == g]
    if not attacked:
        return results
    probabilities = oracle([examples[i] for i in attacked])
    state = {i: (float(p[golds[i]]), int(p.argmax()), ()) for i, p in zip(attacked, probabilities, strict=True)}
    queries = dict.fromkeys(attacked, 1)
    options = {i: candidate_edits(examples[i], switches) for i in attacked}
    active = [i for i in attacked if state[i][1] == golds[i]]
    for step in range(k):
        batch: list[Texts] = []
        tried: dict[int, list[Edit]] = {}
        for i in active:
            done = {(t, w) for t, w, _ in state[i][2]}
            edits = [e for e in options[i] if (e[0], e[1]) not in done]
            room = budget - queries[i]
            if len(edits) > room:
                edits = sorted(random.Random(f"{seed}/{i}/{step}").sample(edits, max(room, 0)))
            if edits:
                tried[i] = edits
                batch += [apply_edits(examples[i], [*state[i][2], e]) for e in edits]
        if not batch:
            break
        found = oracle(batch)
        active, offset = [], 0
        for i, edits in tried.items():
            mine = found[offset:offset + len(edits)]
            offset += len(edits)
            queries[i] += len(edits)
            best = int(mine[:, golds[i]].argmin())
            if mine[best, golds[i]] < state[i][0]:
                state[i] = (float(mine[best, golds[i]]), int(mine[best].argmax()), (*state[i][2], edits[best]))
                if state[i][1] == golds[i]:
                    active.append(i)
    for i in attacked:
        results[i] = Attacked(apply_edits(examples[i], state[i][2]), state[i][1], queries[i], state[i][2])
    return results


def attack_metrics(results: Sequence[Attacked], golds: Sequence[int]) -> dict[str, float]:
    """Accuracy under attack, attack success rate (flipped over attacked; 0 with none attacked) and forward
    passes per attacked example."""
    attacked = [(r, g) for r, g in zip(results, golds, strict=True) if r.queries]
    flipped = sum(r.prediction != g for r, g in attacked)
    return {"accuracy": 100.0 * sum(r.prediction == g for r, g in zip(results, golds, strict=True)) / len(results),
            "attack_success_rate": 100.0 * flipped / len(attacked) if attacked else 0.0,
            "forward_passes": float(np.mean([r.queries for r, _ in attacked])) if attacked else 0.0}
