"""Marks on the scores that are not XTREME's, and the data every score came from.

Three marks, the first two computed from the scores themselves (their languages and the run facts each
scores.parquet holds, which copy the prepared data's meta.json), against the grid's benchmark
(`xstilts.benchmarks`):
- † partial: a target evaluated on fewer languages than the benchmark's in some cell;
- ‡ not comparable: languages whose evaluation data are not the benchmark's (meta.json `not_comparable`: UD-POS
  read from the hub, whose configs mix in other treebanks; BUCC read from the hub, gold pairs only; LAReQA
  from the hub, without its sentence breaks);
- § not in the benchmark's score: a target of another benchmark (PAWS-X and BUCC in an XTREME-R grid), a shifted
  target, or one the benchmark reports apart (LAReQA).
A group column and the benchmark score carry the marks of their targets, and † when targets of theirs are not
in the grid. The parquet and CSV tables stay numeric: the marks are in the Markdown, LaTeX and HTML
renderings (column labels and notes under the tables) and in `tables/marks.*`, one row per mark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from xstilts.benchmarks import XTREME as XTREME_BENCHMARK
from xstilts.benchmarks import Benchmark, target_languages
from xstilts.catalogue import TARGETS

PARTIAL = "†"
NOT_COMPARABLE = "‡"
NOT_SCORED = "§"
AVERAGE = "avg"  # the per-language tables' mean column
MARK_COLUMNS = ["target", "language", "mark", "note"]


def _facts(value: Any) -> dict[str, Any]:
    try:
        return json.loads(value) if isinstance(value, str) and value else {}
    except json.JSONDecodeError:
        return {}


def _ordered(target: str, languages: Iterable[str]) -> tuple[str, ...]:
    order = {lang: i for i, lang in enumerate(TARGETS[target].languages)}
    return tuple(sorted(set(languages), key=lambda lang: (order.get(lang, len(order)), lang)))


@dataclass(frozen=True)
class Marks:
    """The marks of one grid's scores (see the module docstring)."""

    targets: tuple[str, ...]
    left_out: dict[str, tuple[str, ...]]  # target -> benchmark languages a cell of it was not evaluated on
    not_comparable: dict[str, dict[str, str]]  # target -> language -> why its data are not the benchmark's
    benchmark: Benchmark = XTREME_BENCHMARK

    def _members(self, column: str) -> tuple[str, ...]:
        return self.benchmark.scored if column == self.benchmark.name else self.benchmark.groups.get(column, ())

    def _parts(self, column: str) -> list[str]:
        return [t for t in self.targets if t in self._members(column)]

    def _missing_targets(self, column: str) -> list[str]:
        return [t for t in self._members(column) if t not in self.targets]

    def of(self, column: str) -> str:
        """The marks of a transfer-table column: a target's own; a group's and the benchmark score's, those of
        their targets (and † for targets not in the grid)."""
        if column in TARGETS:
            return (PARTIAL if self.left_out.get(column) else "") + (
                NOT_COMPARABLE if self.not_comparable.get(column) else "") + (
                NOT_SCORED if column not in self.benchmark.scored else "")
        if not self._members(column):
            return ""
        parts = [self.of(t) for t in self._parts(column)]
        partial = any(PARTIAL in p for p in parts) or bool(self._missing_targets(column))
        return (PARTIAL if partial else "") + (NOT_COMPARABLE if any(NOT_COMPARABLE in p for p in parts) else "")

    def label(self, column: Any) -> Any:
        return f"{column}{self.of(column)}" if isinstance(column, str) else column

    def relabel(self, df: pd.DataFrame, axis: str = "columns") -> pd.DataFrame:
        """`df` with its column (or index) labels marked, for rendering."""
        return df.rename(**{axis: self.label})

    def relabel_languages(self, target: str, df: pd.DataFrame) -> pd.DataFrame:
        """A per-language table of `target` with its not-comparable language columns and "avg" marked."""
        bad = self.not_comparable.get(target, {})
        return df.rename(columns=lambda c: f"{c}{self.of(target)}" if c == AVERAGE
                         else f"{c}{NOT_COMPARABLE}" if c in bad else c)

    def notes(self, columns: Sequence[Any]) -> list[str]:
        """One line per marked column among `columns`, saying what its marks mean."""
        lines = []
        for column in (c for c in columns if isinstance(c, str) and self.of(c)):
            if column in TARGETS:
                lines += self._target_notes(column)
                continue
            missing = self._missing_targets(column)
            marked = [f"{t}{self.of(t)}" for t in self._parts(column) if self.of(t)]
            text = [f"over {len(self._parts(column))} of {len(self._parts(column)) + len(missing)} targets "
                    f"(missing: {' '.join(missing)})"] if missing else []
            text += [f"averages marked targets ({' '.join(marked)})"] if marked else []
            lines.append(f"{column}{self.of(column)}: {'; '.join(text)}.")
        return lines

    def _target_notes(self, target: str) -> list[str]:
        lines = []
        name = self.benchmark.name.upper()
        if left := self.left_out.get(target):
            n = len(target_languages(target, self.benchmark))
            lines.append(f"{target}{PARTIAL}: partial language set, {n - len(left)} of {name}'s {n} languages "
                         f"(left out: {' '.join(left)}).")
        if bad := self.not_comparable.get(target):
            by_reason: dict[str, list[str]] = {}
            for lang, why in bad.items():
                by_reason.setdefault(why, []).append(lang)
            reasons = "; ".join(f"{' '.join(langs)}: {why}" for why, langs in by_reason.items())
            key = TARGETS[target].local_path_key
            lines.append(f"{target}{NOT_COMPARABLE}: not comparable with {name}'s numbers ({reasons}); "
                         f"`sources.{key}` reads the data {name} used.")
        if target in self.benchmark.apart:
            lines.append(f"{target}{NOT_SCORED}: reported apart from the {name} score, as {name} reports it.")
        elif target not in self.benchmark.targets:
            lines.append(f"{target}{NOT_SCORED}: not in {name}: not part of its score or groups.")
        return lines

    def summary(self, columns: Iterable[str]) -> str:
        """The marked columns among `columns`, e.g. "bucc†‡ tatoeba†" (the claims table's `marks`)."""
        return " ".join(f"{c}{self.of(c)}" for c in columns if self.of(c))

    def table(self) -> pd.DataFrame:
        """One row per mark: target (or group/xtreme), language ("" for the whole column), mark, note."""
        rows = [(t, "", PARTIAL, self._target_notes(t)[0]) for t in self.targets if self.left_out.get(t)]
        rows += [(t, lang, NOT_COMPARABLE, why) for t in self.targets
                 for lang, why in self.not_comparable.get(t, {}).items()]
        rows += [(t, "", NOT_SCORED, self._target_notes(t)[-1]) for t in self.targets
                 if t not in self.benchmark.scored]
        columns = [c for c in (*self.benchmark.groups, self.benchmark.name) if self._parts(c)]
        rows += [(c, "", self.of(c), self.notes([c])[0]) for c in columns if self.of(c)]
        return pd.DataFrame(rows, columns=MARK_COLUMNS)


def marks(scores: pd.DataFrame, targets: Sequence[str], bench: Benchmark = XTREME_BENCHMARK) -> Marks:
    """The marks of `scores` (one row per cell, language, split, metric; `run_facts` optional) for the
    grid's `targets` and benchmark: the languages each cell has on its target's report split, and the
    not-comparable languages its run facts record for them."""
    left_out: dict[str, tuple[str, ...]] = {}
    bad: dict[str, dict[str, str]] = {}
    for target in targets:
        rows = scores[(scores["target"] == target) & (scores["split"] == TARGETS[target].report_split)]
        missing: set[str] = set()
        reasons: dict[str, str] = {}
        for _, cell in rows.groupby(["intermediate", "seed"], observed=True):
            evaluated = set(cell["language"].astype(str))
            missing |= set(target_languages(target, bench)) - evaluated
            facts = _facts(cell["run_facts"].iloc[0]) if "run_facts" in cell else {}
            recorded = facts.get("data", {}).get(f"eval/{target}", {}).get("not_comparable", {})
            reasons |= {lang: why for lang, why in recorded.items() if lang in evaluated}
        if missing:
            left_out[target] = _ordered(target, missing)
        if reasons:
            bad[target] = {lang: reasons[lang] for lang in _ordered(target, reasons)}
    return Marks(tuple(targets), left_out, bad, bench)


# --------------------------------------------------------------------------------------------------
# Provenance: the data each score and checkpoint came from

DATA_COLUMNS = ["data", "source", "name", "revision or sha256", "files", "used by"]
NOT_RECORDED = "not recorded"


def _origin(origin: dict[str, Any]) -> tuple[str, str, str, int | None]:
    if "hub" in origin:
        return "hub", origin["hub"], origin.get("revision") or "unknown", None
    return "folder", origin.get("folder", ""), origin.get("sha256", ""), int(origin.get("files", 0))


def _checkpoint_row(path: str) -> str:
    """The grid row of a checkpoint path (…/checkpoints/intermediate/ROW/seed=S or …/target/ROW/SET/seed=S)."""
    parts = path.replace("\\", "/").split("/")
    kinds = [i for i, p in enumerate(parts) if p in ("intermediate", "target")]
    return parts[kinds[-1] + 1] if kinds and kinds[-1] + 1 < len(parts) else path


def data_table(scores: pd.DataFrame, manifests: pd.DataFrame | None = None) -> pd.DataFrame:
    """Where the data of every cell (scores.parquet) and every checkpoint (manifest) came from: one row per
    prepared cache and origin (a hub repo at a commit, or a folder with the sha256 of the files read), with
    the grid rows that used it. Two rows for one cache mean its cells read different data."""
    users: dict[tuple[str, str, str, str, int | None], set[str]] = {}

    def add(facts: dict[str, Any], fallback: str, user: str) -> None:
        if "data" not in facts:  # written before provenance was recorded
            users.setdefault((fallback, NOT_RECORDED, "", "", None), set()).add(user)
            return
        for cache, entry in facts["data"].items():  # {} for the untrained control: it reads no data
            for origin in entry.get("origins", []) or [{}]:
                key = (cache, *_origin(origin)) if origin else (cache, NOT_RECORDED, "", "", None)
                users.setdefault(key, set()).add(user)

    if len(scores) and "run_facts" in scores:
        cells = scores.drop_duplicates(["intermediate", "target", "seed"])
        for row in cells.itertuples(index=False):
            add(_facts(row.run_facts), f"eval/{row.target}", str(row.intermediate))
    if manifests is not None and len(manifests):
        for row in manifests.itertuples(index=False):
            if row.phase in ("intermediate", "target"):
                add(_facts(row.run_facts), f"train/{row.task}", _checkpoint_row(str(row.path)))
    records = [(*key, " ".join(sorted(who))) for key, who in sorted(users.items(), key=lambda kv: kv[0][:4])]
    table = pd.DataFrame(records, columns=DATA_COLUMNS)
    table["files"] = pd.Series([r[4] for r in records], index=table.index, dtype=object)  # None for hub repos
    return table
