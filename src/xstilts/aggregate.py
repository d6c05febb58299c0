"""The transfer tables: grid rows x targets, as XTREME scores them (DESIGN.md section 2, "Scores").

A cell's headline per language is the target's metric on its report split (QA: (F1 + EM) / 2). A
target's value for one seed is the mean over the languages that cell was evaluated on; the table shows
the mean over seeds. Group columns average the grid's targets of the benchmark's group, and the benchmark's
column ("xtreme" or "xtreme-r", `benchmarks.Benchmark`) the grid's targets that its score averages; both are NaN
when one of their targets is missing for the row. With all of a benchmark's targets these are evaluate.py's
scores (`Benchmark.scores`); with fewer they are marked (`comparability`). `transfer_std_table` gives the
matching sample standard deviation over seeds (NaN with one seed); group and benchmark spreads are taken over
the per-seed group and benchmark scores. Missing cells are NaN, never an error.

Marks (`xstilts.comparability`): the Markdown and LaTeX renderings label a column † where its target was
evaluated on fewer languages than XTREME's and ‡ where its data are not XTREME's, with a note under the table;
the parquet and CSV tables stay numeric.

Seed noise: a delta "exceeds seed noise" when |delta| > NOISE_FACTOR (2) x the pooled standard deviation
of the row's and the baseline's per-seed scores, sqrt(((n_r - 1) s_r² + (n_b - 1) s_b²) / (n_r + n_b - 2));
with one seed on both sides the noise is unknown and no delta is marked. With several seeds the Markdown
renderings show mean ± std (transfer) and mark such deltas with "*" (delta).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import CenteredNorm, Normalize
from matplotlib.figure import Figure

from xstilts.benchmarks import XTREME as XTREME_BENCHMARK
from xstilts.benchmarks import Benchmark
from xstilts.catalogue import BASELINE_ROW, TARGETS, UNTRAINED_ROW
from xstilts.comparability import Marks, marks
from xstilts.conditions import CLEAN
from xstilts.results_io import atomic_path, write_parquet, write_text
from xstilts.settings import SignificanceSettings
from xstilts.significance import (
    Measure,
    Values,
    average,
    contains_zero,
    difference,
    interval,
    seed_means,
)

CELL_KEYS = ["intermediate", "target", "seed", "language"]
QA_PARTS = ("f1", "exact_match")
XTREME = "xtreme"
INDEX_NAME = "intermediate"
NOISE_FACTOR = 2.0
MISSING = "–"
MEAN_STD_NOTE = "Mean ± sample standard deviation over seeds; a value without ± has one seed. – = missing."
DELTA_NOTE = (f"* = |delta| > {NOISE_FACTOR:g} x the pooled seed standard deviation of the row and {BASELINE_ROW!r} "
              "(exceeds seed noise); unmarked where it does not or where one seed each leaves it unknown.")
UNSURE = "°"
INTERVAL_NOTE = (f"{UNSURE} = the delta's paired-bootstrap interval contains 0 (resampled examples of the predictions; "
                 "with several seeds the seeds too; intervals in the *_ci tables).")


def _check_targets(targets: Sequence[str]) -> None:
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")


def _metric_parts(target: str) -> tuple[str, ...]:
    """The metric rows whose mean is the target's headline: (F1 + EM) / 2 for `f1_em` (XTREME's QA)."""
    metric = TARGETS[target].metric
    return QA_PARTS if metric == "f1_em" else (metric,)


def clean(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores of the `clean` evaluation condition (a frame without conditions is all clean)."""
    return scores[scores["condition"] == CLEAN] if "condition" in scores else scores


def headline_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (intermediate, target, seed, language, condition) with the headline `value` on the report
    split. For "f1_em" targets the value is the mean of the f1 and exact_match rows (NaN if one is missing)."""
    _check_targets(scores["target"].unique().tolist())
    wanted = pd.DataFrame(
        [(t, TARGETS[t].report_split, m, len(_metric_parts(t))) for t in TARGETS for m in _metric_parts(t)],
        columns=["target", "split", "metric", "n_parts"],
    )
    scores = scores if "condition" in scores else scores.assign(condition=CLEAN)
    keys = [*CELL_KEYS, "condition"]
    rows = scores[[*keys, "split", "metric", "value"]].astype(
        {"intermediate": str, "target": str, "split": str, "metric": str, "language": str, "condition": str,
         "seed": "int64"}
    )
    rows = rows.merge(wanted, on=["target", "split", "metric"], how="inner")
    cells = rows.groupby(keys, sort=True).agg(value=("value", "mean"), found=("value", "size"),
                                             n_parts=("n_parts", "first"))
    cells["value"] = cells["value"].where(cells["found"] == cells["n_parts"])
    return cells[["value"]].reset_index()


def cell_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (intermediate, target, seed, language) with the headline `value` on the report split,
    under the `clean` condition (`headline_scores`)."""
    return headline_scores(clean(scores)).drop(columns="condition")


def _per_seed(scores: pd.DataFrame, targets: Sequence[str]) -> pd.DataFrame:
    """Target values per (intermediate, seed): the mean over each cell's languages (NaN-propagating)."""
    cells = cell_scores(scores)
    cells = cells[cells["target"].isin(list(targets))]
    per_seed = cells.groupby(["intermediate", "seed", "target"])["value"].mean(skipna=False)
    return per_seed.unstack("target").reindex(columns=list(targets))


def _summaries(table: pd.DataFrame, targets: Sequence[str], bench: Benchmark) -> pd.DataFrame:
    """Append the benchmark's group columns (groups with a target in `targets`) and its score."""
    table = table.copy()
    for column, members in bench.columns(targets).items():
        table[column] = table[members].mean(axis=1, skipna=False)
    if bench.name not in table:  # no scored target in the grid
        table[bench.name] = np.nan
    return table


def _finish(table: pd.DataFrame, rows: Sequence[str]) -> pd.DataFrame:
    table = table.reindex(list(rows)).astype("float64")
    table.index.name = INDEX_NAME
    table.columns.name = None
    return table


def transfer_table(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                   bench: Benchmark = XTREME_BENCHMARK) -> pd.DataFrame:
    """Rows x (targets, groups, benchmark score): per target the mean over languages, then over seeds.

    Groups and the score are computed from the seed-averaged target columns, so they match the table.
    """
    _check_targets(targets)
    means = _per_seed(scores, targets).groupby(level="intermediate").mean()
    return _finish(_summaries(means, targets, bench), rows)


def transfer_std_table(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                       bench: Benchmark = XTREME_BENCHMARK) -> pd.DataFrame:
    """Same shape as `transfer_table`: the sample standard deviation over seeds (ddof=1)."""
    _check_targets(targets)
    per_seed = _summaries(_per_seed(scores, targets), targets, bench)
    return _finish(per_seed.groupby(level="intermediate").std(ddof=1), rows)


def seed_count_table(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                     bench: Benchmark = XTREME_BENCHMARK) -> pd.DataFrame:
    """Same shape as `transfer_table`: the number of seeds with a value (0 where the cell is missing)."""
    _check_targets(targets)
    per_seed = _summaries(_per_seed(scores, targets), targets, bench)
    return _finish(per_seed.groupby(level="intermediate").count(), rows).fillna(0.0)


def noise_table(std: pd.DataFrame, counts: pd.DataFrame, baseline: str = BASELINE_ROW) -> pd.DataFrame:
    """Per cell, the pooled seed standard deviation of the row and `baseline` (see the module
    docstring); NaN without a degree of freedom or where either side has no value."""
    n_base = counts.loc[baseline] if baseline in counts.index else pd.Series(0.0, index=counts.columns)
    s_base = _baseline(std, baseline)
    squares = (counts - 1).clip(lower=0) * std.fillna(0) ** 2 + (n_base - 1).clip(lower=0) * s_base.fillna(0) ** 2
    dof = counts + n_base - 2
    return np.sqrt(squares / dof.where(dof > 0)).where((counts > 0) & (n_base > 0))


def significant_table(delta: pd.DataFrame, noise: pd.DataFrame) -> pd.DataFrame:
    """True where |delta| > NOISE_FACTOR x `noise` (False where either is NaN)."""
    return delta.abs() > NOISE_FACTOR * noise


def _fmt(value: float) -> str:
    return MISSING if pd.isna(value) else f"{value:.1f}"


def mean_std_frame(mean: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """`mean` as text, "81.0 ± 1.4" where `std` has a value, "–" where `mean` is missing."""
    spread = std.reindex_like(mean).map(lambda s: "" if pd.isna(s) else f" ± {s:.1f}")
    return mean.map(_fmt) + spread.where(mean.notna(), "")


def delta_frame(delta: pd.DataFrame, significant: pd.DataFrame | None, unsure: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """`delta` as signed text ("–" where missing), "*" appended where `significant`, UNSURE where `unsure` (its
    interval holds 0)."""
    text = delta.map(lambda v: MISSING if pd.isna(v) else f"{v:+.1f}")
    for where, mark in ((significant, "*"), (unsure, UNSURE)):
        if where is not None:
            text = text + where.reindex_like(delta).fillna(False).astype(bool).map(lambda b, m=mark: m if b else "")
    return text


def interval_frame(intervals: pd.DataFrame, like: pd.DataFrame, column: str) -> pd.DataFrame:
    """The long intervals table (`intermediate`, `column`, ..., `contains_zero`) as a frame shaped like `like`."""
    wide = intervals.pivot_table(index="intermediate", columns=column, values="contains_zero", aggfunc="first")
    return wide.reindex(index=like.index, columns=like.columns).fillna(False).astype(bool)


def transfer_intervals(values: Mapping[str, dict[str, Values]], rows: Sequence[str], targets: Sequence[str],
                       seeds: Sequence[int], settings: SignificanceSettings,
                       bench: Benchmark = XTREME_BENCHMARK) -> pd.DataFrame:
    """The deltas of the delta table (every row but `none`; targets, the benchmark's groups and score) from the
    predictions, with their paired-bootstrap intervals (`xstilts.significance`, `values`: per target,
    `target_values`): one row per (intermediate, column): delta, low, high, contains_zero."""
    records = []
    for row in (r for r in rows if r != BASELINE_ROW):
        per_target = {t: seed_means(values.get(t, {}), seeds, lambda v, s, row=row: baseline_delta(v, row, s))
                      for t in targets}
        columns = {**per_target, **{column: average([per_target[t] for t in members])
                                    for column, members in bench.columns(targets).items()}}
        for column, per_seed in columns.items():
            delta, low, high = interval(per_seed, settings.seed, settings.level)
            records.append({"intermediate": row, "column": column, "delta": delta, "low": low, "high": high,
                            "contains_zero": contains_zero(low, high)})
    return pd.DataFrame(records, columns=["intermediate", "column", "delta", "low", "high", "contains_zero"])


def baseline_delta(values: Values, row: str, seed: int) -> Measure | None:
    """A row's clean delta against `none` on one language's resamples (`significance.target_values`); None
    where either is missing."""
    ours, base = values.get((row, seed, CLEAN)), values.get((BASELINE_ROW, seed, CLEAN))
    return difference(ours, base) if ours is not None and base is not None else None


def delta_table(transfer: pd.DataFrame, baseline: str = BASELINE_ROW) -> pd.DataFrame:
    """`transfer` minus its `baseline` row, column by column (NaN where either is missing, all NaN
    when `baseline` is not a row)."""
    return transfer - _baseline(transfer, baseline)


def _baseline(transfer: pd.DataFrame, baseline: str) -> pd.Series:
    if baseline in transfer.index:
        return transfer.loc[baseline]
    return pd.Series(np.nan, index=transfer.columns, dtype="float64")


def best_table(transfer: pd.DataFrame, baseline: str = BASELINE_ROW) -> pd.DataFrame:
    """Per column of `transfer`: the best row other than the baseline and the untrained control, its
    score, the baseline's, and the delta. `best` is None where no row has a score."""
    candidates = transfer.drop(index=[baseline, UNTRAINED_ROW], errors="ignore")
    base = _baseline(transfer, baseline)
    records = []
    for column in transfer.columns:
        values = candidates[column].dropna()
        best = values.idxmax() if len(values) else None
        score = values.max() if len(values) else np.nan
        records.append(
            {
                "column": column,
                "best": best,
                "score": score,
                "baseline": base[column],
                "delta": score - base[column],
            }
        )
    table = pd.DataFrame.from_records(records, index="column")
    table.index.name = "target"
    return table.astype({"best": object, "score": "float64", "baseline": "float64", "delta": "float64"})


def per_language_table(scores: pd.DataFrame, target: str, rows: Sequence[str]) -> pd.DataFrame:
    """Rows x languages of one target (mean over seeds), plus "avg" equal to the transfer table's value.

    Languages come in catalogue order, then any others (e.g. demo languages) sorted.
    """
    _check_targets([target])
    cells = cell_scores(scores)
    cells = cells[cells["target"] == target]
    table = cells.groupby(["intermediate", "language"])["value"].mean().unstack("language")
    present = set(table.columns)
    catalogue = [lang for lang in TARGETS[target].languages if lang in present]
    table = table.reindex(columns=catalogue + sorted(present - set(catalogue)))
    table["avg"] = transfer_table(scores, rows, [target])[target]
    return _finish(table, rows)


# --------------------------------------------------------------------------------------------------
# Files


def chance_levels(scores: pd.DataFrame, targets: Sequence[str]) -> dict[str, float]:
    """What guessing uniformly at random scores, per target with an accuracy metric, averaged over its
    languages as the transfer table is: 100 / classes for classification, 100 / candidates for Tatoeba
    (each sentence is looked up among the n of its language). F1 targets (tagging, QA, BUCC mining) have
    no such simple level and are left out."""
    levels = {}
    scores = clean(scores)
    for name in targets:
        target = TARGETS[name]
        if target.metric != "accuracy":
            continue
        if target.labels:  # classification: one of the labels
            levels[name] = 100 / len(target.labels)
            continue
        rows = scores[(scores["target"] == name) & (scores["split"] == target.report_split)
                      & (scores["metric"] == "accuracy")]
        sizes = rows.groupby("language")["n_examples"].max()
        if len(sizes):
            levels[name] = float((100 / sizes.astype("float64")).mean())
    return levels


def transfer_note(scores: pd.DataFrame, targets: Sequence[str]) -> str:
    """What goes under the transfer table: MEAN_STD_NOTE, then the chance levels (`chance_levels`)."""
    levels = chance_levels(scores, targets)
    if not levels:
        return MEAN_STD_NOTE
    shown = ", ".join(f"{name} {value:.1f}" for name, value in levels.items())
    return f"{MEAN_STD_NOTE} Chance (uniform guessing, averaged over languages): {shown}."


def _markdown(df: pd.DataFrame) -> str:
    shown = df.astype(object).where(df.notna(), None)
    return shown.to_markdown(floatfmt=".1f", missingval="–") + "\n"


_TEX_SPECIALS = {c: f"\\{c}" for c in "&%$#_{}"} | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                                                     "^": r"\textasciicircum{}"}


def _latex(df: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """A booktabs-style tabular (1 decimal), then `notes` as a footnote-size paragraph."""
    styler = df.style.format(precision=1, na_rep="--", escape="latex")
    styler = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    lines = ["".join(_TEX_SPECIALS.get(c, c) for c in line) for line in notes]
    return styler.to_latex(hrules=True) + ("\\par{\\footnotesize " + " \\\\\n".join(lines) + "}\n" if lines else "")


def notes_markdown(lines: Sequence[str]) -> str:
    """Notes under a Markdown table (the marks' meaning), as a list; "" without notes."""
    return "".join(f"\n- {line}" for line in lines) + ("\n" if lines else "")


def text_markdown(text: pd.DataFrame, note: str, notes: Sequence[str] = ()) -> str:
    """A table of preformatted cells (e.g. `mean_std_frame`), right-aligned, then `note` and `notes`."""
    return text.to_markdown(stralign="right", disable_numparse=True) + f"\n\n{note}\n" + notes_markdown(notes)


def write_formats(df: pd.DataFrame, stem: Path, markdown: str | None = None, shown: pd.DataFrame | None = None,
                   notes: Sequence[str] = ()) -> list[Path]:
    """`stem`.parquet, .csv (full precision), .md (`markdown` if given) and .tex (1 decimal); the text
    formats render `shown` (`df` with marked labels) and end with `notes`."""
    shown = df if shown is None else shown
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("parquet", "csv", "md", "tex")]
    write_parquet(df, paths[0])
    write_text(df.to_csv(), paths[1])
    write_text(markdown or _markdown(shown) + notes_markdown(notes), paths[2])
    write_text(_latex(shown, notes), paths[3])
    return paths


def marked(name: str, df: pd.DataFrame, grid_marks: Marks) -> tuple[pd.DataFrame, list[str]]:
    """A table of `write_tables` with its labels marked, and the notes that explain the marks: `best` is
    labelled by row, `per_language/<target>` by language, the others by column."""
    if name == "best":
        return grid_marks.relabel(df, axis="index"), grid_marks.notes(list(df.index))
    if name.startswith("per_language/"):
        target = name.split("/", 1)[1]
        return grid_marks.relabel_languages(target, df), grid_marks.notes([target])
    return grid_marks.relabel(df), grid_marks.notes(list(df.columns))


def heatmap(df: pd.DataFrame, path: Path, *, title: str, diverging: bool, n_targets: int) -> None:
    """Rows x columns heatmap with annotated cells and NaN cells grey; a line separates the targets
    from the group/XTREME columns. Diverging colours centred at 0 when `diverging`."""
    values = df.to_numpy(dtype="float64")
    missing = np.isnan(values)
    finite = values[~missing]
    cmap = colormaps["RdBu" if diverging else "viridis"].with_extremes(bad="lightgrey")
    if diverging:
        norm: Normalize = CenteredNorm(vcenter=0.0, halfrange=max(float(np.abs(finite).max(initial=0)), 1.0))
    else:
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
        norm = Normalize(vmin=low, vmax=max(high, low + 1.0))
    n_rows, n_cols = values.shape
    fig = Figure(figsize=(2.0 + 0.7 * n_cols, 1.5 + 0.4 * n_rows), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_array(values, missing), cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in df.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(r) for r in df.index])
    if 0 < n_targets < n_cols:
        ax.axvline(n_targets - 0.5, color="black", linewidth=1.5)
    for (i, j), value in np.ndenumerate(values):
        if not missing[i, j]:
            r, g, b, _ = cmap(norm(value))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(image, ax=ax)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


@dataclass(frozen=True)
class Tables:
    """Every table of one grid's scores, computed once for the table files and the report."""

    scores: pd.DataFrame
    rows: tuple[str, ...]
    targets: tuple[str, ...]
    transfer: pd.DataFrame
    std: pd.DataFrame
    delta: pd.DataFrame
    significant: pd.DataFrame
    best: pd.DataFrame
    per_language: dict[str, pd.DataFrame]
    marks: Marks
    benchmark: Benchmark = XTREME_BENCHMARK
    intervals: pd.DataFrame | None = None  # `transfer_intervals`, when there are predictions

    @property
    def unsure(self) -> pd.DataFrame | None:
        """Where a delta's interval contains 0 (None without intervals)."""
        return None if self.intervals is None else interval_frame(self.intervals, self.delta, "column")


def compute_tables(scores: pd.DataFrame, rows: Sequence[str], targets: Sequence[str],
                   bench: Benchmark = XTREME_BENCHMARK, intervals: pd.DataFrame | None = None) -> Tables:
    """The transfer table (mean over seeds), its seed spread, the deltas against `none` and which exceed
    seed noise, the best row per target, the per-language tables and the marks; `intervals`: the deltas'
    paired-bootstrap intervals (`transfer_intervals`)."""
    transfer = transfer_table(scores, rows, targets, bench)
    std = transfer_std_table(scores, rows, targets, bench)
    delta = delta_table(transfer)
    significant = significant_table(delta, noise_table(std, seed_count_table(scores, rows, targets, bench)))
    return Tables(scores, tuple(rows), tuple(targets), transfer, std, delta, significant, best_table(transfer),
                  {t: per_language_table(scores, t, rows) for t in targets}, marks(scores, targets, bench), bench,
                  intervals)


def write_tables(tables: Tables, out_dir: Path) -> list[Path]:
    """Write every table and heatmap below `out_dir` atomically; return the written paths.

    Tables (each as .parquet, .csv, .md, .tex): `transfer`, `transfer_std`, `delta` (vs "none"),
    `best`, and `per_language/<target>` per target; transfer.md shows mean ± std and delta.md marks
    the deltas beyond seed noise; the text formats and heatmaps mark partial and not-comparable columns
    (module docstring). Heatmaps: `heatmap_transfer.png`, `heatmap_delta.png`.
    """
    out_dir = Path(out_dir)
    t, grid_marks = tables, tables.marks
    frames = {"transfer": t.transfer, "transfer_std": t.std, "delta": t.delta, "best": t.best}
    frames |= {f"per_language/{target}": df for target, df in t.per_language.items()}
    shown = {name: marked(name, df, grid_marks) for name, df in frames.items()}
    notes = shown["transfer"][1]
    delta_notes = f"{DELTA_NOTE} {INTERVAL_NOTE}" if t.intervals is not None else DELTA_NOTE
    markdown = {
        "transfer": text_markdown(grid_marks.relabel(mean_std_frame(t.transfer, t.std)),
                                  transfer_note(t.scores, t.targets), notes),
        "delta": text_markdown(grid_marks.relabel(delta_frame(t.delta, t.significant, t.unsure)), delta_notes, notes),
    }
    paths = [p for name, df in frames.items()
             for p in write_formats(df, out_dir / name, markdown.get(name), *shown[name])]
    if t.intervals is not None:
        paths += write_formats(t.intervals.set_index("intermediate"), out_dir / "delta_ci")
    heatmaps = (
        ("transfer", t.transfer, "Zero-shot transfer (0-100)", False),
        ("delta", t.delta, f"Gain over {BASELINE_ROW!r} (points)", True),
    )
    for name, df, title, diverging in heatmaps:
        path = out_dir / f"heatmap_{name}.png"
        heatmap(grid_marks.relabel(df), path, title=title, diverging=diverging, n_targets=len(t.targets))
        paths.append(path)
    return paths
