"""The benchmarks a grid is scored on, XTREME and XTREME-R, as google-research/xtreme's `evaluate.py` scores them.

Read from `evaluate.py` at commit 838c13b69daafb9328785d16caae2711e4012123 (`XTREME_TASK2LANGS`,
`XTREME_GROUP2TASK`, `XTREME_R_TASK2LANGS`, `XTREME_R_GROUP2TASK`; its `bucc2018` is the catalogue's `bucc`):
each benchmark's tasks with their languages (in evaluate.py's order), its groups and its score. A task's score
(`avg_metric`) is the mean over its languages of its metric: (F1 + EM) / 2 for QA, else F1, accuracy or mAP@20
(the catalogue's `Target.metric`). A group's score is the mean over its tasks, and exists only when every one of
them has a score; so does the benchmark score (`all_task`), the mean over all its tasks.

Surprising upstream behaviour: XTREME-R lists `lareqa` with no languages (evaluate.py line 171), so LAReQA never
gets an `avg_metric`; with LAReQA predictions present `all_task` fails (KeyError at line 312), without them there
is no `all_task` at all. So the XTREME-R score here is this project's definition, not evaluate.py's: the mean over
the other nine tasks, LAReQA shown beside it (`Benchmark.apart`); the groups are evaluate.py's. XCOPA is in two
groups (`classification`, `multi_choice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xstilts.catalogue import TARGETS

DEFAULT = "xtreme"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its targets' languages, its groups, and the targets it reports apart from its score."""

    name: str
    languages: dict[str, tuple[str, ...]]  # target -> the benchmark's languages, in evaluate.py's order
    groups: dict[str, tuple[str, ...]]  # group -> its targets
    apart: tuple[str, ...] = field(default=())  # targets scored but left out of the benchmark score

    @property
    def targets(self) -> tuple[str, ...]:
        """The benchmark's targets, in catalogue order."""
        return tuple(t for t in TARGETS if t in self.languages)

    @property
    def scored(self) -> tuple[str, ...]:
        """The targets its score averages."""
        return tuple(t for t in self.targets if t not in self.apart)

    def columns(self, targets: Sequence[str]) -> dict[str, list[str]]:
        """The summary columns a grid of `targets` has and the targets each averages: every group with one of
        them, and the benchmark score (under its name) over its scored ones; a column of only some of its
        targets is partial (the tables mark it)."""
        out = {group: [t for t in members if t in targets] for group, members in self.groups.items()}
        out[self.name] = [t for t in targets if t in self.scored]
        return {column: members for column, members in out.items() if members}

    def scores(self, task_scores: Mapping[str, float]) -> dict[str, float]:
        """evaluate.py's overall scores from the tasks' scores (`avg_metric`, missing or NaN: not available):
        the columns (`columns`) whose tasks all have one, each the mean of its tasks."""
        available = {t: v for t, v in task_scores.items() if v == v}  # NaN != NaN
        return {column: sum(available[t] for t in members) / len(members)
                for column, members in self.columns(self.targets).items() if all(t in available for t in members)}


def _langs(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


_XNLI = _langs("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh")
_PANX = _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,"
               "my,zh,kk,tr,et,fi,hu")
_UDPOS = _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh")
_TATOEBA = _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,"
                  "tr,et,fi,hu")
_XQUAD = _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi")
_MLQA = _langs("en,es,de,ar,hi,vi,zh")
_TYDIQA = _langs("en,ar,bn,fi,id,ko,ru,sw,te")

XTREME = Benchmark(
    "xtreme",
    languages={"pawsx": _langs("de,en,es,fr,ja,ko,zh"), "xnli": _XNLI, "panx": _PANX, "udpos": _UDPOS,
               "bucc": _langs("de,fr,ru,zh"), "tatoeba": _TATOEBA, "xquad": _XQUAD, "mlqa": _MLQA, "tydiqa": _TYDIQA},
    groups={"classification": ("pawsx", "xnli"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
            "retrieval": ("bucc", "tatoeba")},
)
# Compared to XTREME (evaluate.py's comment): no PAWS-X and BUCC; XCOPA, LAReQA and Mewsli-X added; more
# languages for UD-POS, PAN-X (WikiANN), Tatoeba and XQuAD.
XTREME_R = Benchmark(
    "xtreme-r",
    languages={"xnli": _XNLI, "panx": _PANX + _langs("qu,pl,uk,az,lt,pa,gu,ro"),
               "udpos": _UDPOS + _langs("lt,pl,uk,wo,ro"), "tatoeba": _TATOEBA + _langs("az,lt,pl,uk,ro"),
               "xcopa": _langs("et,ht,id,it,qu,sw,ta,th,tr,vi,zh"), "lareqa": (),
               "mewslix": _langs("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk"), "xquad": (*_XQUAD, "ro"), "mlqa": _MLQA,
               "tydiqa": _TYDIQA},
    groups={"classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
            "retrieval": ("tatoeba", "mewslix"), "multi_choice": ("xcopa",)},
    apart=("lareqa",),
)
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (XTREME, XTREME_R)}


def benchmark(name: str | None) -> Benchmark:
    """A benchmark by name (None: XTREME, the default)."""
    return BENCHMARKS[name or DEFAULT]


def target_languages(target: str, bench: Benchmark) -> tuple[str, ...]:
    """The languages a target is evaluated on by default: the benchmark's list, else all of the catalogue's
    (LAReQA: the XQuAD-R languages, evaluate.py lists none; targets of another benchmark or of none)."""
    return bench.languages.get(target) or TARGETS[target].languages


def configured_targets(config: Mapping[str, Any]) -> list[str]:
    """A config's targets (`targets`, else its benchmark's), before what a missing local source leaves out
    (`Grid.targets`)."""
    return list(config.get("targets") or benchmark(config.get("benchmark")).targets)


def configured_languages(config: Mapping[str, Any], target: str) -> list[str]:
    """A config's languages of a target (`languages`, else its benchmark's), before what a missing local source
    leaves out (`Grid.languages`)."""
    configured = (config.get("languages") or {}).get(target)
    return list(configured or target_languages(target, benchmark(config.get("benchmark"))))
