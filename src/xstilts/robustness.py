"""Robustness tables: how much each row's scores drop under the perturbed evaluation conditions
(`xstilts.conditions`), as papers report them, from the same scores as the transfer tables (whose `clean`
numbers the conditions never change: they add rows).

- `drops`: per cell (intermediate, target, seed), language and condition: the clean and the perturbed
  headline, the absolute drop (clean - perturbed, points) and the relative drop (100 (clean - perturbed) /
  clean, percent of the clean score; negative: the perturbation helped).
- `robustness_table`: rows x `target/condition`: the mean relative drop over the cell's languages, then over
  seeds; `robustness_delta` (`aggregate.delta_table`): minus the `none` row, negative where intermediate
  training reduces the drop.
- `attack_table`: the `adversarial` condition per row and target: clean accuracy, accuracy under attack, attack
  success rate and forward passes per attacked example.
- `language_drops`: per language, its mean relative drop per condition (over rows, targets and seeds) and
  over all of them, with its name, family, script and resource class (`langinfo`).
- `robustness_intervals`: the paired-bootstrap interval of every value of both tables (`xstilts.significance`):
  a relative drop resamples the examples of one model under clean and under the condition together; a delta
  resamples the row's and `none`'s on the same examples.

The perturbations are scored on a sample of each table (`robustness.sample`): their drops are measured against
the clean scores of the same examples (`conditions.CLEAN_SAMPLE`), never against the whole table's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.aggregate import (
    CELL_KEYS,
    INDEX_NAME,
    INTERVAL_NOTE,
    delta_frame,
    delta_table,
    headline_scores,
    heatmap,
    interval_frame,
    text_markdown,
    write_formats,
)
from xstilts.catalogue import BASELINE_ROW, TARGETS
from xstilts.comparability import Marks
from xstilts.conditions import ADVERSARIAL, CLEAN, CLEAN_SAMPLE, CONDITIONS
from xstilts.langinfo import language_frame
from xstilts.settings import SignificanceSettings
from xstilts.significance import (
    Measure,
    Values,
    contains_zero,
    difference,
    interval,
    relative_drop,
    seed_means,
)

SEPARATOR = "/"  # robustness columns: `target/condition`
MEAN_DROP = "mean drop"
DROP_NOTE = ("Relative drop: 100 x (clean - perturbed) / clean, in percent of the clean score, averaged over the "
             "cell's languages, then over seeds; negative: the perturbation helped.")
ROBUSTNESS_DELTA_NOTE = (f"The row's relative drop minus {BASELINE_ROW!r}'s: negative where intermediate training "
                         "makes the target more robust to the condition.")
ATTACK_COLUMNS = ["accuracy", "accuracy under attack", "attack_success_rate", "forward_passes"]


def column(target: str, condition: str) -> str:
    return f"{target}{SEPARATOR}{condition}"


def references(scores: pd.DataFrame) -> pd.DataFrame:
    """Per cell and language (one split and metric), what its perturbations are measured against: clean on
    their sample of the examples where it has one (`conditions.CLEAN_SAMPLE`), else clean."""
    found = scores[scores["condition"].isin([CLEAN, CLEAN_SAMPLE])]
    found = found.sort_values("condition", key=lambda c: c == CLEAN_SAMPLE, kind="stable")  # the sample's last
    return found.drop_duplicates(CELL_KEYS, keep="last")


def drops(scores: pd.DataFrame) -> pd.DataFrame:
    """Per cell, language and perturbed condition: clean (on the perturbations' sample of the examples, where
    they have one: `conditions.CLEAN_SAMPLE`), score, drop and relative_drop (module docstring)."""
    heads = headline_scores(scores)
    clean = references(heads).drop(columns="condition").rename(columns={"value": "clean"})
    perturbed = heads[~heads["condition"].isin([CLEAN, CLEAN_SAMPLE])].rename(columns={"value": "score"})
    out = perturbed.merge(clean, on=CELL_KEYS, how="inner")
    out["drop"] = out["clean"] - out["score"]
    out["relative_drop"] = 100 * out["drop"] / out["clean"].where(out["clean"] != 0)
    return out[[*CELL_KEYS, "condition", "clean", "score", "drop", "relative_drop"]].reset_index(drop=True)


def _order(targets: Sequence[str], pairs: set[tuple[str, str]]) -> list[str]:
    """The `target/condition` columns of these pairs: targets in grid order, conditions in registry order."""
    return [column(t, c) for t in targets for c in CONDITIONS if (t, c) in pairs]


def robustness_table(found: pd.DataFrame, rows: Sequence[str], targets: Sequence[str]) -> pd.DataFrame:
    """Rows x `target/condition`: mean relative drop over languages, then over seeds (NaN where missing)."""
    per_seed = found.groupby(["intermediate", "seed", "target", "condition"])["relative_drop"].mean()
    means = per_seed.groupby(["intermediate", "target", "condition"]).mean().reset_index()
    means["column"] = [column(t, c) for t, c in zip(means["target"], means["condition"], strict=True)]
    table = means.pivot(index="intermediate", columns="column", values="relative_drop") if len(means) else None
    order = _order(targets, set(zip(means["target"], means["condition"], strict=True)))
    table = pd.DataFrame(index=list(rows), columns=order, dtype="float64") if table is None else table
    table = table.reindex(index=list(rows), columns=order).astype("float64")
    table.index.name, table.columns.name = INDEX_NAME, None
    return table


def attack_table(scores: pd.DataFrame, rows: Sequence[str]) -> pd.DataFrame:
    """Per (intermediate, target) attacked: clean accuracy (on the attacked sample), accuracy under attack, attack
    success rate (%) and forward passes per attacked example, each the mean over languages, then seeds (report
    split)."""
    split = scores["target"].map(lambda t: TARGETS[t].report_split)
    attacked = scores[(scores["condition"] == ADVERSARIAL) & (scores["split"] == split)]
    clean = references(scores[(scores["split"] == split) & (scores["metric"] == "accuracy")
                              & scores["target"].isin(set(attacked["target"]))])  # on the attack's examples
    both = pd.concat([clean, attacked.assign(metric=attacked["metric"].replace("accuracy", ATTACK_COLUMNS[1]))])
    if not len(both):
        return pd.DataFrame(columns=ATTACK_COLUMNS, index=pd.MultiIndex.from_tuples([], names=[INDEX_NAME, "target"]))
    per_seed = both.groupby(["intermediate", "target", "seed", "metric"])["value"].mean()
    table = per_seed.groupby(["intermediate", "target", "metric"]).mean().unstack("metric")
    order = [(r, t) for r in rows for t in dict.fromkeys(both["target"]) if (r, t) in table.index]
    return table.reindex(index=pd.MultiIndex.from_tuples(order, names=[INDEX_NAME, "target"]), columns=ATTACK_COLUMNS)


def language_drops(found: pd.DataFrame) -> pd.DataFrame:
    """Per language: name, family, script, class, then its mean relative drop per condition (over rows, targets
    and seeds) and MEAN_DROP over every condition; sorted by resource class, then code."""
    per_condition = found.groupby(["language", "condition"])["relative_drop"].mean().unstack("condition")
    per_condition = per_condition.reindex(columns=[c for c in CONDITIONS if c in per_condition.columns])
    per_condition[MEAN_DROP] = found.groupby("language")["relative_drop"].mean()
    meta = language_frame(list(per_condition.index))
    return meta.join(per_condition)


def _relative_drop(values: Values, row: str, seed: int, condition: str) -> Measure | None:
    clean = values.get((row, seed, CLEAN_SAMPLE), values.get((row, seed, CLEAN)))
    perturbed = values.get((row, seed, condition))
    return relative_drop(clean, perturbed) if clean is not None and perturbed is not None else None


def _drop_delta(values: Values, row: str, seed: int, condition: str) -> Measure | None:
    ours, base = _relative_drop(values, row, seed, condition), _relative_drop(values, BASELINE_ROW, seed, condition)
    return difference(ours, base) if ours is not None and base is not None else None


def robustness_intervals(values: Mapping[str, dict[str, Values]], table: pd.DataFrame, seeds: Sequence[int],
                         settings: SignificanceSettings) -> pd.DataFrame:
    """Every value of the robustness table (`relative_drop`) and of its delta against `none` (`delta`) from the
    predictions (`values`: per target, `significance.target_values`), with its interval: one row per
    (intermediate, column, measure): value, low, high, contains_zero."""
    records = []
    for name in table.columns:
        target, condition = name.split(SEPARATOR)
        for row in table.index:
            measures = {"relative_drop": _relative_drop}
            if row != BASELINE_ROW:
                measures["delta"] = _drop_delta
            for measure, f in measures.items():
                per_seed = seed_means(values.get(target, {}), seeds,
                                      lambda v, s, f=f, row=row, condition=condition: f(v, row, s, condition))
                found, low, high = interval(per_seed, settings.seed, settings.level)
                records.append({"intermediate": row, "column": name, "measure": measure, "value": found, "low": low,
                                "high": high, "contains_zero": contains_zero(low, high)})
    return pd.DataFrame(records, columns=["intermediate", "column", "measure", "value", "low", "high",
                                          "contains_zero"])


@dataclass(frozen=True)
class Robustness:
    """Every robustness table of one grid's scores, computed once for the table files and the report."""

    drops: pd.DataFrame
    table: pd.DataFrame
    delta: pd.DataFrame
    attack: pd.DataFrame
    languages: pd.DataFrame
    intervals: pd.DataFrame | None = None

    def unsure(self, measure: str) -> pd.DataFrame | None:
        """Where a value of the table (`relative_drop`) or of its delta (`delta`) has an interval holding 0."""
        if self.intervals is None:
            return None
        like = self.table if measure == "relative_drop" else self.delta
        return interval_frame(self.intervals[self.intervals["measure"] == measure], like, "column")


def compute_robustness(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                       intervals: pd.DataFrame | None = None) -> Robustness | None:
    """The robustness tables, or None when no cell was evaluated under a perturbation."""
    found = drops(scores)
    if not len(found):
        return None
    table = robustness_table(found, rows, targets)
    return Robustness(found, table, delta_table(table), attack_table(scores, rows), language_drops(found), intervals)


def marked_columns(df: pd.DataFrame, grid_marks: Marks) -> pd.DataFrame:
    """`target/condition` columns with their target's marks (`comparability`)."""
    return df.rename(columns=lambda c: column(grid_marks.label(c.split(SEPARATOR)[0]), c.split(SEPARATOR)[1]))


def write_robustness(found: Robustness, out_dir: Path, grid_marks: Marks, targets: Sequence[str]) -> list[Path]:
    """`robustness`, `robustness_delta`, `robustness_drops`, `robustness_languages`, `attack` (and the
    intervals, `robustness_ci`), each as parquet, CSV, Markdown and LaTeX; `heatmap_robustness.png`."""
    notes = grid_marks.notes(list(targets))
    interval_note = [INTERVAL_NOTE] if found.intervals is not None else []
    paths = []
    for name, df, note, measure in (("robustness", found.table, DROP_NOTE, "relative_drop"),
                                    ("robustness_delta", found.delta, ROBUSTNESS_DELTA_NOTE, "delta")):
        markdown = text_markdown(marked_columns(delta_frame(df, None, found.unsure(measure)), grid_marks), note,
                                 [*interval_note, *notes])
        paths += write_formats(df, out_dir / name, markdown, marked_columns(df, grid_marks), notes)
    paths += write_formats(found.drops.set_index(INDEX_NAME), out_dir / "robustness_drops")
    paths += write_formats(found.languages, out_dir / "robustness_languages")
    paths += write_formats(found.attack.reset_index().set_index(INDEX_NAME), out_dir / "attack")
    if found.intervals is not None:
        paths += write_formats(found.intervals.set_index(INDEX_NAME), out_dir / "robustness_ci")
    path = out_dir / "heatmap_robustness.png"
    heatmap(marked_columns(found.table, grid_marks), path, title="Relative drop under each condition (%)",
            diverging=True, n_targets=0)
    return [*paths, path]


def mean_drop(table: pd.DataFrame, row: str) -> float:
    """A row's mean relative drop over every `target/condition` column it has (NaN without any)."""
    values = table.loc[row].dropna() if row in table.index else pd.Series(dtype="float64")
    return float(values.mean()) if len(values) else np.nan
