"""Paired bootstrap over examples: how sure a delta between two systems scored on the same examples is.

`paired_bootstrap(a, b)` resamples the examples (with replacement, the same draw for both systems) and returns
the observed delta `statistic(a) - statistic(b)` with the 2.5th and 97.5th percentiles of the resampled deltas.
`a` and `b` hold one value per example, in the same order: a per-example score (accuracy: 0 or 100; AP@20),
whose mean is the metric, or per-example counts whose `statistic` is the metric (`f1_of_counts`: true positives,
false positives and false negatives summed, then F1, exactly a corpus-level F1). With `strata` (each example's
language), examples are resampled within their stratum and the delta is the mean over strata of the strata's
deltas, as a target's headline is the mean over its languages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Statistic = Callable[[np.ndarray], float]


def mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def f1_of_counts(counts: np.ndarray) -> float:
    """F1 (0-100) of per-example (true positive, false positive, false negative) counts [n, 3], summed."""
    tp, fp, fn = np.asarray(counts, dtype="float64").sum(axis=0)
    return 0.0 if tp == 0 else 100.0 * 2 * tp / (2 * tp + fp + fn)


def paired_bootstrap(a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray, resamples: int = 1000,
                     seed: int = 0, *, strata: Sequence[Any] | None = None,
                     statistic: Statistic = mean) -> tuple[float, float, float]:
    """The delta `statistic(a) - statistic(b)` and its 95% paired-bootstrap interval (low, high): see the module
    docstring. `seed` fixes the resamples."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if a.shape != b.shape or not len(a):
        raise ValueError(f"paired_bootstrap needs two non-empty arrays of one shape, got {a.shape} and {b.shape}")
    labels = np.zeros(len(a), dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    groups = [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]
    rng = np.random.default_rng(seed)

    def delta(picks: list[np.ndarray]) -> float:
        return float(np.mean([statistic(a[p]) - statistic(b[p]) for p in picks]))

    observed = delta(groups)
    resampled = [delta([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(resamples)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return observed, float(low), float(high)
