"""The task catalogue: every intermediate and target task, its hub source, family and metric.

Two kinds of entry:
- a *dataset* (`Dataset`): English data with a train and a dev split, used for training. The nine
  intermediate tasks are datasets, and so are the English training sets of the targets (XNLI trains
  on `mnli`, XQuAD and MLQA on `squad`).
- a *target* (`Target`): an XTREME task evaluated zero-shot on many languages, naming the dataset it
  trains on (none for the retrieval tasks).

Hub ids, configs, splits and column types were checked against the dataset cards (datasets >= 4 loads
only parquet): `facebook/anli` plain_text (label: ClassLabel entailment/neutral/contradiction),
`tau/commonsense_qa`, `allenai/cosmos_qa` (main holds a loading script: its parquet export, config
"default"), `Rowan/hellaswag` (label a string), `nyu-mll/glue`, `rajpurkar/squad{,_v2}`, and
`google/xtreme`'s parquet configs (XNLI's `gold_label` and PAWS-X's `label` are strings; udpos Kazakh lacks a
validation split, Tagalog, Thai and Yoruba have only test). Every hub load reads the commit named in
HUB_REVISIONS (config `sources.revisions` overrides it per repo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from xstilts.languages import NAMES, TATOEBA_CODES, TYDIQA_PREFIXES, UDPOS_NAMES

# The task families (`xstilts.families`): how a task's tables are tokenised, batched, predicted and scored.
Family = Literal["classification", "pair_classification", "multiple_choice", "tagging", "qa", "retrieval"]
QAScorer = Literal["squad", "squad_v2", "mlqa"]  # the official QA script a task's answers are scored with
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

# The commit every hub load reads, per dataset repo: full shas of commits that hold the parquet data, found
# on the hub's own pages (dataset tree / commit pages). None: no full sha found from a reliable page, so
# that repo is read at its main branch until one is named here or in config `sources.revisions`.
HUB_REVISIONS: dict[str, str | None] = {
    "facebook/anli": "b83b1452ab817eac4dcb36625e7c1fa95025093d",  # main after "Convert dataset to Parquet" (#5)
    # tau/commonsense_qa: no commit page found; its main holds parquet data.
    "tau/commonsense_qa": None,
    # Cosmos QA's main holds only a loading script: this is its parquet export (refs/convert/parquet).
    "allenai/cosmos_qa": "ed50fe83db62b355759053b1cd5eef344ee371e0",
    "Rowan/hellaswag": "049e80830aedaee63cd025622acf83822eb46553",  # "Delete loading script": data/*.parquet
    "nyu-mll/glue": "a3f3ab759b9d7018046ce361f115ef38276d2e1e",  # "Convert dataset to Parquet (#16)"
    "rajpurkar/squad_v2": "dccd52e142ef4ad27083cc78299b15ebccb8fd13",  # end of "Convert dataset to Parquet" (#6)
    # the revision `datasets` resolved rajpurkar/squad to (hf://datasets/rajpurkar/squad@.../plain_text/*.parquet)
    "rajpurkar/squad": "7b6d24c440a36b6815f21b70d25016731768db1f",
    # google/xtreme: the newest full sha found (68bd9e0, "Add udpos.Yoruba data files") still holds the loading
    # script that datasets >= 4 refuses; its deletion (21f88c0) is known by its short sha only.
    "google/xtreme": None,
}


@dataclass(frozen=True)
class HubSplit:
    """One split of one config of a Hugging Face dataset repo, at the commit HUB_REVISIONS names."""

    path: str
    config: str | None
    split: str
    revision: str | None = None

    @classmethod
    def pinned(cls, path: str, config: str | None, split: str) -> HubSplit:
        return cls(path, config, split, HUB_REVISIONS.get(path))


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
    local_path_key: str | None = None  # config key `sources.<key>` naming a local copy
    on_hub: bool = True  # False: only a local copy exists (CCGbank)
    # The TyDiQA hub config mixes languages: keep the rows whose id starts with this prefix and "-".
    id_prefix: str | None = None
    seqeval: Seqeval = "1.2.2"  # a tagging F1's reading of tags (model selection on the dev set)
    qa_scorer: QAScorer = "squad"


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
    qa_scorer: QAScorer = "squad"
    search: Literal["nearest", "mining"] | None = None  # retrieval: each sentence's translation, or bitext mining
    # A hub config that mixes languages (TyDiQA): each language's rows are those whose id starts with its prefix.
    id_prefixes: dict[str, str] = field(default_factory=dict)
    # Why the hub copy's numbers are not XTREME's, per language ("*": every language): what the local copy
    # (`sources.<local_path_key>`) avoids.
    hub_caveats: dict[str, str] = field(default_factory=dict)
    # How its first split pairs each language's sentences with English ones (the alignment probes): `pairs`,
    # rows holding both (Tatoeba, BUCC's gold pairs); `rows`, the same row number (XNLI's files list every
    # language in pairID order); `ids`, the same example id (XQuAD's and MLQA's questions). None: not parallel.
    parallel: Literal["pairs", "rows", "ids"] | None = None

    def source(self, language: str, split: str) -> HubSplit:
        """The hub split holding this target's data for one language."""
        return HubSplit.pinned("google/xtreme", self.configs[language], split)

    def hub_caveat(self, language: str) -> str | None:
        """Why this language's data read from the hub differ from XTREME's (None: they do not)."""
        return self.hub_caveats.get(language, self.hub_caveats.get("*"))

    def splits_for(self, language: str) -> tuple[str, ...]:
        """The splits evaluated for one language: those of `splits` that its hub config has."""
        return tuple(s for s in self.splits if s not in self.missing.get(language, ()))

    @property
    def report_split(self) -> str:
        return self.splits[-1]


def _glue(config: str, dev: str = "validation") -> tuple[tuple[HubSplit, ...], tuple[HubSplit, ...]]:
    return _one("nyu-mll/glue", config, dev=dev)


def _one(path: str, config: str | None, train: str = "train", dev: str = "validation"):
    return (HubSplit.pinned(path, config, train),), (HubSplit.pinned(path, config, dev),)


def _datasets() -> dict[str, Dataset]:
    anli_train = tuple(HubSplit.pinned("facebook/anli", "plain_text", f"train_r{r}") for r in (1, 2, 3))
    anli_dev = tuple(HubSplit.pinned("facebook/anli", "plain_text", f"dev_r{r}") for r in (1, 2, 3))
    entries = [
        Dataset("anli", "pair_classification", "accuracy", "anli", anli_train, anli_dev, NLI_LABELS),
        # CCGbank is LDC-licensed: only a local copy (train.parquet, dev.parquet: tokens, tags).
        Dataset("ccg", "tagging", "token_accuracy", "ccg", *_one("ccgbank", None, dev="dev"),
                local_path_key="ccg", on_hub=False),
        Dataset("commonsenseqa", "multiple_choice", "accuracy", "commonsenseqa",
                *_one("tau/commonsense_qa", None)),
        Dataset("cosmosqa", "multiple_choice", "accuracy", "cosmosqa",
                *_one("allenai/cosmos_qa", None), local_path_key="cosmosqa"),
        Dataset("hellaswag", "multiple_choice", "accuracy", "hellaswag",
                *_one("Rowan/hellaswag", None)),
        Dataset("mnli", "pair_classification", "accuracy", "glue_pair",
                *_glue("mnli", "validation_matched"), NLI_LABELS),
        Dataset("qqp", "pair_classification", "accuracy", "glue_qqp", *_glue("qqp"),
                ("not_duplicate", "duplicate")),
        Dataset("squad_v2", "qa", "f1", "squad", *_one("rajpurkar/squad_v2", None), qa_scorer="squad_v2"),
        Dataset("sst2", "classification", "accuracy", "glue_single", *_glue("sst2"),
                ("negative", "positive")),
        # English training sets of the targets that are not intermediate tasks themselves.
        Dataset("pawsx", "pair_classification", "accuracy", "pawsx", *_one("google/xtreme", "PAWS-X.en"),
                ("0", "1")),
        Dataset("udpos", "tagging", "f1", "udpos", *_one("google/xtreme", "udpos.English"), UPOS_TAGS,
                seqeval="0.0.12", local_path_key="udpos"),
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
# What the hub's udpos configs mix in: they take every UD v2.5 treebank whose path holds "_<Language>"
# (its loading script, `if f"_{lang}" in path`), XTREME the files whose name starts with "<iso>_". Checked
# for all 33 languages against the hub's row counts (README dataset_info) and each treebank's stats.xml at
# tag r2.5; the other 28 configs hold only their own language's treebanks (HIENCS, matched by Hindi and
# English, has no word forms and adds no row; Turkish-German SAGT joined UD in v2.7).
UDPOS_HUB_OTHER_TREEBANKS: dict[str, str] = {
    "el": "Ancient Greek (grc_perseus, grc_proiel): 26,490 of 28,152 train, 2,156 of 2,559 dev and 2,353 of 2,809 "
          "test sentences",
    "ru": "Old Russian (orv_rnc, orv_torot): 13,336 of 67,435 train, 1,852 of 9,960 dev and 2,360 of 11,336 test "
          "sentences",
    "zh": "Classical Chinese (lzh_kyoto): 11,004 of 18,998 train, 2,038 of 3,038 dev and 2,073 of 5,528 test "
          "sentences",
    "fr": "Old French (fro_srcmf): 13,909 of 47,308 train, 1,842 of 5,979 dev and 1,927 of 9,465 test sentences",
    "de": "Swiss German (gsw_uzh): 100 of 22,458 test sentences",
}
BUCC_HUB_CAVEAT = ("the hub copy holds the gold pairs only (no sentence without a translation), so mining is "
                   "easier and F1 higher than on the BUCC 2018 files")

_TATOEBA = ("ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw "
            "zh kk tr et fi hu")


def _target(name, family, metric, group, schema, langs: str, trainset, splits, config, **kw) -> Target:
    languages = tuple(langs.split())
    return Target(name, family, metric, group, schema, languages, trainset, splits,
                  configs={lang: config(lang) for lang in languages}, **kw)  # fmt: skip


def _targets() -> dict[str, Target]:
    entries = [
        _target("xnli", "pair_classification", "accuracy", "classification", "xnli", _XNLI, "mnli",
                ("validation", "test"), lambda _: "XNLI", labels=NLI_LABELS, parallel="rows"),
        _target("pawsx", "pair_classification", "accuracy", "classification", "pawsx", _PAWSX, "pawsx",
                ("validation", "test"), lambda lang: f"PAWS-X.{lang}", labels=("0", "1")),
        _target("udpos", "tagging", "f1", "tagging", "udpos", _UDPOS, "udpos", ("validation", "test"),
                lambda lang: f"udpos.{UDPOS_NAMES[lang]}", labels=UPOS_TAGS, seqeval="0.0.12", local_path_key="udpos",
                missing={lang: ("validation",) for lang in ("kk", "th", "tl", "yo")},
                hub_caveats={lang: f"the hub's udpos.{NAMES[lang]} mixes in {what}"
                             for lang, what in UDPOS_HUB_OTHER_TREEBANKS.items()}),
        _target("panx", "tagging", "f1", "tagging", "panx", _PANX, "panx", ("validation", "test"),
                lambda lang: f"PAN-X.{lang}", labels=NER_TAGS),
        _target("xquad", "qa", "f1_em", "qa", "squad", _XQUAD, "squad", ("validation",),
                lambda lang: f"XQuAD.{lang}", parallel="ids"),
        _target("mlqa", "qa", "f1_em", "qa", "squad", _MLQA, "squad", ("validation", "test"),
                lambda lang: f"MLQA.{lang}.{lang}", qa_scorer="mlqa", parallel="ids"),
        _target("tydiqa", "qa", "f1_em", "qa", "squad", _TYDIQA, "tydiqa", ("validation",),
                lambda _: "tydiqa", id_prefixes={lang: TYDIQA_PREFIXES[lang] for lang in _TYDIQA.split()}),
        _target("bucc", "retrieval", "f1", "retrieval", "bitext", _BUCC, None, ("validation", "test"),
                lambda lang: f"bucc18.{lang}", local_path_key="bucc", hub_caveats={"*": BUCC_HUB_CAVEAT},
                search="mining", parallel="pairs"),
        _target("tatoeba", "retrieval", "accuracy", "retrieval", "bitext", _TATOEBA, None,
                ("validation",), lambda lang: f"tatoeba.{TATOEBA_CODES[lang]}", search="nearest", parallel="pairs"),
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
