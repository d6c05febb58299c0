"""The paired bootstrap on hand-computed cases, corpus-level F1 resampled by per-sentence counts, the seed
level, and the per-example statistics read back from predictions.parquet rows."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from xstilts import metrics
from xstilts.significance import (
    aligned,
    combine_seeds,
    contains_zero,
    difference,
    example_stats,
    paired_bootstrap,
    relative_drop,
    resample_weights,
    target_values,
    value,
    values,
)


def test_paired_bootstrap_on_hand_computed_cases() -> None:
    assert paired_bootstrap([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)  # the same system: no difference at all
    assert paired_bootstrap([3, 5, 9], [1, 3, 7]) == (2.0, 2.0, 2.0)  # a constant difference: no spread
    # two examples, deltas 1 and 0: a resample's mean is 0, 0.5 or 1 (chances 1/4, 1/2, 1/4), so the 95%
    # interval of 1000 resamples is [0, 1] and holds 0
    delta, low, high = paired_bootstrap([1, 0], [0, 0], resamples=1000, seed=0)
    assert (delta, low, high) == (0.5, 0.0, 1.0) and contains_zero(low, high)
    assert paired_bootstrap([1, 0], [0, 0], seed=3) == paired_bootstrap([1, 0], [0, 0], seed=3)
    # 200 examples, one system right on 150 and the other on 100 of them: the interval is far from 0
    a, b = np.r_[np.ones(150), np.zeros(50)], np.r_[np.ones(100), np.zeros(100)]
    delta, low, high = paired_bootstrap(a, b)
    assert delta == 0.25 and 0.15 < low < 0.25 < high < 0.35 and not contains_zero(low, high)
    with pytest.raises(ValueError, match="aligned non-empty vectors"):
        paired_bootstrap([1, 2], [1])


def test_resample_weights_draw_every_resample_with_replacement() -> None:
    weights = resample_weights(5, 100, np.random.default_rng(0))
    assert weights.shape == (100, 5) and (weights.sum(axis=1) == 5).all() and (weights == 0).any()


def test_f1_from_summed_counts_is_the_corpus_f1() -> None:
    assert value("f1", np.array([3.0, 4.0, 6.0]), 9) == pytest.approx(60.0)  # 2 x 3 / (4 + 6)
    assert value("f1", np.array([0.0, 0.0, 0.0]), 9) == 0.0
    assert value("mean", np.array([150.0]), 3) == 50.0
    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    golds = [[rng.choice(tags) for _ in range(rng.randint(1, 9))] for _ in range(60)]
    preds = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in golds]
    rows = pd.DataFrame({"id": [str(i) for i in range(60)], "prediction": [json.dumps(p) for p in preds],
                         "gold": [json.dumps(g) for g in golds], "score": None})
    stats = example_stats("panx", rows)
    point, draws = values(stats.to_numpy(), "f1", resample_weights(60, 200, np.random.default_rng(0)))
    assert point == pytest.approx(metrics.seqeval_f1(preds, golds)) and draws.shape == (200,)
    assert 0 < draws.std() < 20


def test_per_example_statistics_of_each_kind() -> None:
    mean = example_stats("xnli", pd.DataFrame({"id": ["0", "1"], "prediction": ["a", "b"], "gold": ["a", "a"],
                                               "score": [100.0, 0.0]}))
    assert mean["score"].tolist() == [100.0, 0.0] and list(mean.index) == ["0", "1"]
    # UD-POS as seqeval 0.0.12 reads plain tags: runs of one tag are one chunk
    pos = example_stats("udpos", pd.DataFrame({"id": ["0"], "prediction": [json.dumps(["NOUN", "NOUN", "VERB"])],
                                               "gold": [json.dumps(["NOUN", "VERB", "VERB"])], "score": None}))
    assert pos.iloc[0].tolist() == [0.0, 2.0, 2.0]
    mined = pd.DataFrame({"id": ["0", "1", "2", "3"], "gold": ["5", "6", "", "9"], "score": None, "prediction": [
        json.dumps({"target": "5", "margin": 1.2, "kept": True}),  # right and kept
        json.dumps({"target": "7", "margin": 1.1, "kept": True}),  # wrong
        json.dumps({"target": "8", "margin": 0.9, "kept": False}),  # below the threshold
        ""]})  # a gold pair not mined
    assert example_stats("bucc", mined).to_numpy().tolist() == [[1, 1, 1], [0, 1, 1], [0, 0, 0], [0, 0, 1]]


def test_systems_are_aligned_on_their_common_or_all_examples() -> None:
    a = pd.DataFrame({"score": [1.0, 2.0, 3.0]}, index=["x", "y", "z"])
    b = pd.DataFrame({"score": [30.0, 10.0]}, index=["z", "x"])
    assert [s.ravel().tolist() for s in aligned([a, b], "mean")] == [[1.0, 3.0], [10.0, 30.0]]
    c = pd.DataFrame({"tp": [1.0], "predicted": [1.0], "gold": [1.0]}, index=["w"])
    d = pd.DataFrame({"tp": [0.0], "predicted": [1.0], "gold": [0.0]}, index=["v"])
    assert [s.tolist() for s in aligned([c, d], "f1")] == [[[1, 1, 1], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]]


def test_seeds_are_resampled_on_top_of_the_examples() -> None:
    draws = np.array([[0.0, 1.0, 2.0, 3.0, 4.0] * 40])
    assert combine_seeds([2.0], draws) == (2.0, 0.0, 4.0)  # one seed: the examples' interval alone
    # two seeds whose example resamples give 1 and 3 every time: a resample of the seeds averages to 1, 2 or 3
    assert combine_seeds([1.0, 3.0], np.array([[1.0] * 1000, [3.0] * 1000])) == (2.0, 1.0, 3.0)


def test_drops_and_deltas_resample_by_resample() -> None:
    clean, perturbed = (80.0, np.array([80.0, 50.0, 0.0])), (60.0, np.array([40.0, 50.0, 10.0]))
    point, draws = relative_drop(clean, perturbed)
    assert point == 25.0 and draws[:2].tolist() == [50.0, 0.0] and np.isnan(draws[2])
    assert difference(clean, perturbed)[0] == 20.0 and difference(clean, perturbed)[1].tolist() == [40, 0, -10]


def test_target_values_resample_every_system_of_a_language_together() -> None:
    rows = []
    for row, right in (("none", 5), ("mnli", 8)):
        for i in range(10):
            rows.append({"language": "de", "intermediate": row, "seed": 1, "condition": "clean", "id": str(i),
                         "prediction": "", "gold": "", "score": 100.0 * (i < right)})
    found = target_values("xnli", pd.DataFrame(rows), resamples=500, seed=0)
    none, mnli = found["de"][("none", 1, "clean")], found["de"][("mnli", 1, "clean")]
    assert (none[0], mnli[0]) == (50.0, 80.0)
    delta = difference(mnli, none)
    assert delta[0] == pytest.approx(30.0) and (delta[1] >= 0).all()  # mnli is right wherever none is
