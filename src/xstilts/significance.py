"""Paired significance of deltas: the bootstrap over examples (Koehn 2004; Berg-Kirkpatrick et al. 2012),
seeded, with percentile intervals, from the per-example predictions every evaluation writes.

- `paired_bootstrap(a, b)`: the delta of the means of two systems' aligned per-example scores, and its
  interval: both systems are scored on the same resampled examples, so the interval reflects the examples
  (not the systems' separate noise).
- Corpus-level metrics (entity F1 of tagging, BUCC's mining F1) are resampled by their sufficient statistics:
  each sentence's (true positives, predicted, gold) counts, summed over a resample, give its F1, 2 tp / (pred
  + gold), exactly as seqeval's micro F1 and BUCC's F1 are computed over the whole set (`example_stats`).
- `resample_weights`/`values`: how often each example is drawn in each resample, shared by every system of
  one stratum (a target's language), and each system's metric on every resample: a table's delta, a relative
  drop or a delta of relative drops is arithmetic on these, resample by resample, and averages over languages
  and targets the same way (a stratified bootstrap).
- Several seeds (`combine_seeds`): a two-level bootstrap. Each resample draws the seeds with replacement and
  averages their deltas on that resample's examples (the same examples for every seed): the interval then
  holds the seed spread and the example spread together; with one seed it is the paired bootstrap alone.

A delta whose interval contains 0 is not significant at the level (`contains_zero`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from xstilts import metrics
from xstilts.catalogue import TARGETS

Statistic = Literal["mean", "f1"]  # a metric as the mean of per-example scores, or F1 from per-example counts
Interval = tuple[float, float, float]  # (delta, low, high)


def resample_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each of `n` examples is drawn in each resample (with replacement): [resamples, n]."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of the resampled values (NaN ones left out)."""
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> Interval:
    """mean(a) - mean(b) over aligned per-example scores, with its paired-bootstrap interval: one stratum and one
    seed of what the tables compute (`resample_weights`, `values`, `combine_seeds`)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired scores must be two aligned non-empty vectors, got {a.shape} and {b.shape}")
    weights = resample_weights(len(a), resamples, np.random.default_rng(seed))
    point, draws = values((a - b)[:, None], "mean", weights)  # the mean is linear: the delta's draws directly
    return combine_seeds([point], draws, level=level)


def value(statistic: Statistic, sums: np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """A metric from summed per-example statistics (last axis): the mean score, or F1 (0-100) from summed
    (tp, predicted, gold) counts (0 where nothing is predicted or gold)."""
    if statistic == "mean":
        return sums[..., 0] / n
    tp, both = sums[..., 0], sums[..., 1] + sums[..., 2]
    return np.divide(200.0 * tp, both, out=np.zeros_like(tp, dtype=np.float64), where=both > 0)


def values(stats: np.ndarray, statistic: Statistic, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """A system's metric on a stratum's examples (`stats`: [n, statistics]) and on each resample (`weights`)."""
    n = len(stats)
    return float(value(statistic, stats.sum(axis=0), n)), value(statistic, weights @ stats, n)


def combine_seeds(points: Sequence[float], draws: np.ndarray, seed: int = 0, level: float = 0.95) -> Interval:
    """A delta measured with several seeds (`points`: per seed; `draws`: [seeds, resamples], each seed's delta
    on the same example resamples): the mean, and the interval of the two-level bootstrap (module docstring)."""
    draws = np.atleast_2d(np.asarray(draws, dtype=np.float64))
    if len(draws) > 1:
        picks = np.random.default_rng(seed).integers(0, len(draws), size=(draws.shape[1], len(draws)))
        draws = draws[picks, np.arange(draws.shape[1])[:, None]].mean(axis=1)
    return (float(np.mean(points)), *percentile_interval(draws.ravel(), level))


def contains_zero(low: float, high: float) -> bool:
    """Whether an interval holds 0: its delta is not significant at its level (False for an unknown one)."""
    return bool(low <= 0 <= high)


# --------------------------------------------------------------------------------------------------
# Per-example statistics from predictions.parquet


def statistic(target: str) -> Statistic:
    """How a target's headline is resampled: F1 from counts for tagging, BUCC and the F1 of a class (the
    toxicity target), else the mean score."""
    found = TARGETS[target]
    return "f1" if found.family == "tagging" or found.search == "mining" or found.metric == "f1" else "mean"


def _mining_counts(prediction: str, gold: str) -> tuple[int, int, int]:
    """A BUCC source sentence's (tp, predicted, gold): its mined candidate as `families.retrieval` writes it
    (JSON: target, margin, kept; "" when only its gold pair is listed)."""
    mined = json.loads(prediction) if prediction else {"kept": False}
    kept = bool(mined["kept"])
    return int(kept and mined["target"] == gold), int(kept), int(gold != "")


def example_stats(target: str, rows: pd.DataFrame) -> pd.DataFrame:
    """One cell's predictions of one language, split and condition (`results_io.PREDICTIONS_SCHEMA` rows) as
    per-example statistics indexed by id: `score`, or `tp`, `predicted`, `gold` (`statistic`)."""
    ids = rows["id"].astype(str).tolist()
    if statistic(target) == "mean":
        return pd.DataFrame({"score": rows["score"].astype("float64").to_numpy()}, index=ids)
    found = TARGETS[target]
    if found.family == "tagging":
        predicted = [json.loads(p) for p in rows["prediction"]]
        golds = [json.loads(g) for g in rows["gold"]]
        counts = metrics.tag_counts(predicted, golds, found.seqeval)
    elif found.search is None:  # the F1 of the last label (toxic), as `metrics.positive_f1`
        positive = found.labels[-1]
        counts = [(int(p == g == positive), int(p == positive), int(g == positive))
                  for p, g in zip(rows["prediction"], rows["gold"], strict=True)]
    else:
        counts = [_mining_counts(p, g) for p, g in zip(rows["prediction"], rows["gold"], strict=True)]
    frame = pd.DataFrame(counts, columns=["tp", "predicted", "gold"], index=ids, dtype="float64")
    return frame.groupby(level=0).sum()  # BUCC: a source listed twice (mined elsewhere, and its gold) is one


def aligned(frames: Sequence[pd.DataFrame], statistic_kind: Statistic) -> list[np.ndarray]:
    """Several systems' statistics on one stratum, on the same examples in the same order: the examples all of
    them scored (`mean`), or every example any scored, counting 0 where one did not (`f1`: a BUCC source one
    system mined and another did not)."""
    if statistic_kind == "mean":
        common = frames[0].index
        for frame in frames[1:]:
            common = common.intersection(frame.index, sort=False)
        return [frame.loc[common].to_numpy() for frame in frames]
    union = frames[0].index
    for frame in frames[1:]:
        union = union.union(frame.index, sort=False)
    return [frame.reindex(union, fill_value=0.0).to_numpy() for frame in frames]


# --------------------------------------------------------------------------------------------------
# A target's systems, resampled together

System = tuple[str, int, str]  # (intermediate, seed, condition)
Values = dict[System, tuple[float, np.ndarray]]  # each system's metric and its values on the resamples


def target_values(target: str, predictions: pd.DataFrame, resamples: int, seed: int) -> dict[str, Values]:
    """Per language, every system's headline on the target's predictions (`results_io.read_predictions`, its
    report split) and on the same `resamples` resamples of the language's examples (seeded by `seed` and the
    language): what every delta of the tables is computed from."""
    kind = statistic(target)
    found: dict[str, Values] = {}
    for language, rows in predictions.groupby("language", sort=True):
        groups = {(str(r), int(s), str(c)): g for (r, s, c), g in rows.groupby(["intermediate", "seed", "condition"])}
        frames = {system: example_stats(target, g) for system, g in groups.items()}
        arrays = aligned(list(frames.values()), kind)
        if not len(arrays[0]):
            continue
        rng = np.random.default_rng([seed, *map(ord, str(language))])
        weights = resample_weights(len(arrays[0]), resamples, rng)
        found[str(language)] = {system: values(stats, kind, weights) for system, stats in zip(frames, arrays,
                                                                                              strict=True)}
    return found


def mean_over_languages(per_language: dict[str, tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
    """A target's value (or delta) as the mean over its languages, resample by resample, over the languages
    where it is defined (a relative drop is not where the clean score is 0), as the tables average."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where no language has a value: NaN
        points = np.nanmean([p for p, _ in per_language.values()])
        return float(points), np.nanmean([d for _, d in per_language.values()], axis=0)


Measure = tuple[float, np.ndarray]  # a value and its values on the resamples


def difference(a: Measure, b: Measure) -> Measure:
    return a[0] - b[0], a[1] - b[1]


def relative_drop(clean: Measure, perturbed: Measure) -> Measure:
    """100 (clean - perturbed) / clean, resample by resample (NaN where clean is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.where(clean[1] != 0, 100.0 * (clean[1] - perturbed[1]) / clean[1], np.nan)
    point = 100.0 * (clean[0] - perturbed[0]) / clean[0] if clean[0] else np.nan
    return point, draws


def seed_means(values: dict[str, Values], seeds: Sequence[int],
               measure: Callable[[Values, int], Measure | None]) -> dict[int, Measure]:
    """Per seed, the mean over a target's languages of `measure` (a language's value or delta from its
    systems; None where a system is missing), over the languages where it is defined."""
    found = {}
    for seed in seeds:
        per_language = {lang: m for lang, v in values.items() if (m := measure(v, seed)) is not None}
        if per_language:
            found[seed] = mean_over_languages(per_language)
    return found


def interval(per_seed: dict[int, Measure], seed: int, level: float) -> Interval:
    """A table cell's delta and interval from its per-seed measures (`combine_seeds`); NaN without any."""
    if not per_seed:
        return np.nan, np.nan, np.nan
    return combine_seeds([p for p, _ in per_seed.values()], np.stack([d for _, d in per_seed.values()]), seed, level)


def average(measures: Sequence[dict[int, Measure]]) -> dict[int, Measure]:
    """Per seed, the mean of several targets' measures (a group, the XTREME score): the seeds all of them have."""
    seeds = set.intersection(*(set(m) for m in measures)) if measures else set()
    return {s: (float(np.mean([m[s][0] for m in measures])), np.mean([m[s][1] for m in measures], axis=0))
            for s in sorted(seeds)}
