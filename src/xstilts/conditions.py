"""Evaluation conditions: named transforms of a target's evaluation tables, every one scored by the same
evaluation job from the one loaded model (`scores.parquet` has a `condition` column).

`clean` is the table as prepared: the only condition the transfer tables show. A condition is data: a
name, the families whose labels it keeps exact, and a pure function of (table, language, seed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

CLEAN = "clean"
Transform = Callable[[pd.DataFrame, str, int], pd.DataFrame]  # (normalised table, language, seed) -> table


@dataclass(frozen=True)
class Condition:
    name: str
    families: frozenset[str]  # the families whose labels (answer spans, tags) the transform keeps exact
    transform: Transform

    def apply(self, df: pd.DataFrame, language: str, seed: int) -> pd.DataFrame:
        return self.transform(df, language, seed)


ALL_FAMILIES = frozenset({"classification", "pair_classification", "multiple_choice", "tagging", "qa", "retrieval"})
CONDITIONS: dict[str, Condition] = {CLEAN: Condition(CLEAN, ALL_FAMILIES, lambda df, _language, _seed: df)}
