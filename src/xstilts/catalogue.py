"""The task catalogue: every intermediate and target task, its hub source, family and metric.

Two kinds of entry:
- a *dataset* (`Dataset`): English data with a train and a dev split, used for training. The nine
  intermediate tasks are datasets, and so are the English training sets of the targets (XNLI trains
  on `mnli`, XQuAD and MLQA on `squad`). A dataset may continue another (`after`): XCOPA's phase (iii) is two
  stages, SIQA then COPA from the SIQA model, head included (XTREME-R's `scripts/train_xcopa.sh`).
- a *target* (`Target`): a task evaluated zero-shot on many languages, naming the dataset it trains on (none for
  the retrieval tasks). Which targets and languages a benchmark scores is `xstilts.benchmarks`' business; a
  target's `languages` are all those the catalogue can load. A *shifted* target (`Shift`) names the in-domain
  target it shifts from, for the shift tables.

Hub ids, configs, splits and column types were checked against the dataset cards (datasets >= 4 loads
only parquet or JSON): `facebook/anli` plain_text (label: ClassLabel entailment/neutral/contradiction),
`tau/commonsense_qa`, `allenai/cosmos_qa` (main holds a loading script: its parquet export, config
"default"), `Rowan/hellaswag` (label a string), `nyu-mll/glue`, `rajpurkar/squad{,_v2}`, and
`google/xtreme`'s parquet configs (XNLI's `gold_label` and PAWS-X's `label` are strings; udpos Kazakh lacks a
validation split, Tagalog, Thai and Yoruba have only test). XTREME-R and the shifted targets:
`allenai/social_i_qa` (context, question, answerA-C, label "1"-"3"; its parquet export), `aps/super_glue` copa
(premise, choice1, choice2, question "cause"/"effect", label 0/1; its parquet export), `cambridgeltl/xcopa` (the
same columns, configs by language, validation and test), `unimelb-nlp/wikiann` (PAN-X's schema, Rahimi's splits:
XTREME-R's eight new WikiANN languages), `mteb/tatoeba-bitext-mining` (configs `<iso3>-eng`, split test: XTREME-R's
five new Tatoeba languages), `google/xquad` (config `xquad.ro`), `google-research-datasets/xquad_r` (SQuAD's
columns without LAReQA's sentence breaks), `masakhane/masakhaner2` (configs by ISO 639-3 code; ner_tags with
B-DATE/I-DATE after XTREME's seven), `nala-cub/americas_nli` (premise, hypothesis, label as MNLI) and
`textdetox/multilingual_toxicity_dataset` (one split per language; text, toxic 0/1). Every hub load reads the
commit named in HUB_REVISIONS (config `sources.revisions` overrides it per repo).

XTREME-R's LAReQA and Mewsli-X train a dual encoder (on SQuAD, on Wikipedia mention-entity pairs); here both are
retrieval searches over the row's encoder, as BUCC and Tatoeba are (pooled sentence vectors, cosine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from xstilts.languages import (
    AMERICASNLI_CONFIGS,
    MASAKHANER_CONFIGS,
    NAMES,
    TATOEBA_CODES,
    TYDIQA_PREFIXES,
    UDPOS_NAMES,
)

# The task families (`xstilts.families`): how a task's tables are tokenised, batched, predicted and scored.
Family = Literal["classification", "pair_classification", "multiple_choice", "tagging", "qa", "retrieval"]
# A retrieval target's search: each sentence's translation (Tatoeba), bitext mining (BUCC), or the relevant
# candidates of each query ranked in one pool (LAReQA's answers in every language, Mewsli-X's entities).
Search = Literal["nearest", "mining", "pool"]
ShiftKind = Literal["domain", "resources"]
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
TOXICITY_LABELS = ("not_toxic", "toxic")
# The seeded parts of TextDetox's English split: train and dev (phase iii) and a held-out English test part.
PART_SEED = 13
PARTS: dict[str, tuple[float, float]] = {"train": (0.0, 0.8), "dev": (0.8, 0.9), "test": (0.9, 1.0)}

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
    # XTREME-R and the shifted targets
    "allenai/social_i_qa": "9eb9490eb61bd4ffb5eaedf2ae22e260d8c4019e",  # refs/convert/parquet (main: a script)
    "aps/super_glue": "a65f286b5d3456582315d72f6cf43870691c5748",  # refs/convert/parquet: copa/{split}/0000.parquet
    "cambridgeltl/xcopa": "042f78955ba48e6404616762fa6e05e839c3907a",  # "Convert dataset to Parquet (#3)"
    "google/xquad": "51adfef1c1287aab1d2d91b5bead9bcfb9c68583",  # "Convert dataset to Parquet (#3)": xquad.ro
    # mteb/tatoeba-bitext-mining: refs/convert/parquet holding aze-eng/test (main holds JSON lines).
    "mteb/tatoeba-bitext-mining": "f9c0d5e12491c333fb2f29b3ca7fb4e58ef20dc1",
    "nala-cub/americas_nli": "668b53909c205ece201487394833a36ebab47245",  # README with per-config parquet sizes
    # unimelb-nlp/wikiann, google-research-datasets/xquad_r (its conversion c6be781 is known by its short sha
    # only), masakhane/masakhaner2 (main holds a loading script; no parquet commit found) and
    # textdetox/multilingual_toxicity_dataset: no full sha found.
    "unimelb-nlp/wikiann": None,
    "google-research-datasets/xquad_r": None,
    "masakhane/masakhaner2": None,
    "textdetox/multilingual_toxicity_dataset": None,
}


@dataclass(frozen=True)
class HubSplit:
    """One split of one config of a Hugging Face dataset repo, at the commit HUB_REVISIONS names."""

    path: str
    config: str | None
    split: str
    revision: str | None = None
    part: str | None = None  # a seeded part of the split (`PARTS`), else all of it

    @classmethod
    def pinned(cls, path: str, config: str | None, split: str, part: str | None = None) -> HubSplit:
        return cls(path, config, split, HUB_REVISIONS.get(path), part)


@dataclass(frozen=True)
class Typical:
    """A task's approximate size, for `xstilts plan` before its data is prepared: examples per split (a target's:
    per language, averaged over its languages), XLM-R tokens per example (all of its sequences: a question's
    choices, both sides of a bitext pair; QA: its context windows), and sequences per example. Rounded figures
    from the dataset cards and XTREME's paper; the plan says when it used them."""

    train: int = 0
    validation: int = 0
    test: int = 0
    tokens: int = 0
    sequences: int = 1

    def examples(self, split: str) -> int:
        return {"train": self.train, "validation": self.validation, "dev": self.validation, "test": self.test}[split]


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
    typical: Typical = Typical()
    # The dataset whose phase-(iii) model this one continues, head included (COPA after SIQA): one job per
    # row and stage, the later stage's training starting from the earlier stage's checkpoint.
    after: str | None = None


@dataclass(frozen=True)
class Shift:
    """What a shifted target shifts from: the in-domain target (the row's score there is the reference), or its
    own `language` (TextDetox: its English part; the shifted score is then the mean over the other languages),
    and what shifts."""

    target: str
    kinds: tuple[ShiftKind, ...]
    language: str | None = None


@dataclass(frozen=True)
class Target:
    """A target task: evaluated on every language, trained (if at all) on English data."""

    name: str
    family: Family
    metric: str
    schema: str
    languages: tuple[str, ...]
    trainset: str | None  # a `Dataset` name; None for retrieval tasks
    splits: tuple[str, ...]  # the hub splits evaluated, in order; the last one is reported
    labels: tuple[str, ...] = ()
    local_path_key: str | None = None  # config key `sources.<key>` naming an optional local copy
    repo: str = "google/xtreme"
    configs: dict[str, str | None] = field(default_factory=dict)  # language -> hub config
    repos: dict[str, str] = field(default_factory=dict)  # language -> hub repo, where not `repo`
    # The hub split a language's rows come from whatever split is evaluated (TextDetox: one split per language;
    # MTEB's Tatoeba: "test"), and the seeded part it keeps (TextDetox's English: its held-out test part).
    hub_splits: dict[str, str] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)
    # Languages that only a local copy holds (XTREME-R's UD 2.7 languages): language -> `sources.<key>`. A grid
    # without that source leaves them out, saying so.
    local_languages: dict[str, str] = field(default_factory=dict)
    on_hub: bool = True  # False: only a local copy exists (Mewsli-X); a grid without it leaves the target out
    # A pool search's candidates that belong to no query language (Mewsli-X's entities) are in this language's
    # table, which the grid must then evaluate.
    pool_language: str | None = None
    shift: Shift | None = None
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # language -> splits not on the hub
    seqeval: Seqeval = "1.2.2"  # a tagging F1's reading of tags
    qa_scorer: QAScorer = "squad"
    search: Search | None = None  # retrieval: the search (`Search`)
    # A hub config that mixes languages (TyDiQA): each language's rows are those whose id starts with its prefix.
    id_prefixes: dict[str, str] = field(default_factory=dict)
    # Why the hub copy's numbers are not XTREME's, per language ("*": every language): what the local copy
    # (`sources.<local_path_key>`) avoids.
    hub_caveats: dict[str, str] = field(default_factory=dict)
    typical: Typical = Typical()
    # How its first split pairs each language's sentences with English ones (the alignment probes): `pairs`,
    # rows holding both (Tatoeba, BUCC's gold pairs); `rows`, the same row number (XNLI's files list every
    # language in pairID order); `ids`, the same example id (XQuAD's and MLQA's questions). None: not parallel.
    parallel: Literal["pairs", "rows", "ids"] | None = None

    def source(self, language: str, split: str) -> HubSplit:
        """The hub split holding this target's data for one language."""
        return HubSplit.pinned(self.repos.get(language, self.repo), self.configs[language],
                               self.hub_splits.get(language, split), self.parts.get(language))

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


TOXICITY_REPO = "textdetox/multilingual_toxicity_dataset"


def _parts(path: str, split: str) -> tuple[tuple[HubSplit, ...], tuple[HubSplit, ...]]:
    return (HubSplit.pinned(path, None, split, "train"),), (HubSplit.pinned(path, None, split, "dev"),)


def _datasets() -> dict[str, Dataset]:
    anli_train = tuple(HubSplit.pinned("facebook/anli", "plain_text", f"train_r{r}") for r in (1, 2, 3))
    anli_dev = tuple(HubSplit.pinned("facebook/anli", "plain_text", f"dev_r{r}") for r in (1, 2, 3))
    entries = [
        Dataset("anli", "pair_classification", "accuracy", "anli", anli_train, anli_dev, NLI_LABELS,
                typical=Typical(train=162_865, validation=3_200, tokens=100)),
        # CCGbank is LDC-licensed: only a local copy (train.parquet, dev.parquet: tokens, tags).
        Dataset("ccg", "tagging", "token_accuracy", "ccg", *_one("ccgbank", None, dev="dev"),
                local_path_key="ccg", on_hub=False, typical=Typical(train=39_604, validation=1_913, tokens=35)),
        Dataset("commonsenseqa", "multiple_choice", "accuracy", "commonsenseqa",
                *_one("tau/commonsense_qa", None),
                typical=Typical(train=9_741, validation=1_221, tokens=110, sequences=5)),
        Dataset("cosmosqa", "multiple_choice", "accuracy", "cosmosqa",
                *_one("allenai/cosmos_qa", None), local_path_key="cosmosqa",
                typical=Typical(train=25_262, validation=2_985, tokens=440, sequences=4)),
        Dataset("hellaswag", "multiple_choice", "accuracy", "hellaswag",
                *_one("Rowan/hellaswag", None),
                typical=Typical(train=39_905, validation=10_042, tokens=320, sequences=4)),
        Dataset("mnli", "pair_classification", "accuracy", "glue_pair",
                *_glue("mnli", "validation_matched"), NLI_LABELS,
                typical=Typical(train=392_702, validation=9_815, tokens=42)),
        Dataset("qqp", "pair_classification", "accuracy", "glue_qqp", *_glue("qqp"),
                ("not_duplicate", "duplicate"), typical=Typical(train=363_846, validation=40_430, tokens=32)),
        Dataset("squad_v2", "qa", "f1", "squad", *_one("rajpurkar/squad_v2", None), qa_scorer="squad_v2",
                typical=Typical(train=130_319, validation=11_873, tokens=200)),
        Dataset("sst2", "classification", "accuracy", "glue_single", *_glue("sst2"),
                ("negative", "positive"), typical=Typical(train=67_349, validation=872, tokens=14)),
        # English training sets of the targets that are not intermediate tasks themselves.
        Dataset("pawsx", "pair_classification", "accuracy", "pawsx", *_one("google/xtreme", "PAWS-X.en"),
                ("0", "1"), typical=Typical(train=49_401, validation=2_000, tokens=55)),
        Dataset("udpos", "tagging", "f1", "udpos", *_one("google/xtreme", "udpos.English"), UPOS_TAGS,
                seqeval="0.0.12", local_path_key="udpos", typical=Typical(train=20_557, validation=3_854, tokens=28)),
        Dataset("panx", "tagging", "f1", "panx", *_one("google/xtreme", "PAN-X.en"), NER_TAGS,
                typical=Typical(train=20_000, validation=10_000, tokens=14)),
        Dataset("squad", "qa", "f1", "squad", *_one("rajpurkar/squad", None),
                typical=Typical(train=87_599, validation=10_570, tokens=190)),
        Dataset("tydiqa", "qa", "f1", "squad", *_one("google/xtreme", "tydiqa"),
                id_prefix=TYDIQA_PREFIXES["en"], typical=Typical(train=3_696, validation=440, tokens=180)),
        # XTREME-R's two-stage XCOPA training: SIQA, then COPA from the SIQA model
        Dataset("siqa", "multiple_choice", "accuracy", "siqa", *_one("allenai/social_i_qa", None),
                typical=Typical(train=33_410, validation=1_954, tokens=90, sequences=3)),
        Dataset("copa", "multiple_choice", "accuracy", "copa", *_one("aps/super_glue", "copa"), after="siqa",
                typical=Typical(train=400, validation=100, tokens=36, sequences=2)),
        # TextDetox's English split in seeded parts: train and dev here, test held out for the target
        Dataset("toxicity", "classification", "f1", "toxicity", *_parts(TOXICITY_REPO, "en"), TOXICITY_LABELS,
                typical=Typical(train=4_000, validation=500, tokens=40)),
    ]  # fmt: skip
    return {d.name: d for d in entries}


# Every language the catalogue loads per target (the benchmarks choose among them, `xstilts.benchmarks`).
_XNLI = "ar bg de el en es fr hi ru sw th tr ur vi zh"
_PAWSX = "de en es fr ja ko zh"
_XCOPA = "et ht id it qu sw ta th tr vi zh"
_UDPOS = ("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi "
          "yo zh")
UD27_LANGUAGES = ("lt", "pl", "uk", "wo", "ro")  # XTREME-R's UD-POS additions, from UD v2.7 (a local copy)
_PANX = ("ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th "
         "sw yo my zh kk tr et fi hu")
WIKIANN_LANGUAGES = ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro")  # XTREME-R's WikiANN additions
_XQUAD = "en es de el ru tr ar vi th zh hi"
_MLQA = "en es de ar hi vi zh"
_TYDIQA = "en ar bn fi id ko ru sw te"
_BUCC = "de fr ru zh"
_MEWSLIX = "ar de en es fa ja pl ro ta tr uk"
_XQUAD_R = "ar de el en es hi ru th tr vi zh"
_TOXICITY = "en ru uk de es am zh ar hi it fr he hin tt ja"
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
LAREQA_HUB_CAVEAT = ("the hub copy has no sentence breaks: its candidates are the contexts split at sentence-final "
                     "punctuation, not LAReQA's `sentence_breaks`")

_TATOEBA = ("ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw "
            "zh kk tr et fi hu")
TATOEBA_R_LANGUAGES = ("az", "lt", "pl", "uk", "ro")  # XTREME-R's Tatoeba additions


def _target(name, family, metric, schema, langs: str, trainset, splits, config, **kw) -> Target:
    languages = tuple(langs.split())
    return Target(name, family, metric, schema, languages, trainset, splits,
                  configs={lang: config(lang) for lang in languages}, **kw)  # fmt: skip


def _targets() -> dict[str, Target]:
    udpos = _UDPOS + " " + " ".join(UD27_LANGUAGES)
    panx = _PANX + " " + " ".join(WIKIANN_LANGUAGES)
    tatoeba = _TATOEBA + " " + " ".join(TATOEBA_R_LANGUAGES)
    entries = [
        _target("xnli", "pair_classification", "accuracy", "xnli", _XNLI, "mnli",
                ("validation", "test"), lambda _: "XNLI", labels=NLI_LABELS, parallel="rows",
                typical=Typical(validation=2_490, test=5_010, tokens=45)),
        _target("pawsx", "pair_classification", "accuracy", "pawsx", _PAWSX, "pawsx",
                ("validation", "test"), lambda lang: f"PAWS-X.{lang}", labels=("0", "1"),
                typical=Typical(validation=2_000, test=2_000, tokens=60)),
        _target("xcopa", "multiple_choice", "accuracy", "copa", _XCOPA, "copa", ("validation", "test"),
                lambda lang: lang, labels=("choice1", "choice2"), repo="cambridgeltl/xcopa",
                typical=Typical(validation=100, test=500, tokens=36, sequences=2)),
        _target("udpos", "tagging", "f1", "udpos", udpos, "udpos", ("validation", "test"),
                lambda lang: f"udpos.{UDPOS_NAMES[lang]}", labels=UPOS_TAGS, seqeval="0.0.12", local_path_key="udpos",
                missing={lang: ("validation",) for lang in ("kk", "th", "tl", "yo")},
                hub_caveats={lang: f"the hub's udpos.{NAMES[lang]} mixes in {what}"
                             for lang, what in UDPOS_HUB_OTHER_TREEBANKS.items()},
                local_languages={lang: "ud27" for lang in UD27_LANGUAGES},
                typical=Typical(validation=1_300, test=1_900, tokens=30)),
        _target("panx", "tagging", "f1", "panx", panx, "panx", ("validation", "test"),
                lambda lang: lang if lang in WIKIANN_LANGUAGES else f"PAN-X.{lang}", labels=NER_TAGS,
                repos={lang: "unimelb-nlp/wikiann" for lang in WIKIANN_LANGUAGES},
                typical=Typical(validation=7_000, test=7_000, tokens=16)),
        _target("xquad", "qa", "f1_em", "squad", _XQUAD + " ro", "squad", ("validation",),
                lambda lang: f"xquad.{lang}" if lang == "ro" else f"XQuAD.{lang}", repos={"ro": "google/xquad"},
                parallel="ids", typical=Typical(validation=1_190, tokens=230)),
        _target("mlqa", "qa", "f1_em", "squad", _MLQA, "squad", ("validation", "test"),
                lambda lang: f"MLQA.{lang}.{lang}", qa_scorer="mlqa", parallel="ids",
                typical=Typical(validation=550, test=5_250, tokens=230)),
        _target("tydiqa", "qa", "f1_em", "squad", _TYDIQA, "tydiqa", ("validation",),
                lambda _: "tydiqa", id_prefixes={lang: TYDIQA_PREFIXES[lang] for lang in _TYDIQA.split()},
                typical=Typical(validation=564, tokens=200)),
        _target("bucc", "retrieval", "f1", "bitext", _BUCC, None, ("validation", "test"),
                lambda lang: f"bucc18.{lang}", local_path_key="bucc", hub_caveats={"*": BUCC_HUB_CAVEAT},
                search="mining", parallel="pairs",
                typical=Typical(validation=1_150, test=8_750, tokens=70, sequences=2)),
        _target("tatoeba", "retrieval", "accuracy", "bitext", tatoeba, None, ("validation",),
                lambda lang: (f"{TATOEBA_CODES[lang]}-eng" if lang in TATOEBA_R_LANGUAGES
                              else f"tatoeba.{TATOEBA_CODES[lang]}"), search="nearest", parallel="pairs",
                repos={lang: "mteb/tatoeba-bitext-mining" for lang in TATOEBA_R_LANGUAGES},
                hub_splits={lang: "test" for lang in TATOEBA_R_LANGUAGES},
                typical=Typical(validation=1_000, tokens=30, sequences=2)),
        # Mewsli-X: no hub copy; `sources.mewslix` is the folder get-mewsli-x.sh writes (mentions of WikiNews
        # dev and test, the candidate entities). Typical: the mentions only, not the ~1M candidate descriptions.
        _target("mewslix", "retrieval", "map20", "mewslix", _MEWSLIX, None, ("validation", "test"),
                lambda lang: lang, local_path_key="mewslix", on_hub=False, search="pool", pool_language="en",
                typical=Typical(validation=1_300, test=3_500, tokens=64)),
        # LAReQA on XQuAD-R: every language's questions ranked against one pool of every language's answers
        _target("lareqa", "retrieval", "map20", "lareqa", _XQUAD_R, None, ("validation",), lambda lang: lang,
                repo="google-research-datasets/xquad_r", local_path_key="lareqa", hub_caveats={"*": LAREQA_HUB_CAVEAT},
                search="pool", typical=Typical(validation=1_190, tokens=150, sequences=2)),
        # Shifted targets: MasakhaNER 2.0 (news, 20 African languages) tagged by the PAN-X model; DATE entities,
        # which PAN-X lacks, read as O
        _target("masakhaner", "tagging", "f1", "masakhaner", " ".join(MASAKHANER_CONFIGS), "panx",
                ("validation", "test"), MASAKHANER_CONFIGS.get, labels=NER_TAGS, repo="masakhane/masakhaner2",
                shift=Shift("panx", ("domain", "resources")), typical=Typical(validation=700, test=1_400, tokens=40)),
        _target("americasnli", "pair_classification", "accuracy", "glue_pair", " ".join(AMERICASNLI_CONFIGS), "mnli",
                ("validation", "test"), AMERICASNLI_CONFIGS.get, labels=NLI_LABELS, repo="nala-cub/americas_nli",
                shift=Shift("xnli", ("resources",)), typical=Typical(validation=740, test=750, tokens=45)),
        _target("toxicity", "classification", "f1", "toxicity", _TOXICITY, "toxicity", ("test",), lambda _: None,
                labels=TOXICITY_LABELS, repo=TOXICITY_REPO, hub_splits={lang: lang for lang in _TOXICITY.split()},
                parts={"en": "test"},
                shift=Shift("toxicity", ("domain",), language="en"), typical=Typical(test=5_000, tokens=40)),
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


def stages(dataset: str) -> list[str]:
    """The phase-(iii) trainings a training set needs, first stage first (copa: siqa, copa)."""
    before = DATASETS[dataset].after
    return [*(stages(before) if before else []), dataset]


def target_trainsets(targets: list[str]) -> list[str]:
    """The distinct English training sets that the given targets need, earlier stages included, in catalogue
    order."""
    needed = {d for t in targets if TARGETS[t].trainset for d in stages(TARGETS[t].trainset)}
    return [d for d in DATASETS if d in needed]
