"""The browsable face of `results/`: README.md, report.html, the claims table, the language table and
the plots that go with the transfer tables (`xstilts aggregate --report`).

Everything works on a partial grid: missing cells show as "–", claims that need them say so, and
plots draw what there is.

Claims (DESIGN.md section 2), each with its rule; "single-task rows" are the grid's rows among the nine
intermediate tasks, deltas are against `none` (`aggregate.delta_table`), in points:
- large gains on BUCC and Tatoeba: the median delta over the single-task rows >= LARGE_GAIN on both
  (every single-task row measured);
- moderate gains on QA: NO_GAIN <= the median "qa" group delta over the single-task rows < LARGE_GAIN
  (every single-task row measured);
- MNLI, SQuAD (squad_v2) and HellaSwag the best intermediate tasks: they are the top three single-task
  rows by XTREME score (needs every single-task row measured and at least four of them);
- multi-task a small further gain: 0 < multitask XTREME - the best single-task XTREME < LARGE_GAIN;
- no XNLI gain: the best single-task XNLI delta < NO_GAIN (one measured row at or above it suffices to
  refute it; holding needs every single-task row measured);
- continued MLM / translated data do not beat plain English intermediate training: for every variant
  row with `mlm` / `translations` (config `variants`), its XTREME - its task's row's XTREME < NO_GAIN;
- best per-target models +5.4 XTREME points: the mean over the nine targets of the best non-baseline
  score, minus the baseline's XTREME score, >= PAPER_BEST_GAIN - NO_GAIN (needs all nine targets).
Two more, beyond the paper (issue 13), on the shift table (`xstilts.shift`), for a grid with shifted targets:
- multi-task intermediate training is more robust to domain shift (resource shift) than the best single task:
  on every shifted target with a domain (resources) shift, multitask's delta against its own in-domain score
  is above that of the single-task row with the best in-domain score (one measured target where it is not
  refutes it; holding needs every such target measured).
A claim whose rows or targets are not configured is "not in grid" (the claims on the XTREME score too, in a
grid scored on XTREME-R); one whose cells are missing is "not measurable on this grid". Its `marks` column names
the marked columns it rests on (`comparability`: † partial language set, ‡ data not the benchmark's, § not in
its score).

Robustness claims (`robustness_claims`, questions of this grid rather than the paper's), on the relative drops
of `xstilts.robustness` (percent of the clean score), ROBUST_MARGIN (1) the smallest difference that counts:
- intermediate training reduces the relative drop under code-switching on XNLI: the median over the
  single-task rows (all measured) of their `xnli/code_switch` drop minus `none`'s <= -ROBUST_MARGIN;
- multitask is more robust than the best single task: multitask's mean drop over every `target/condition`
  column < that of the single-task row with the best XTREME score, by at least ROBUST_MARGIN;
- low-resource languages (Joshi class 0-2) drop more than high-resource ones (3-5): the mean drop of the
  class 0-2 languages (over rows, targets and conditions) exceeds that of the class 3-5 ones by at least
  ROBUST_MARGIN (both groups measured).
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from xstilts.aggregate import (
    DELTA_NOTE,
    INTERVAL_NOTE,
    MISSING,
    XTREME,
    Tables,
    best_table,
    cell_scores,
    compute_tables,
    delta_frame,
    delta_table,
    marked,
    mean_std_frame,
    notes_markdown,
    transfer_intervals,
    transfer_note,
    write_formats,
    write_tables,
)
from xstilts.alignment import MEASURES, Probes, compute_probes, write_probes
from xstilts.benchmarks import BENCHMARKS
from xstilts.benchmarks import XTREME as XTREME_BENCHMARK
from xstilts.catalogue import BASELINE_ROW, CONTROL_ROWS, INTERMEDIATE_TASKS, MULTITASK_ROW, TARGETS
from xstilts.comparability import Marks, data_table
from xstilts.conditions import CLEAN, CLEAN_SAMPLE
from xstilts.grid import Grid
from xstilts.langinfo import RESOURCE_CLASSES, language_frame
from xstilts.layout import Layout
from xstilts.results_io import (
    atomic_path,
    collect_manifests,
    read_alignment,
    read_predictions,
    scan_scores,
    write_config,
    write_parquet,
    write_text,
)
from xstilts.robustness import (
    DROP_NOTE,
    MEAN_DROP,
    ROBUSTNESS_DELTA_NOTE,
    Robustness,
    compute_robustness,
    marked_columns,
    mean_drop,
    robustness_intervals,
    write_robustness,
)
from xstilts.shift import rank_notes, shift_table, shifted_targets
from xstilts.significance import Values, target_values
from xstilts.status import STATES, counts, grid_status, problem_lines, status_matrix, summary_line

LARGE_GAIN = 5.0  # points: a "large" gain (the paper's headline XTREME gain is 5.4)
NO_GAIN = 1.0  # points: a delta below this is "no gain"
PAPER_BEST_GAIN = 5.4
BEST_TASKS = ("mnli", "squad_v2", "hellaswag")
HOLDS, FAILS, UNMEASURABLE, ABSENT = "holds", "does not hold", "not measurable on this grid", "not in grid"
META_COLUMNS = ["name", "family", "script", "class", "targets"]
MEAN_GAIN = "mean gain"
SHIFT_NOTE = ("in_domain: the row's score on the in-domain target (or language); shifted: under shift; delta_none: "
              "against none, with its 95% paired-bootstrap interval over examples; delta_in_domain: shifted - "
              "in_domain; ranks among the rows other than the controls.")
ROBUST_MARGIN = 1.0  # percent of the clean score: relative drops closer than this do not differ
LOW_RESOURCE = (0, 1, 2)  # Joshi et al.'s classes 0-2; 3-5 are high-resource

FOLDERS = {
    "scores": "one `scores.parquet` per cell (intermediate=I/target=T/seed=S): one row per language, split "
              "and metric, with the run facts (steps, wall seconds, device); `pandas.read_parquet('scores')` "
              "reads them all",
    "checkpoints": "phase-(ii) encoders (`intermediate/I/seed=S`) and phase-(iii) models "
                   "(`target/I/TRAINSET/seed=S`, with `training_log.parquet`), safetensors; `manifest.parquet` "
                   "lists them with sha256",
    "tables": "transfer, delta, best and per-language tables (parquet, CSV, Markdown, LaTeX), claims and "
              "languages tables, heatmaps and bar plots (PNG)",
    "data": "the prepared parquet cache: English training data (`train/D`) and evaluation data (`eval/T`)",
    "logs": "one log per job (`intermediate/`, `target/`, `evaluate/`, `prepare/`, `aggregate.log`)",
    "state": "resumable training state of unfinished trainings (deleted when a training finishes)",
}


# --------------------------------------------------------------------------------------------------
# Claims


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str
    measured: str
    verdict: str
    rule: str


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def _single_rows(transfer: pd.DataFrame) -> list[str]:
    return [r for r in transfer.index if r in INTERMEDIATE_TASKS]


def _median_claim(delta: pd.DataFrame, single: list[str], columns: Sequence[str]) -> tuple[dict[str, float], str, bool]:
    """Median delta over the measured single-task rows per column, a text saying over how many, and
    whether every single-task row was measured in every column."""
    medians, notes, complete = {}, [], True
    for column in columns:
        values = delta.loc[single, column].dropna()
        complete = complete and len(values) == len(single)
        if len(values):
            medians[column] = float(values.median())
            notes.append(f"{column} {_signed(medians[column])} (median of {len(values)}/{len(single)} rows)")
        else:
            notes.append(f"{column}: no measured single-task row")
    return medians, "; ".join(notes), complete


def _absent(names: Sequence[str], present: Sequence[str]) -> list[str]:
    return [n for n in names if n not in present]


def _claim_retrieval(delta: pd.DataFrame, single: list[str]) -> Claim:
    rule = f"median delta over the single-task rows (all measured) >= {LARGE_GAIN:g} on both BUCC and Tatoeba"
    base = Claim("Large gains on BUCC and Tatoeba", "large gains from intermediate training", "", "", rule)
    absent = _absent(["bucc", "tatoeba"], list(delta.columns))
    if absent or not single:
        return _replace(base, f"not in the grid: {', '.join(absent) or 'no single-task row'}", ABSENT)
    medians, text, complete = _median_claim(delta, single, ["bucc", "tatoeba"])
    if not complete:
        return _replace(base, text, UNMEASURABLE)
    return _replace(base, text, HOLDS if min(medians.values()) >= LARGE_GAIN else FAILS)


def _claim_qa(delta: pd.DataFrame, single: list[str]) -> Claim:
    rule = f"{NO_GAIN:g} <= median delta of the QA group (xquad, mlqa, tydiqa in the grid) over the single-task " \
           f"rows (all measured) < {LARGE_GAIN:g}"
    paper = "moderate gains (best models' QA average 67.2 vs 62.3)"
    base = Claim("Moderate gains on QA", paper, "", "", rule)
    if "qa" not in delta.columns or not single:
        return _replace(base, "not in the grid: " + ("no QA target" if single else "no single-task row"), ABSENT)
    medians, text, complete = _median_claim(delta, single, ["qa"])
    if not complete:
        return _replace(base, text, UNMEASURABLE)
    return _replace(base, text, HOLDS if NO_GAIN <= medians["qa"] < LARGE_GAIN else FAILS)


def _xtreme_ranking(transfer: pd.DataFrame, single: list[str], column: str = XTREME) -> tuple[pd.Series, list[str]]:
    """The single-task rows by their `column` score (best first), and those without one."""
    scores = transfer.loc[single, column] if single else pd.Series(dtype="float64")
    return scores.dropna().sort_values(ascending=False, kind="stable"), [r for r in single if pd.isna(scores[r])]


def _claim_best_tasks(transfer: pd.DataFrame, single: list[str]) -> Claim:
    rule = "the three single-task rows with the highest XTREME score are mnli, squad_v2 and hellaswag " \
           "(every single-task row measured, at least four)"
    base = Claim("MNLI, SQuAD and HellaSwag the best intermediate tasks", "MNLI, SQuAD, HellaSwag best overall",
                 "", "", rule)
    absent = _absent(BEST_TASKS, single)
    if absent:
        return _replace(base, f"rows not in the grid: {', '.join(absent)}", ABSENT)
    ranking, unmeasured = _xtreme_ranking(transfer, single)
    if unmeasured:
        return _replace(base, f"XTREME score missing for {', '.join(unmeasured)}", UNMEASURABLE)
    if len(ranking) < 4:
        return _replace(base, f"only {len(ranking)} single-task rows: no ranking to test", UNMEASURABLE)
    top = list(ranking.index[:3])
    text = "top 3 by XTREME: " + ", ".join(f"{r} ({ranking[r]:.1f})" for r in top)
    return _replace(base, text, HOLDS if set(top) == set(BEST_TASKS) else FAILS)


def _claim_multitask(transfer: pd.DataFrame, single: list[str]) -> Claim:
    rule = f"0 < multitask XTREME - best single-task XTREME (all measured) < {LARGE_GAIN:g}"
    base = Claim("Multi-task a small further gain", "small further gain over single tasks", "", "", rule)
    if MULTITASK_ROW not in transfer.index or not single:
        return _replace(base, "not in the grid: " + (MULTITASK_ROW if single else "no single-task row"), ABSENT)
    ranking, unmeasured = _xtreme_ranking(transfer, single)
    multitask = transfer.loc[MULTITASK_ROW, XTREME]
    missing = ([MULTITASK_ROW] if pd.isna(multitask) else []) + unmeasured
    if missing:
        return _replace(base, f"XTREME score missing for {', '.join(missing)}", UNMEASURABLE)
    gain = float(multitask - ranking.iloc[0])
    text = f"multitask {multitask:.1f} vs best single-task {ranking.index[0]} {ranking.iloc[0]:.1f}: {_signed(gain)}"
    return _replace(base, text, HOLDS if 0 < gain < LARGE_GAIN else FAILS)


def _claim_xnli(delta: pd.DataFrame, single: list[str]) -> Claim:
    rule = f"best single-task delta on XNLI < {NO_GAIN:g} (holding needs all measured)"
    base = Claim("No XNLI gain", "no intermediate task improves XNLI", "", "", rule)
    if "xnli" not in delta.columns or not single:
        return _replace(base, "not in the grid: " + ("xnli" if single else "no single-task row"), ABSENT)
    values = delta.loc[single, "xnli"].dropna()
    if not len(values):
        return _replace(base, "xnli: no measured single-task row", UNMEASURABLE)
    best = values.idxmax()
    text = f"best: {best} {_signed(values[best])} ({len(values)}/{len(single)} rows measured)"
    if values[best] >= NO_GAIN:
        return _replace(base, text, FAILS)
    return _replace(base, text, HOLDS if len(values) == len(single) else UNMEASURABLE)


def _claim_variants(transfer: pd.DataFrame, variants: Mapping[str, Mapping[str, Any]], key: str, what: str) -> Claim:
    rule = f"for every variant row with `{key}`: its XTREME - its task's row's XTREME < {NO_GAIN:g}"
    base = Claim(f"{what} does not beat plain English intermediate training", "does not beat it", "", "", rule)
    pairs = [(row, v["task"]) for row, v in variants.items() if v.get(key) and row in transfer.index
             and v["task"] in transfer.index]
    if not pairs:
        return _replace(base, f"no {key} variant row (with its task's row) in the grid", ABSENT)
    gains = {row: float(transfer.loc[row, XTREME] - transfer.loc[task, XTREME]) for row, task in pairs}
    missing = [row for row, gain in gains.items() if math.isnan(gain)]
    if missing:
        return _replace(base, f"XTREME score missing for {', '.join(missing)} or its task's row", UNMEASURABLE)
    text = "; ".join(f"{row} - {task}: {_signed(gains[row])}" for row, task in pairs)
    return _replace(base, text, HOLDS if max(gains.values()) < NO_GAIN else FAILS)


def _claim_best_per_target(transfer: pd.DataFrame, targets: Sequence[str]) -> Claim:
    rule = f"mean over the nine targets of the best non-baseline score - baseline XTREME >= " \
           f"{PAPER_BEST_GAIN:g} - {NO_GAIN:g}"
    base = Claim("Best per-target models +5.4 XTREME points", f"+{PAPER_BEST_GAIN:g} over XLM-R Large", "", "", rule)
    if BASELINE_ROW not in transfer.index:
        return _replace(base, f"not in the grid: {BASELINE_ROW}", ABSENT)
    best = best_table(transfer).reindex(list(targets))
    missing = [t for t in targets if pd.isna(best.loc[t, "score"]) or pd.isna(best.loc[t, "baseline"])]
    if missing:
        return _replace(base, f"missing scores for {', '.join(missing)}", UNMEASURABLE)
    gain = float(best["score"].mean() - best["baseline"].mean())
    choices = ", ".join(f"{t}: {best.loc[t, 'best']}" for t in targets)
    text = f"{_signed(gain)} over {len(targets)} targets ({choices})"
    absent = _absent(list(XTREME_BENCHMARK.scored), list(targets))
    if absent:
        return _replace(base, f"{text}; XTREME needs all nine targets, missing {', '.join(absent)}", UNMEASURABLE)
    return _replace(base, text, HOLDS if gain >= PAPER_BEST_GAIN - NO_GAIN else FAILS)


def _replace(claim: Claim, measured: str, verdict: str) -> Claim:
    return Claim(claim.claim, claim.paper, measured, verdict, claim.rule)


def _claim_shift(shift: pd.DataFrame, kind: str) -> Claim:
    rule = (f"on every shifted target with a {kind} shift (all measured): multitask's delta vs its in-domain score > "
            "that of the single-task row best in domain")
    base = Claim(f"Multi-task more robust to {kind} shift than the best single task", "not in the paper", "", "",
                 rule)
    parts = shift[shift["shift"].str.split().map(lambda kinds: kind in kinds)] if len(shift) else shift
    if parts.empty:
        return _replace(base, f"not in the grid: no target with a {kind} shift", ABSENT)
    rows = set(parts["row"])
    if MULTITASK_ROW not in rows or not rows & set(INTERMEDIATE_TASKS):
        return _replace(base, f"not in the grid: {MULTITASK_ROW} or a single-task row", ABSENT)
    texts, robust, complete = [], [], True
    for target, part in parts.groupby("target", sort=False):
        single = part[part["row"].isin(INTERMEDIATE_TASKS)].set_index("row")
        mine = part[part["row"] == MULTITASK_ROW]["delta_in_domain"].iloc[0]
        if single[["in_domain", "delta_in_domain"]].isna().any(axis=None) or pd.isna(mine):
            complete = False
            texts.append(f"{target}: not measured")
            continue
        best = single["in_domain"].idxmax()
        robust.append(bool(mine > single.loc[best, "delta_in_domain"]))
        theirs = single.loc[best, "delta_in_domain"]
        texts.append(f"{target}: {MULTITASK_ROW} {_signed(mine)} vs {best} {_signed(theirs)}")
    text = "; ".join(texts)
    if not all(robust):
        return _replace(base, text, FAILS)
    return _replace(base, text, HOLDS if complete else UNMEASURABLE)


def claims_table(transfer: pd.DataFrame, targets: Sequence[str],
                 variants: Mapping[str, Mapping[str, Any]] | None = None,
                 grid_marks: Marks | None = None, shift: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's headline findings held against `transfer` (`aggregate.transfer_table`), and with a shift table
    (`shift.shift_table`) the two shift claims: one row each with claim, paper, measured, verdict, rule and marks
    (see the module docstring)."""
    no_xtreme = XTREME not in transfer.columns  # a grid scored on another benchmark
    transfer = transfer.assign(**{XTREME: np.nan}) if no_xtreme else transfer
    delta = delta_table(transfer)
    single = _single_rows(transfer)
    variants = variants or {}
    claims = [
        _claim_retrieval(delta, single),
        _claim_qa(delta, single),
        _claim_best_tasks(transfer, single),
        _claim_multitask(transfer, single),
        _claim_xnli(delta, single),
        _claim_variants(transfer, variants, "mlm", "Continued multilingual MLM"),
        _claim_variants(transfer, variants, "translations", "Translated intermediate data"),
        _claim_best_per_target(transfer, targets),
    ]
    rests_on = [["bucc", "tatoeba"], ["qa"], [XTREME], [XTREME], ["xnli"], [XTREME], [XTREME], [*targets, XTREME]]
    if no_xtreme:
        claims = [_replace(c, "not in the grid: the XTREME score (another benchmark)", ABSENT)
                  if XTREME in columns and c.verdict != ABSENT else c
                  for c, columns in zip(claims, rests_on, strict=True)]
    if shift is not None:
        for kind in ("domain", "resources"):
            claims.append(_claim_shift(shift, kind))
            rests_on.append([t for t in dict.fromkeys(shift["target"]) if kind in TARGETS[t].shift.kinds])
    table = pd.DataFrame([asdict(c) for c in claims]).set_index("claim")
    table["marks"] = [grid_marks.summary(c for c in columns if c in transfer.columns) if grid_marks else ""
                      for columns in rests_on]
    return table


def _claim_code_switch(delta: pd.DataFrame, single: list[str]) -> Claim:
    column = "xnli/code_switch"
    rule = f"median over the single-task rows (all measured) of their {column} relative drop minus none's " \
           f"<= -{ROBUST_MARGIN:g}"
    base = Claim("Intermediate training reduces the relative drop under code-switching on XNLI",
                 "a question of this grid", "", "", rule)
    if column not in delta.columns or not single or BASELINE_ROW not in delta.index:
        return _replace(base, f"not in the grid: {column}, a single-task row or {BASELINE_ROW}", ABSENT)
    medians, text, complete = _median_claim(delta, single, [column])
    if not complete:
        return _replace(base, text, UNMEASURABLE)
    return _replace(base, text, HOLDS if medians[column] <= -ROBUST_MARGIN else FAILS)


def _claim_multitask_robust(table: pd.DataFrame, transfer: pd.DataFrame, single: list[str]) -> Claim:
    score = next((c for c in (XTREME, *(b.name for b in BENCHMARKS.values())) if c in transfer.columns), XTREME)
    rule = f"multitask's mean relative drop over every target/condition column < that of the single-task row " \
           f"with the best {score} score - {ROBUST_MARGIN:g}"
    base = Claim("Multitask is more robust than the best single task", "a question of this grid", "", "", rule)
    if MULTITASK_ROW not in table.index or not single:
        return _replace(base, "not in the grid: " + (MULTITASK_ROW if single else "no single-task row"), ABSENT)
    if score not in transfer.columns:  # a grid with no benchmark score (no target of it)
        return _replace(base, "no benchmark score in this grid", UNMEASURABLE)
    ranking, unmeasured = _xtreme_ranking(transfer, single, score)
    ours = mean_drop(table, MULTITASK_ROW)
    if unmeasured or not len(ranking) or np.isnan(ours) or np.isnan(theirs := mean_drop(table, ranking.index[0])):
        return _replace(base, f"{score} score or relative drops missing", UNMEASURABLE)
    text = f"multitask {ours:.1f}% vs best single-task {ranking.index[0]} {theirs:.1f}%"
    return _replace(base, text, HOLDS if ours < theirs - ROBUST_MARGIN else FAILS)


def _claim_low_resource(languages: pd.DataFrame) -> Claim:
    rule = f"mean relative drop of the class 0-2 languages > that of the class 3-5 languages + {ROBUST_MARGIN:g} " \
           "(each language's mean over rows, targets and conditions)"
    base = Claim("Low-resource languages (Joshi class 0-2) drop more than high-resource ones",
                 "a question of this grid", "", "", rule)
    measured = languages.dropna(subset=["class", MEAN_DROP])
    low = measured[measured["class"].isin(LOW_RESOURCE)]
    high = measured[~measured["class"].isin(LOW_RESOURCE)]
    if not len(low) or not len(high):
        return _replace(base, f"{len(low)} low- and {len(high)} high-resource languages measured", UNMEASURABLE)
    text = (f"class 0-2 {low[MEAN_DROP].mean():.1f}% ({' '.join(low.index)}) vs class 3-5 "
            f"{high[MEAN_DROP].mean():.1f}% ({' '.join(high.index)})")
    return _replace(base, text, HOLDS if low[MEAN_DROP].mean() > high[MEAN_DROP].mean() + ROBUST_MARGIN else FAILS)


def robustness_claims(robust: Robustness, transfer: pd.DataFrame) -> pd.DataFrame:
    """This grid's robustness findings (module docstring): claim, paper, measured, verdict, rule."""
    single = _single_rows(transfer)
    claims = [_claim_code_switch(robust.delta, single), _claim_multitask_robust(robust.table, transfer, single),
              _claim_low_resource(robust.languages)]
    return pd.DataFrame([asdict(c) for c in claims]).set_index("claim")


# --------------------------------------------------------------------------------------------------
# Languages


def language_gains(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str]) -> pd.DataFrame:
    """Languages x rows other than the controls (`none`, `untrained`): the delta against `none` per
    (target, language), seed-averaged, then averaged over the targets where both were measured; plus
    MEAN_GAIN over the rows."""
    cells = cell_scores(scores)
    cells = cells[cells["target"].isin(list(targets))]
    means = cells.groupby(["intermediate", "target", "language"])["value"].mean().unstack("intermediate")
    others = [r for r in rows if r not in CONTROL_ROWS]
    means = means.reindex(columns=[BASELINE_ROW, *others])
    gains = means[others].sub(means[BASELINE_ROW], axis=0).groupby(level="language").mean()
    gains = gains.astype("float64")
    gains[MEAN_GAIN] = gains[others].mean(axis=1) if others else np.nan
    return gains


def language_table(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str]) -> pd.DataFrame:
    """Every language evaluated in the grid: name, family, script, resource class (Joshi et al.), the
    targets it is evaluated on, and its gains (`language_gains`); sorted by class, then code."""
    gains = language_gains(scores, rows, targets)
    evaluated = scores[scores["target"].isin(list(targets))].groupby("language")["target"].unique()
    meta = language_frame(list(evaluated.index))
    meta["targets"] = [" ".join(t for t in targets if t in set(evaluated[c])) for c in meta.index]
    return meta.join(gains.reindex(meta.index))


# --------------------------------------------------------------------------------------------------
# Plots


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def target_bars(table: pd.DataFrame, target: str, path: Path) -> None:
    """Grouped bars of one target's per-language table (`aggregate.per_language_table`): languages
    (and "avg") along x, one bar per row; a missing cell is an "x" on the axis."""
    n_rows, n_cols = table.shape
    fig = Figure(figsize=(min(max(6.0, 1.5 + 0.09 * n_rows * n_cols), 40.0), 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(n_rows, 1)
    colours = colormaps["tab20"]
    x = np.arange(n_cols)
    for i, (row, values) in enumerate(table.iterrows()):
        pos = x - 0.4 + width * (i + 0.5)
        v = values.to_numpy(dtype="float64")
        ax.bar(pos, np.nan_to_num(v), width, color=colours(i % 20), label=str(row))
        missing = np.isnan(v)
        ax.plot(pos[missing], np.zeros(missing.sum()), "x", color=colours(i % 20), markersize=4)
    ax.set_xticks(x, [str(c) for c in table.columns])
    ax.set_ylabel(f"{TARGETS[target].metric} (0-100)")
    ax.set_title(f"{target}: zero-shot score per language (x = missing)")
    ax.legend(ncols=min(n_rows, 6), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    _save(fig, path)


def language_plot(languages: pd.DataFrame, column: str, path: Path, *, ylabel: str, title: str,
                  english: bool = False) -> None:
    """Per language (a `language_table` or `robustness.language_drops`), its `column` against its resource class
    (left) and family (right), with the class and family means; English left out unless `english` (a gain in
    the training language is not zero-shot)."""
    fig = Figure(figsize=(12, 5), layout="constrained")
    by_class, by_family = fig.subplots(1, 2)
    data = (languages if english else languages.drop(index="en", errors="ignore")).dropna(subset=["class", column])
    families = sorted(set(data["family"])) if len(data) else []
    colours = colormaps["tab10"]
    for ax in (by_class, by_family):
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel(ylabel)
    if not len(data):
        for ax in (by_class, by_family):
            ax.text(0.5, 0.5, "nothing measured yet", ha="center", va="center", transform=ax.transAxes)
    for k, family in enumerate(families):
        part = data[data["family"] == family]
        jitter = (np.arange(len(part)) % 5 - 2) * 0.06
        by_class.scatter(part["class"].astype(float) + jitter, part[column], color=colours(k % 10), label=family)
        by_family.scatter(np.full(len(part), k) + jitter, part[column], color=colours(k % 10))
        by_family.plot([k - 0.3, k + 0.3], [part[column].mean()] * 2, color="black")
        for (code, row), dx in zip(part.iterrows(), jitter, strict=True):
            by_class.annotate(str(code), (float(row["class"]) + dx, row[column]), fontsize=7,
                              xytext=(3, 2), textcoords="offset points")
    for cls, mean in data.groupby("class")[column].mean().items() if len(data) else []:
        by_class.plot([float(cls) - 0.3, float(cls) + 0.3], [mean, mean], color="black")
    by_class.set_xticks(range(6), [f"{c}\n{RESOURCE_CLASSES[c].removeprefix('The ')}" for c in range(6)], fontsize=8)
    by_class.set_xlim(-0.5, 5.5)
    by_class.set_xlabel("resource class (Joshi et al. 2020; black: class mean)")
    by_family.set_xticks(range(len(families)), families, rotation=30, ha="right", fontsize=8)
    by_family.set_xlabel("language family (black: family mean)")
    if families:
        by_class.legend(fontsize=7)
    fig.suptitle(title)
    _save(fig, path)


# --------------------------------------------------------------------------------------------------
# Rendering


def _as_text(df: pd.DataFrame, signed: Sequence[str] = ()) -> pd.DataFrame:
    """Cells as text: floats with one decimal (signed in the `signed` columns), missing as "–"."""

    def cell(value: Any, column: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        if isinstance(value, float):
            return f"{value:+.1f}" if column in signed else f"{value:.1f}"
        return str(value)

    return pd.DataFrame({c: [cell(v, c) for v in df[c]] for c in df.columns}, index=df.index)


def _markdown(text: pd.DataFrame) -> str:
    return text.map(lambda s: str(s).replace("|", "\\|")).to_markdown() + "\n"


def _html_table(text: pd.DataFrame, classes: Callable[[str], str] = lambda _: "", *, prose: bool = False) -> str:
    """An HTML table of text cells (escaped); a cell's class from `classes(text)`, "missing" for "–";
    `prose` left-aligns the cells."""

    def td(value: str) -> str:
        cls = " ".join(c for c in ("missing" if value == MISSING else "", classes(value)) if c)
        return f'<td class="{cls}">{escape(value)}</td>' if cls else f"<td>{escape(value)}</td>"

    head = "".join(f"<th>{escape(str(c))}</th>" for c in [text.index.name or "", *text.columns])
    body = "".join(f"<tr><th>{escape(str(i))}</th>{''.join(td(str(v)) for v in row)}</tr>"
                   for i, row in zip(text.index, text.itertuples(index=False), strict=True))
    table = '<table class="prose">' if prose else "<table>"
    return f"{table}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _state_class(text: str) -> str:
    word = text.split(" ", 1)[0]
    return f"state-{word}" if word in STATES else ""


def _verdict_class(text: str) -> str:
    return {HOLDS: "holds", FAILS: "fails"}.get(text, "")


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 110em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
table.prose td, table.prose th { text-align: left; }
thead th { background: #eee; }
td.missing { color: #999; }
td.state-done, td.holds { background: #d8f0d8; }
td.state-running { background: #fff2c0; }
td.state-failed, td.state-corrupt, td.fails { background: #f6d0d0; }
td.state-missing { color: #999; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
p.note, ul.note { font-size: 0.85em; color: #555; }
"""


@dataclass(frozen=True)
class _Page:
    """What README.md and report.html show, computed once."""

    title: str
    summary: str
    status: pd.DataFrame
    problems: list[str]  # the failed and corrupt cells, each with its log or its damaged file and redo
    claims: pd.DataFrame
    transfer: pd.DataFrame
    transfer_note: str
    delta: pd.DataFrame
    best: pd.DataFrame
    per_language: dict[str, pd.DataFrame]
    languages: pd.DataFrame
    grid_line: str
    notes: dict[str, list[str]]  # table ("transfer", "best", "per_language/<target>") -> the marks' notes
    marks: list[str]  # every mark's note, for the README
    data: pd.DataFrame  # `comparability.data_table` as text
    delta_note: str = DELTA_NOTE
    sections: tuple[_Section, ...] = ()  # robustness and alignment, where the grid has them


@dataclass(frozen=True)
class _Block:
    """Part of a section: a heading, a table of text cells, notes under it, a plot."""

    heading: str = ""
    table: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    image: Path | None = None
    prose: bool = False


@dataclass(frozen=True)
class _Section:
    """A section of the page that only some grids have, and the tables and plots it links from README.md."""

    anchor: str
    title: str
    blocks: tuple[_Block, ...]
    tables: tuple[str, ...]
    plots: tuple[str, ...]


def _section_html(section: _Section, results: Path) -> list[str]:
    parts = [f'<h2 id="{section.anchor}">{escape(section.title)}</h2>']
    for block in section.blocks:
        parts += [f"<h3>{escape(block.heading)}</h3>" if block.heading else "",
                  _html_table(block.table, _verdict_class, prose=block.prose) if block.table is not None else "",
                  _notes_html(block.notes),
                  _image(results, block.image, block.heading or section.title) if block.image else ""]
    return parts


def _section_markdown(section: _Section, results: Path) -> str:
    parts = [f"## {section.title}\n"]
    for block in section.blocks:
        parts += [f"### {block.heading}\n" if block.heading else "",
                  _markdown(block.table) if block.table is not None else "", notes_markdown(block.notes),
                  f"\n{_link(results, block.image)}\n" if block.image else ""]
    return "\n".join(p for p in parts if p) + "\n"


def robustness_section(robust: Robustness, claims: pd.DataFrame, grid_marks: Marks, layout: Layout,
                       targets: Sequence[str]) -> _Section:
    """The robustness tables, claims and plots (`xstilts.robustness`)."""
    notes = tuple(grid_marks.notes(list(targets)))
    interval = (INTERVAL_NOTE,) if robust.intervals is not None else ()
    blocks = [
        _Block("This grid's robustness findings", _as_text(claims), (f"Relative drops closer than {ROBUST_MARGIN:g}"
               " percent of the clean score do not count as a difference.",), prose=True),
        _Block("Relative drop under each condition (%)",
               marked_columns(delta_frame(robust.table, None, robust.unsure("relative_drop")), grid_marks),
               (DROP_NOTE, *interval, *notes), layout.plot("heatmap_robustness")),
        _Block(f"Relative drop minus {BASELINE_ROW}'s (points of %)",
               marked_columns(delta_frame(robust.delta, None, robust.unsure("delta")), grid_marks),
               (ROBUSTNESS_DELTA_NOTE, *interval, *notes)),
    ]
    if len(robust.attack):
        blocks.append(_Block("Adversarial substitutions (accuracy %, success rate %, forward passes per attacked "
                             "example)", _as_text(robust.attack.reset_index().set_index("intermediate")),
                             ("Accuracy under attack counts the clean mistakes as mistakes; the success rate is the "
                              "share of the attacked (clean-right) examples whose prediction flipped.",)))
    blocks.append(_Block("Relative drop by language, resource class and family",
                         _as_text(robust.languages, signed=[c for c in robust.languages.columns
                                                            if c not in META_COLUMNS]),
                         ("class: resource class of Joshi et al. (2020); a language's drop is its mean over rows, "
                          "targets and seeds.",), layout.plot("drop_by_resource"), prose=True))
    stems = ("robustness", "robustness_delta", "robustness_claims", "robustness_drops", "robustness_languages",
             "attack", *(("robustness_ci", "delta_ci") if robust.intervals is not None else ()))
    return _Section("robustness", "Robustness: perturbed evaluation conditions", tuple(blocks), stems,
                    ("heatmap_robustness.png", "drop_by_resource.png"))


def alignment_section(probes: Probes, layout: Layout) -> _Section:
    """The alignment plots and the correlation of alignment gains with transfer gains (`xstilts.alignment`)."""
    blocks = [_Block(f"{measure} by layer", image=layout.plot(f"alignment_{measure}")) for measure in MEASURES]
    blocks.append(_Block(
        f"Alignment gain vs transfer gain at layer {probes.layer} (correlation over rows and languages)",
        _as_text(probes.correlations.set_index("target").map(lambda v: round(v, 2) if isinstance(v, float) else v)),
        ("Gains are against none, English left out; retrieval: the mean of both directions; each point of the "
         "correlation is one (row, language) of the target (tables/alignment_transfer.*).",)))
    return _Section("alignment", "Alignment probes per layer", tuple(blocks),
                    ("alignment_layers", "alignment_transfer", "alignment_correlation"),
                    tuple(f"alignment_{m}.png" for m in MEASURES))


def _notes_html(lines: Sequence[str]) -> str:
    return f'<ul class="note">{"".join(f"<li>{escape(line)}</li>" for line in lines)}</ul>' if lines else ""


def _data_html(data: pd.DataFrame) -> str:
    """The data table as a list (one item per prepared cache and origin)."""
    if data.empty:
        return '<p class="note">No data recorded yet.</p>'
    items = "".join(f"<li><b>{escape(str(r.data))}</b>: {escape(_origin_text(r))}; used by {escape(r.used_by)}</li>"
                    for r in data.reset_index().rename(columns=_IDENTIFIERS).itertuples(index=False))
    return f"<ul>{items}</ul>"


_IDENTIFIERS = {"revision or sha256": "revision", "used by": "used_by"}


def _origin_text(row: Any) -> str:
    if row.source == "hub":
        return f"hub {row.name} at {row.revision}"
    if row.source == "folder":
        return f"folder {row.name} ({row.files} files, sha256 {row.revision})"
    return str(row.source)


def _image(results: Path, path: Path, alt: str) -> str:
    rel = Path(os.path.relpath(path, results)).as_posix()
    if not path.is_file():
        return f'<p class="note missing">{escape(alt)}: not written yet ({escape(rel)})</p>'
    return f'<img src="{escape(rel)}" alt="{escape(alt)}">'


def render_html(page: _Page, results: Path, tables: Path) -> str:
    """The self-standing report page; images are linked relative to `results`."""
    parts = [f"<h1>{escape(page.title)}</h1>", f"<p>{escape(page.grid_line)}</p>",
             '<p><a href="#progress">progress</a> · <a href="#claims">claims</a> · <a href="#transfer">transfer</a> · '
             '<a href="#delta">gains</a> · <a href="#best">best per target</a> · <a href="#targets">per target</a> · '
             '<a href="#languages">languages</a> · '
             + "".join(f'<a href="#{x.anchor}">{x.anchor}</a> · ' for x in page.sections)
             + '<a href="#data">data</a></p>',
             '<h2 id="progress">Progress</h2>', f"<p>{escape(page.summary)}</p>",
             _html_table(page.status, _state_class), _notes_html(page.problems),
             '<h2 id="claims">The paper\'s headline findings on this grid</h2>',
             _html_table(page.claims, _verdict_class, prose=True),
             f'<p class="note">A gain of at least {LARGE_GAIN:g} points is "large"; below {NO_GAIN:g} point is '
             '"no gain". Deltas are against the none row. marks: the marked columns a claim rests on (see under '
             'the transfer table).</p>',
             '<h2 id="transfer">Transfer (rows: intermediate task; columns: targets, groups, XTREME)</h2>',
             _html_table(page.transfer), f'<p class="note">{escape(page.transfer_note)}</p>',
             _notes_html(page.notes["transfer"]),
             _image(results, tables / "heatmap_transfer.png", "heatmap of the transfer table"),
             f'<h2 id="delta">Gain over {BASELINE_ROW} (points)</h2>', _html_table(page.delta),
             f'<p class="note">{escape(page.delta_note)}</p>', _notes_html(page.notes["transfer"]),
             _image(results, tables / "heatmap_delta.png", "heatmap of the gains"),
             '<h2 id="best">Best intermediate task per target</h2>', _html_table(page.best),
             _notes_html(page.notes["best"]),
             '<h2 id="targets">Per target and language</h2>']
    for target, table in page.per_language.items():
        parts += [f"<h3>{escape(target)}</h3>", _html_table(table), _notes_html(page.notes[f"per_language/{target}"]),
                  _image(results, tables / f"bars_{target}.png", f"{target} bars per language")]
    parts += ['<h2 id="languages">Languages: gains by resource class and family</h2>',
              _image(results, tables / "gain_by_resource.png", "gain by resource class and family"),
              _html_table(page.languages, prose=True),
              '<p class="note">class: resource class of Joshi et al. (2020), 0 (left behind) to 5 (winners); gains '
              f"are deltas against {BASELINE_ROW}, averaged over seeds and over the targets the language is in.</p>"]
    for section in page.sections:
        parts += _section_html(section, results)
    parts += ['<h2 id="data">Data: where every score and checkpoint came from</h2>', _data_html(page.data)]
    body = "\n".join(p for p in parts if p)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(page.title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _link(results: Path, path: Path) -> str:
    rel = Path(os.path.relpath(path, results)).as_posix()
    return f"[{rel}]({rel})" if path.exists() else f"{rel} (not written yet)"


def render_readme(page: _Page, results: Path, tables: Path, targets: Sequence[str], refresh: str) -> str:
    """results/README.md: the folders, the grid's progress, and links to every table and plot."""
    folders = "\n".join(f"- `{name}/`: {text}" + ("" if (results / name).exists() else " (not there yet)")
                        for name, text in FOLDERS.items())
    table_stems = ["transfer", "transfer_std", "delta", "best", "claims", "marks", "data", "languages",
                   *(f"per_language/{t}" for t in targets), *(t for x in page.sections for t in x.tables)]
    table_links = "\n".join(f"- {stem}: " + ", ".join(_link(results, tables / f"{stem}.{ext}")
                                                      for ext in ("md", "csv", "parquet")) for stem in table_stems)
    plots = ["heatmap_transfer.png", "heatmap_delta.png", "gain_by_resource.png", *(f"bars_{t}.png" for t in targets),
             *(p for x in page.sections for p in x.plots)]
    plot_links = "\n".join(f"- {_link(results, tables / p)}" for p in plots)
    return f"""# {page.title}

{page.grid_line} The full page with every table and plot: [report.html](report.html).

## Progress

{page.summary}

{_markdown(page.status)}{notes_markdown(page.problems)}
States: done (scores written), running (a log or resumable state exists, no error), failed (a job log
shows an error and there are no scores), corrupt (a damaged or foreign file where an output should be:
redo it with the command named), missing (not started). `(ii)` is the row's phase-(ii)
training time. `xstilts status` prints this at any time. A run that ends with failed cells refreshes
this page and the tables itself; by hand:

    {refresh}

## The paper's headline findings on this grid

{_markdown(page.claims)}
{"".join(_section_markdown(x, results) for x in page.sections)}## Marks

† marks a score over fewer languages than XTREME's (or a group or XTREME score over fewer targets, or over
marked ones), ‡ one whose data are not the data XTREME used; they are computed from the scores and the
prepared data's meta.json (`tables/marks.*`).
{notes_markdown(page.marks) or chr(10) + "No mark: every score is over XTREME's languages and data." + chr(10)}
## Data

Where every score (`eval/T`) and checkpoint (`train/D`) came from: each hub repo with the commit read, each
local folder with a sha256 over the files read (`tables/data.*`).

{_markdown(page.data) if len(page.data) else "No data recorded yet."}
## What each folder holds

{folders}
- `README.md` (this page) and `report.html`

## Tables

{table_links}

## Plots

{plot_links}
"""


def _write_table(df: pd.DataFrame, text: pd.DataFrame, stem: Path) -> list[Path]:
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("parquet", "csv", "md")]
    write_parquet(df, paths[0])
    write_text(df.to_csv(), paths[1])
    write_text(_markdown(text), paths[2])
    return paths


def write_report(tables: Tables, grid: Grid, status: pd.DataFrame, manifests: pd.DataFrame | None = None,
                 robust: Robustness | None = None, probes: Probes | None = None,
                 values: Mapping[str, dict[str, Values]] | None = None) -> list[Path]:
    """Write the claims, marks, data and languages tables, the bar and gain plots (into the grid's tables
    folder), README.md and report.html (into its results folder); return the written paths. `status` is
    the grid's cell states (`status.grid_status`); `manifests` (the checkpoints' manifest rows) add the data
    the trainings read to the data table; `robust` and `probes` add the robustness and alignment sections
    (their claims table and the drop-by-resource plot written here); `values` (per target, its clean values on
    bootstrap resamples) the shift table's intervals."""
    layout, spec = grid.layout, grid.aggregate()
    results, folder = layout.root, layout.tables
    rows, targets, seeds = spec.rows, spec.targets, spec.seeds
    grid_marks, transfer = tables.marks, tables.transfer
    shift = (shift_table(tables.scores, transfer, rows, targets, values, seeds, spec.significance)
             if shifted_targets(targets) else None)
    claims = claims_table(transfer, targets, spec.variants, grid_marks, shift)
    languages = language_table(tables.scores, rows, targets)
    gains = [c for c in languages.columns if c not in META_COLUMNS]
    mark_rows, data = grid_marks.table(), data_table(tables.scores, manifests)

    paths = _write_table(claims, _as_text(claims), folder / "claims")
    paths += _write_table(mark_rows.set_index("target"), mark_rows.set_index("target"), folder / "marks")
    paths += _write_table(data.set_index("data"), _as_text(data.set_index("data")), folder / "data")
    paths += _write_table(languages, _as_text(languages, signed=gains), folder / "languages")
    for target, table in tables.per_language.items():
        target_bars(table, target, folder / f"bars_{target}.png")
        paths.append(folder / f"bars_{target}.png")
    language_plot(languages, MEAN_GAIN, folder / "gain_by_resource.png",
                  ylabel=f"{MEAN_GAIN} over {BASELINE_ROW!r} (points)",
                  title="Zero-shot gain per language (English left out): mean over the intermediate rows and over "
                        "the targets it is in")
    paths.append(folder / "gain_by_resource.png")
    sections = []
    if shift is not None:
        shift_notes = [SHIFT_NOTE, *rank_notes(shift, MULTITASK_ROW)]
        shown = _as_text(shift.set_index(["target", "row"]), signed=[c for c in shift.columns if "delta" in c])
        paths += write_formats(shift.set_index(["target", "row"]), folder / "shift", shown=shown, notes=shift_notes)
        sections.append(_Section("shift", "Under shift: domain and resources",
                                 (_Block(table=shown, notes=tuple(shift_notes)),), ("shift",), ()))
    if robust is not None:
        robust_claims = robustness_claims(robust, transfer)
        paths += _write_table(robust_claims, _as_text(robust_claims), folder / "robustness_claims")
        language_plot(robust.languages, MEAN_DROP, layout.plot("drop_by_resource"), english=True,
                      ylabel="mean relative drop (% of the clean score)",
                      title="Relative drop per language under the perturbations: mean over rows, targets, conditions "
                            "and seeds")
        paths.append(layout.plot("drop_by_resource"))
        sections.append(robustness_section(robust, robust_claims, grid_marks, layout, targets))
    if probes is not None:
        sections.append(alignment_section(probes, layout))

    n = counts(status)
    page = _Page(
        title="X-STILTs grid: results",
        summary=summary_line(status, grid),
        problems=[f"{state}: {line}" for state in ("failed", "corrupt") for line in problem_lines(status, state)],
        status=status_matrix(status, grid),
        claims=_as_text(claims),
        transfer=grid_marks.relabel(mean_std_frame(transfer, tables.std)),
        transfer_note=transfer_note(tables.scores, targets),
        delta=grid_marks.relabel(delta_frame(tables.delta, tables.significant, tables.unsure)),
        best=_as_text(grid_marks.relabel(tables.best, axis="index"), signed=["delta"]),
        per_language={t: _as_text(grid_marks.relabel_languages(t, df)) for t, df in tables.per_language.items()},
        languages=_as_text(languages, signed=gains),
        notes={"transfer": grid_marks.notes(list(transfer.columns)),
               "best": marked("best", tables.best, grid_marks)[1],
               **{f"per_language/{t}": grid_marks.notes([t]) for t in targets}},
        marks=grid_marks.notes([*targets, *(c for c in transfer.columns if c not in targets)]),
        data=_as_text(data.set_index("data")),
        grid_line=(f"Rows: {' '.join(rows)}. Targets: {' '.join(targets)}. Seeds: {' '.join(map(str, seeds))}. "
                   f"{n['done']} of {len(status)} cells done. Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."),
        delta_note=f"{DELTA_NOTE} {INTERVAL_NOTE}" if tables.intervals is not None else DELTA_NOTE,
        sections=tuple(sections),
    )
    refresh = shlex.join(spec.command)
    write_text(render_readme(page, results, folder, targets, refresh), layout.readme)
    write_text(render_html(page, results, folder), layout.report)
    return [*paths, layout.readme, layout.report]


def aggregate(grid: Grid) -> list[Path]:
    """The aggregate job: every table, plot and the report from the cells that exist (damaged scores files
    are left out and their cells shown as corrupt), and the checkpoints' collected manifest."""
    layout, spec = grid.layout, grid.aggregate()
    write_config(grid.config, layout.config)  # what the refresh command the README shows reads
    scores = scan_scores(layout.scores_dir)
    settings = spec.significance
    values = {t: prediction_values(grid, t) for t in grid.targets}
    clean = {t: v[0] for t, v in values.items() if v[0]}
    intervals = (transfer_intervals(clean, grid.rows, grid.targets, grid.seeds, settings, grid.benchmark) if clean
                 else None)
    tables = compute_tables(scores.frame, grid.rows, grid.targets, grid.benchmark, intervals)
    paths = write_tables(tables, layout.tables)
    robust = compute_robustness(scores.frame, grid.rows, grid.targets)
    if robust is not None:
        perturbed = {t: v[1] for t, v in values.items() if v[1]}
        if perturbed:
            robust = replace(robust, intervals=robustness_intervals(perturbed, robust.table, grid.seeds, settings))
        paths += write_robustness(robust, layout.tables, tables.marks, grid.targets)
    probes = compute_probes(read_alignment(layout.alignment_dir), cell_scores(scores.frame), grid.rows,
                            spec.alignment_layer)
    if probes is not None:
        paths += write_probes(probes, layout, grid.rows)
    manifests = None
    if layout.checkpoints.is_dir():
        manifests = collect_manifests(layout.checkpoints)
        write_parquet(manifests, layout.manifest)
    return paths + write_report(tables, grid, grid_status(grid, scores), manifests, robust, probes, clean)


def prediction_values(grid: Grid, target: str) -> tuple[dict[str, Values], dict[str, Values]]:
    """A target's systems per language on bootstrap resamples of its report split (`significance.target_values`),
    what the intervals of every delta come from: the clean ones, and those of the perturbations with their
    reference (clean on their sample, `conditions.CLEAN_SAMPLE`, where there is one); empty without predictions."""
    settings = grid.aggregate().significance
    predictions = read_predictions(grid.layout.predictions_dir, target, TARGETS[target].report_split)
    clean = predictions["condition"] == CLEAN
    perturbed = ~clean | (clean & ~(predictions["condition"] == CLEAN_SAMPLE).any()) if (~clean).any() else ~clean

    def values(part: pd.Series) -> dict[str, Values]:
        return target_values(target, predictions[part], settings.resamples, settings.seed) if part.any() else {}

    return values(clean), values(perturbed)
