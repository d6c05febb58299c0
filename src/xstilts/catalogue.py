"""The task catalogue: every intermediate and target task, its hub source, family and metric.

Two kinds of entry:
- a *dataset* (`Dataset`): English data with a train and a dev split, used for training. The nine
  intermediate tasks are datasets, and so are the English training sets of the targets (XNLI trains
  on `mnli`, XQuAD and MLQA on `squad`).
- a *target* (`Target`): an XTREME task evaluated zero-shot on many languages, naming the dataset it
  trains on (none for the retrieval tasks).

Hub ids, configs, splits and column types were checked against the dataset cards (datasets >= 4 loads
only parquet): `facebook/anli` plain_text (label: ClassLabel entailment/neutral/contradiction),
`tau/commonsense_qa`, `allenai/cosmos_qa` (main holds a loading script: its parquet export
`refs/convert/parquet`, config "default"), `Rowan/hellaswag` (label a string), `nyu-mll/glue`,
`rajpurkar/squad{,_v2}`, and `google/xtreme`'s parquet configs (XNLI's `gold_label` and PAWS-X's `label`
are strings; udpos Kazakh lacks a validation split, Tagalog, Thai and Yoruba have only test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from xstilts.languages import TATOEBA_CODES, TYDIQA_PREFIXES, UDPOS_NAMES

Family = Literal["classification", "multiple_choice", "tagging", "qa", "retrieval"]
# The seqeval version whose reading of tags a tagging F1 follows (`metrics.TAG_F1`): XTREME's UD-POS
# numbers came from 0.0.12, which reads tags without a BIO prefix unlike 1.x; BIO tags read alike.
Seqeval = Literal["1.2.2", "0.0.12"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

NLI_LABELS = ("entailment", "neutral", "contradiction")
UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@dataclass(frozen=True)
class HubSplit:
    """One split of one config of a Hugging Face dataset repo."""

    path: str
    config: str | None
    split: str
    revision: str | None = None


@dataclass(frozen=True)
class Dataset:
    """English training data: the hub splits behind `train` and `dev`, and how to read them."""

    name: str
    family: Family
    metric: str
    schema: str  # the hub schema, i.e. which normaliser in `xstilts.data` reads it
    train: tuple[HubSplit, ...] = ()
    dev: tuple[HubSplit, ...] = ()
    labels: tuple[str, ...] = ()  # empty: the tags of the data itself (CCG supertags)
    num_choices: int = 0
    local_path_key: str | None = None  # config key `sources.<key>` naming a local copy
    on_hub: bool = True  # False: only a local copy exists (CCGbank)
    # The TyDiQA hub config mixes languages: keep the rows whose id starts with this prefix and "-".
    id_prefix: str | None = None
    seqeval: Seqeval = "1.2.2"  # a tagging F1's reading of tags (model selection on the dev set)


@dataclass(frozen=True)
class Target:
    """An XTREME target task: evaluated on every language, trained (if at all) on English data."""

    name: str
    family: Family
    metric: str
    group: Literal["classification", "tagging", "qa", "retrieval"]
    schema: str
    languages: tuple[str, ...]
    trainset: str | None  # a `Dataset` name; None for retrieval tasks
    splits: tuple[str, ...]  # the hub splits evaluated, in order; the last one is reported
    labels: tuple[str, ...] = ()
    local_path_key: str | None = None  # config key `sources.<key>` naming an optional local copy
    configs: dict[str, str] = field(default_factory=dict)  # language -> hub config
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # language -> splits not on the hub
    seqeval: Seqeval = "1.2.2"  # a tagging F1's reading of tags

    def source(self, language: str, split: str) -> HubSplit:
        """The hub split holding this target's data for one language."""
        return HubSplit("google/xtreme", self.configs[language], split)

    def splits_for(self, language: str) -> tuple[str, ...]:
        """The splits evaluated for one language: those of `splits` that its hub config has."""
        return tuple(s for s in self.splits if s not in self.missing.get(language, ()))

    @property
    def report_split(self) -> str:
        return self.splits[-1]


def _glue(config: str, dev: str = "validation") -> tuple[tuple[HubSplit, ...], tuple[HubSplit, ...]]:
    return (HubSplit("nyu-mll/glue", config, "train"),), (HubSplit("nyu-mll/glue", config, dev),)


def _one(path: str, config: str | None, train: str = "train", dev: str = "validation", revision=None):
    return (HubSplit(path, config, train, revision),), (HubSplit(path, config, dev, revision),)


def _datasets() -> dict[str, Dataset]:
    anli_train = tuple(HubSplit("facebook/anli", "plain_text", f"train_r{r}") for r in (1, 2, 3))
    anli_dev = tuple(HubSplit("facebook/anli", "plain_text", f"dev_r{r}") for r in (1, 2, 3))
    entries = [
        Dataset("anli", "classification", "accuracy", "anli", anli_train, anli_dev, NLI_LABELS),
        # CCGbank is LDC-licensed: only a local copy (train.parquet, dev.parquet: tokens, tags).
        Dataset("ccg", "tagging", "token_accuracy", "ccg", *_one("ccgbank", None, dev="dev"),
                local_path_key="ccg", on_hub=False),
        Dataset("commonsenseqa", "multiple_choice", "accuracy", "commonsenseqa",
                *_one("tau/commonsense_qa", None), num_choices=5),
        Dataset("cosmosqa", "multiple_choice", "accuracy", "cosmosqa",
                *_one("allenai/cosmos_qa", None, revision="refs/convert/parquet"), num_choices=4,
                local_path_key="cosmosqa"),
        Dataset("hellaswag", "multiple_choice", "accuracy", "hellaswag",
                *_one("Rowan/hellaswag", None), num_choices=4),
        Dataset("mnli", "classification", "accuracy", "glue_pair",
                *_glue("mnli", "validation_matched"), NLI_LABELS),
        Dataset("qqp", "classification", "accuracy", "glue_qqp", *_glue("qqp"),
                ("not_duplicate", "duplicate")),
        Dataset("squad_v2", "qa", "f1", "squad", *_one("rajpurkar/squad_v2", None)),
        Dataset("sst2", "classification", "accuracy", "glue_single", *_glue("sst2"),
                ("negative", "positive")),
        # English training sets of the targets that are not intermediate tasks themselves.
        Dataset("pawsx", "classification", "accuracy", "pawsx", *_one("google/xtreme", "PAWS-X.en"),
                ("0", "1")),
        Dataset("udpos", "tagging", "f1", "udpos", *_one("google/xtreme", "udpos.English"), UPOS_TAGS,
                seqeval="0.0.12"),
        Dataset("panx", "tagging", "f1", "panx", *_one("google/xtreme", "PAN-X.en"), NER_TAGS),
        Dataset("squad", "qa", "f1", "squad", *_one("rajpurkar/squad", None)),
        Dataset("tydiqa", "qa", "f1", "squad", *_one("google/xtreme", "tydiqa"),
                id_prefix=TYDIQA_PREFIXES["en"]),
    ]  # fmt: skip
    return {d.name: d for d in entries}


_XNLI = "ar bg de el en es fr hi ru sw th tr ur vi zh"
_PAWSX = "de en es fr ja ko zh"
_UDPOS = ("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi "
          "yo zh")
_PANX = ("ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th "
         "sw yo my zh kk tr et fi hu")
_XQUAD = "en es de el ru tr ar vi th zh hi"
_MLQA = "en es de ar hi vi zh"
_TYDIQA = "en ar bn fi id ko ru sw te"
_BUCC = "de fr ru zh"
_TATOEBA = ("ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw "
            "zh kk tr et fi hu")


def _target(name, family, metric, group, schema, langs: str, trainset, splits, config, **kw) -> Target:
    languages = tuple(langs.split())
    return Target(name, family, metric, group, schema, languages, trainset, splits,
                  configs={lang: config(lang) for lang in languages}, **kw)  # fmt: skip


def _targets() -> dict[str, Target]:
    entries = [
        _target("xnli", "classification", "accuracy", "classification", "xnli", _XNLI, "mnli",
                ("validation", "test"), lambda _: "XNLI", labels=NLI_LABELS),
        _target("pawsx", "classification", "accuracy", "classification", "pawsx", _PAWSX, "pawsx",
                ("validation", "test"), lambda lang: f"PAWS-X.{lang}", labels=("0", "1")),
        _target("udpos", "tagging", "f1", "tagging", "udpos", _UDPOS, "udpos", ("validation", "test"),
                lambda lang: f"udpos.{UDPOS_NAMES[lang]}", labels=UPOS_TAGS, seqeval="0.0.12",
                missing={lang: ("validation",) for lang in ("kk", "th", "tl", "yo")}),
        _target("panx", "tagging", "f1", "tagging", "panx", _PANX, "panx", ("validation", "test"),
                lambda lang: f"PAN-X.{lang}", labels=NER_TAGS),
        _target("xquad", "qa", "f1_em", "qa", "squad", _XQUAD, "squad", ("validation",),
                lambda lang: f"XQuAD.{lang}"),
        _target("mlqa", "qa", "f1_em", "qa", "squad", _MLQA, "squad", ("validation", "test"),
                lambda lang: f"MLQA.{lang}.{lang}"),
        _target("tydiqa", "qa", "f1_em", "qa", "squad", _TYDIQA, "tydiqa", ("validation",),
                lambda _: "tydiqa"),
        _target("bucc", "retrieval", "f1", "retrieval", "bitext", _BUCC, None, ("validation", "test"),
                lambda lang: f"bucc18.{lang}", local_path_key="bucc"),
        _target("tatoeba", "retrieval", "accuracy", "retrieval", "bitext", _TATOEBA, None,
                ("validation",), lambda lang: f"tatoeba.{TATOEBA_CODES[lang]}"),
    ]  # fmt: skip
    return {t.name: t for t in entries}


DATASETS: dict[str, Dataset] = _datasets()
TARGETS: dict[str, Target] = _targets()
INTERMEDIATE_TASKS: tuple[str, ...] = (
    "anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "squad_v2", "sst2",
)  # fmt: skip
BASELINE_ROW = "none"
MULTITASK_ROW = "multitask"
# The untrained control (DESIGN section 7): `none` without phase (i), the base model's architecture and
# tokenizer with random weights; it reads zero-shot numbers against what pretraining gives.
UNTRAINED_ROW = "untrained"
CONTROL_ROWS: tuple[str, ...] = (BASELINE_ROW, UNTRAINED_ROW)  # never an intermediate task's result
GROUPS: tuple[str, ...] = ("classification", "tagging", "qa", "retrieval")


def target_trainsets(targets: list[str]) -> list[str]:
    """The distinct English training sets that the given targets need, in catalogue order."""
    needed = {TARGETS[t].trainset for t in targets}
    return [d for d in DATASETS if d in needed]


def targets_trained_on(trainset: str) -> list[str]:
    return [t.name for t in TARGETS.values() if t.trainset == trainset]
