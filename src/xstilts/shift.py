"""The shift tables: does a row's gain from intermediate training hold up under a shift of domain or resources?

Per shifted target (`catalogue.Shift`: MasakhaNER 2.0 from PAN-X, AmericasNLI from XNLI, the toxicity target
from its own English part) and grid row:
- `in_domain`: the row's score on the in-domain target (the transfer table's value), or on the target's own
  in-domain language (toxicity: English);
- `shifted`: the row's score under shift: the transfer table's value, or the mean over the target's other
  languages (toxicity);
- `delta_none`: shifted minus `none`'s shifted score, with its paired-bootstrap interval (`delta_none_low`,
  `delta_none_high`; `xstilts.significance` over the examples of the report split in predictions.parquet, as
  the delta table's: per language, F1 targets by per-example counts, seeds combined);
- `delta_in_domain`: shifted minus in_domain, the same row;
- `rank_in_domain`, `rank_shifted`: the row's rank among the grid's rows other than the controls (1 = best).
Missing cells are NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xstilts.aggregate import baseline_delta, cell_scores
from xstilts.catalogue import BASELINE_ROW, CONTROL_ROWS, TARGETS
from xstilts.settings import SignificanceSettings
from xstilts.significance import Values, interval, seed_means

COLUMNS = ["target", "row", "shift", "from", "in_domain", "shifted", "delta_in_domain", "delta_none", "delta_none_low",
           "delta_none_high", "rank_in_domain", "rank_shifted"]


def shifted_targets(targets: Sequence[str]) -> list[str]:
    return [t for t in targets if TARGETS[t].shift is not None]


def _language_means(cells: pd.DataFrame, target: str, keep: bool, language: str | None) -> pd.Series:
    """Per row: the mean over seeds of the mean over the target's languages (only `language` if `keep`, all but it
    if not; all when `language` is None)."""
    part = cells[cells["target"] == target]
    if language is not None:
        part = part[(part["language"] == language) == keep]
    return part.groupby(["intermediate", "seed"])["value"].mean(skipna=False).groupby(level="intermediate").mean()


def _ranks(values: pd.Series) -> pd.Series:
    others = values.drop(index=list(CONTROL_ROWS), errors="ignore").dropna()
    return others.rank(ascending=False, method="min").reindex(values.index)


def shift_table(scores: pd.DataFrame, transfer: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                values: Mapping[str, dict[str, Values]] | None = None, seeds: Sequence[int] = (),
                settings: SignificanceSettings | None = None) -> pd.DataFrame:
    """The shift table (module docstring): one row per (shifted target, grid row). `values`: per target, its clean
    values on bootstrap resamples (`significance.target_values`, as the delta table's intervals): the interval of
    each delta against `none`, over the languages under shift; none without them."""
    cells = cell_scores(scores) if len(scores) else pd.DataFrame(columns=["intermediate", "target", "seed",
                                                                          "language", "value"])
    records = []
    for target in shifted_targets(targets):
        shift = TARGETS[target].shift
        if shift.language:
            in_domain = _language_means(cells, target, True, shift.language)
            shifted = _language_means(cells, target, False, shift.language)
            source = f"{target} {shift.language}"
        else:
            in_domain = transfer[shift.target] if shift.target in transfer else pd.Series(dtype="float64")
            shifted, source = transfer[target], shift.target
        in_domain, shifted = in_domain.reindex(list(rows)), shifted.reindex(list(rows))
        base = shifted.get(BASELINE_ROW, np.nan)
        rank_in, rank_out = _ranks(in_domain), _ranks(shifted)
        for row in rows:
            low = high = np.nan
            if values is not None and row != BASELINE_ROW and not np.isnan(shifted[row]) and not np.isnan(base):
                under_shift = {lang: v for lang, v in values.get(target, {}).items() if lang != shift.language}
                settings = settings or SignificanceSettings()
                per_seed = seed_means(under_shift, seeds, lambda v, s, row=row: baseline_delta(v, row, s))
                _, low, high = interval(per_seed, settings.seed, settings.level)
            records.append({"target": target, "row": row, "shift": " ".join(shift.kinds), "from": source,
                            "in_domain": in_domain[row], "shifted": shifted[row],
                            "delta_in_domain": shifted[row] - in_domain[row], "delta_none": shifted[row] - base,
                            "delta_none_low": low, "delta_none_high": high, "rank_in_domain": rank_in[row],
                            "rank_shifted": rank_out[row]})
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    return table.astype({c: "float64" for c in COLUMNS[4:]})


def rank_notes(table: pd.DataFrame, row: str) -> list[str]:
    """Per shifted target, whether `row` (multitask) keeps its rank under shift."""
    notes = []
    for target, part in table.groupby("target", sort=False):
        mine = part[part["row"] == row]
        if mine.empty or mine[["rank_in_domain", "rank_shifted"]].isna().any(axis=None):
            notes.append(f"{target}: {row} not measured in domain and under shift.")
            continue
        before, after = int(mine["rank_in_domain"].iloc[0]), int(mine["rank_shifted"].iloc[0])
        kept = "keeps its rank" if before == after else f"moves from rank {before} to {after}"
        notes.append(f"{target}: {row} {kept} ({before} in domain, {after} under shift).")
    return notes
