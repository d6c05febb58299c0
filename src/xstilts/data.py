"""Loading tasks from their sources and normalising them into a parquet cache.

A split comes from, in this order: a local copy named in the config (`sources.<key>`: CCGbank, the
original BUCC 2018 files, a UD v2.5 release for UD-POS, Cosmos QA's release, machine translations), the
demo's hub mirror (`sources.hub_mirror`, laid out `<repo>/<config or "default">/<split>.<ext>`), or the hub
itself at the commit the catalogue pins (`sources.revisions` overrides it per repo). Every hub schema is then
read into one table per task family, the only shapes the rest of the package sees:
- classification: text_a, text_b (None for single sentences), label (int)
- multiple_choice: context, choices (list of str), label (int)
- tagging: tokens (list of str), tags (list of int, indices into the label list)
- qa: id, context, question, answer_texts (list of str), answer_starts (list of int)
- retrieval: source, target (str or None): a row with both is a gold pair, a row with one side only is
  a sentence without a translation (the original BUCC files: mining runs over every sentence); a pool search's
  tables (LAReQA, Mewsli-X) instead: id, query, candidate (one of them None), keys (list of str): a query's
  relevant candidates are those whose keys hold the query's (its own one key)

Prepared caches: `<cache>/<dataset>/{train,dev}.parquet` and `<cache>/<target>/<split>/<lang>.parquet`,
each folder with a `meta.json` written last: family, labels, row counts; `data`, where the rows came from
(each hub repo with the commit read, each local folder with a sha256 of the files read); for a target,
`not_comparable`, the languages whose data are not XTREME's (`Target.hub_caveat`: read from the hub where
XTREME reads the original files).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from xstilts import ud
from xstilts.catalogue import DATASETS, NER_TAGS, PART_SEED, PARTS, TARGETS, Dataset, HubSplit, Target
from xstilts.errors import DataError
from xstilts.languages import UDPOS_NAMES
from xstilts.results_io import write_parquet, write_text


@dataclass(frozen=True)
class Sources:
    """Where data comes from: the hub (at pinned commits, `revisions` overriding the catalogue's per
    repo), a local mirror of it (the demo), or local copies per task."""

    hub_mirror: Path | None = None
    local: Mapping[str, Path] = field(default_factory=dict)
    revisions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, sources: Mapping[str, Any]) -> Sources:
        mirror = sources.get("hub_mirror")
        local = {k: Path(v) for k, v in sources.items() if k not in ("hub_mirror", "revisions") and v}
        return cls(Path(mirror) if mirror else None, local, dict(sources.get("revisions") or {}))

    def local_path(self, key: str | None) -> Path | None:
        return self.local.get(key) if key else None

    def revision(self, hub: HubSplit) -> str | None:
        """The commit to read a hub split at: the config's for its repo, else the catalogue's."""
        return self.revisions.get(hub.path, hub.revision)


@dataclass(frozen=True)
class Origin:
    """Where one split's rows came from: a hub repo at a commit (`revision`: the one read, resolved from
    the pinned or the main branch; None where unknown), or files of a local folder."""

    name: str  # repo id or folder
    revision: str | None = None
    files: tuple[Path, ...] = ()

    @property
    def is_hub(self) -> bool:
        return not self.files


def _digest(root: Path, files: set[Path]) -> str:
    """sha256 over the files (relative path and content of each, in path order)."""
    digest = hashlib.sha256()
    for file in sorted(files):
        name = file.relative_to(root) if file.is_relative_to(root) else file
        digest.update(name.as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def origins_json(origins: list[Origin]) -> list[dict[str, Any]]:
    """The `data` entry of meta.json: each hub repo and commit, each local folder with its files' digest."""
    hubs = dict.fromkeys((o.name, o.revision) for o in origins if o.is_hub)
    folders: dict[str, set[Path]] = {}
    for o in origins:
        if not o.is_hub:
            folders.setdefault(o.name, set()).update(o.files)
    return ([{"hub": repo, "revision": rev} for repo, rev in hubs]
            + [{"folder": name, "files": len(files), "sha256": _digest(Path(name), files)}
               for name, files in folders.items()])


# --- Reading one split in its hub schema ----------------------------------------------------------

_TABLE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
# File stems a split may have in a folder of tables (Cosmos QA's release calls its dev set `valid.csv`).
_SPLIT_STEMS = {"validation": ("validation", "valid", "dev")}
# What each local copy holds, for the error messages.
_LOCAL_LAYOUTS = {
    "ccg": "CCGbank as released by the LDC (its data/AUTO/<section>/*.auto files) or train/dev tables "
           "with `tokens` and `tags` columns",
    "cosmosqa": "Cosmos QA's release (train.csv, valid.csv) or train/validation tables in the hub schema",
    "bucc": "the BUCC 2018 files <lang>-en.{sample,training}.{<lang>,en,gold} (or XTREME's dev/test names)",
    "udpos": ud.LAYOUT,
    "ud27": ud.LAYOUT.replace("2.5", "2.7"),
    "mewslix": "the folder get-mewsli-x.sh writes: candidate_set_entities.jsonl and wikinews_mentions-{dev,test}.jsonl",
    "lareqa": "the LAReQA repository's folder: xquad-r/<lang>.json (SQuAD format with sentence_breaks)",
}  # fmt: skip
Read = tuple[pd.DataFrame, list[Path]]  # a local reader's rows and the files it read


def _load_table(file: Path) -> pd.DataFrame:
    """A parquet, JSON-lines or CSV file through `datasets`, so types come out as from the hub."""
    import datasets

    builder = _TABLE_FORMATS[file.suffix]
    options = {"keep_default_na": False} if builder == "csv" else {}  # "NA" is an answer, not a gap
    return datasets.load_dataset(builder, data_files=str(file), split="train", **options).to_pandas()


def _table(folder: Path, split: str, task: str) -> Read:
    """The file `<split>.<parquet|jsonl|json|csv>` of a folder of tables."""
    stems = _SPLIT_STEMS.get(split, (split,))
    for file in (folder / f"{stem}{ext}" for stem in stems for ext in _TABLE_FORMATS):
        if file.is_file():
            return _load_table(file), [file]
    raise DataError(f"task {task!r}: no {split} split in {folder} "
                    f"(looked for {'/'.join(stems)} with suffix {', '.join(_TABLE_FORMATS)})")


def _local_tables(folder: Path, hub: HubSplit, task: str) -> Read:
    """A local copy laid out like the hub: `[<config>/]<split>.<ext>`."""
    return _table(folder / hub.config if hub.config else folder, hub.split, task)


_CCG_LEAF = re.compile(r"<L (\S+) \S+ \S+ (\S+) \S+>")  # <L category modified-POS original-POS word pred-arg>
_CCG_SECTIONS = {"train": {f"{s:02d}" for s in range(2, 22)}, "dev": {"00"}, "test": {"23"}}


def _ccgbank(folder: Path, hub: HubSplit, task: str) -> Read:
    """CCGbank's AUTO files (standard split: train 02-21, dev 00, test 23), each leaf a (word, supertag);
    without AUTO files, tables of `tokens` and `tags`."""
    autos = sorted(folder.glob("**/AUTO/*/*.auto"))
    if not autos:
        return _table(folder, hub.split, task)
    rows = []
    files = [f for f in autos if f.parent.name in _CCG_SECTIONS[hub.split]]
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.startswith("(<"):
                leaves = _CCG_LEAF.findall(line)
                rows.append({"tokens": [w for _, w in leaves], "tags": [c for c, _ in leaves]})
    return pd.DataFrame(rows, columns=["tokens", "tags"]), files


_BUCC_NAMES = {"validation": ("sample", "dev"), "test": ("training", "test")}  # BUCC's names, XTREME's


def _bucc_files(folder: Path, hub: HubSplit, task: str) -> Read:
    """The original BUCC 2018 files of one language pair (tab-separated `id, sentence` per language and
    `source id, target id` gold pairs): the gold pairs, then every other sentence on its own."""
    lang = hub.config.split(".")[1]
    golds = [f for name in _BUCC_NAMES[hub.split] for f in sorted(folder.rglob(f"{lang}-en.{name}.gold"))]
    if not golds:
        raise DataError(f"task {task!r}: no {lang}-en.{{{','.join(_BUCC_NAMES[hub.split])}}}.gold under "
                        f"{folder} (`sources.bucc` should hold {_LOCAL_LAYOUTS['bucc']})")
    stem = golds[0].with_suffix("")

    def sentences(path: Path) -> dict[str, str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return dict(line.split("\t", 1) for line in lines if line.strip())

    source, target = sentences(Path(f"{stem}.{lang}")), sentences(Path(f"{stem}.en"))
    gold = [line.split("\t")[:2] for line in golds[0].read_text(encoding="utf-8").splitlines() if line.strip()]
    paired_source, paired_target = {s for s, _ in gold}, {t for _, t in gold}
    rows = [(source[s], target[t]) for s, t in gold]
    rows += [(text, None) for sid, text in source.items() if sid not in paired_source]
    rows += [(None, text) for tid, text in target.items() if tid not in paired_target]
    files = [golds[0], Path(f"{stem}.{lang}"), Path(f"{stem}.en")]
    return pd.DataFrame(rows, columns=["source_sentence", "target_sentence"]), files


_UDPOS_CODES = {name: code for code, name in UDPOS_NAMES.items()}


def _ud_treebanks(folder: Path, hub: HubSplit, task: str) -> Read:
    """UD-POS from a UD v2.5 release as XTREME selects and reads it (`xstilts.ud`)."""
    return ud.read_split(folder, _UDPOS_CODES[hub.config.split(".", 1)[1]], hub.split)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


_MEWSLIX_SPLITS = {"validation": "dev", "test": "test"}


def _mention_query(context: Mapping[str, Any], mention: Mapping[str, Any]) -> str:
    """A mention in its sentence, marked and put first (XTREME-R's `utils_mewslix.preprocess_mention`):
    "Smith: The verdict came back for { Smith }, who ..."."""
    span = mention["mention_span"]
    sentences = [s for s in context["sentence_spans"] if s["start"] <= span["start"] < s["end"]]
    start, end = (sentences[0]["start"], sentences[0]["end"]) if sentences else (0, len(context["text"]))
    text = context["text"]
    query = f"{span['text']}: {text[start:span['start']]} {{ {span['text']} }} {text[span['end']:end]}"
    return " ".join(query.split())


def _mewslix_files(folder: Path, hub: HubSplit, task: str) -> Read:
    """One language's WikiNews mentions (queries keyed by their entity) from the files get-mewsli-x.sh writes;
    the English table also holds every candidate entity (its description), the pool of every language."""
    mentions = folder / f"wikinews_mentions-{_MEWSLIX_SPLITS[hub.split]}.jsonl"
    entities = folder / "candidate_set_entities.jsonl"
    for path in (mentions, entities):
        if not path.is_file():
            raise DataError(f"task {task!r}: no {path.name} in {folder} (`sources.mewslix` should hold "
                            f"{_LOCAL_LAYOUTS['mewslix']})")
    rows = [{"id": m["example_id"], "query": _mention_query(doc["context"], m), "candidate": None,
             "keys": [m["entity_id"]]}
            for doc in _jsonl(mentions) if doc["context"]["language"] == hub.config for m in doc["mentions"]]
    files = [mentions]
    if hub.config == TARGETS[task].pool_language:
        rows += [{"id": e["entity_id"], "query": None, "candidate": " ".join(e["description"].split()),
                  "keys": [e["entity_id"]]} for e in _jsonl(entities)]
        files.append(entities)
    return pd.DataFrame(rows, columns=["id", "query", "candidate", "keys"]), files


def _lareqa_files(folder: Path, hub: HubSplit, task: str) -> Read:
    """One language of the LAReQA repository's XQuAD-R (SQuAD format with `sentence_breaks`), as rows in the
    hub's schema plus each paragraph's sentence breaks."""
    path = next(iter(sorted(folder.glob(f"**/xquad-r/{hub.config}.json"))), None)
    if path is None:
        raise DataError(f"task {task!r}: no xquad-r/{hub.config}.json under {folder} (`sources.lareqa` should hold "
                        f"{_LOCAL_LAYOUTS['lareqa']})")
    rows = [{"id": qa["id"], "context": paragraph["context"], "question": qa["question"],
             "answers": {"text": [a["text"] for a in qa["answers"]],
                         "answer_start": [a["answer_start"] for a in qa["answers"]]},
             "sentence_breaks": [list(b) for b in paragraph["sentence_breaks"]]}
            for article in json.loads(path.read_text(encoding="utf-8"))["data"]
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    return pd.DataFrame(rows), [path]


_LOCAL_READERS: dict[str, Callable[[Path, HubSplit, str], Read]] = {
    "ccg": _ccgbank, "bucc": _bucc_files, "udpos": _ud_treebanks, "ud27": _ud_treebanks, "mewslix": _mewslix_files,
    "lareqa": _lareqa_files}


def part(df: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """A seeded part of a split (`catalogue.PARTS`: the rows of a fixed permutation between two fractions),
    else the whole split."""
    if name is None:
        return df
    low, high = PARTS[name]
    order = df.sample(frac=1.0, random_state=PART_SEED).index
    return df.loc[order[round(low * len(df)):round(high * len(df))]].reset_index(drop=True)


def _load_hub(hub: HubSplit, revision: str | None, task: str, prepared: Path | None) -> tuple[pd.DataFrame, str]:
    """A hub split at `revision` (None: the main branch) and the commit it was read at."""
    import datasets

    try:
        builder = datasets.load_dataset_builder(hub.path, hub.config, revision=revision)
        builder.download_and_prepare()
        return builder.as_dataset(split=hub.split).to_pandas(), builder.hash
    except Exception as err:  # the hub's errors are many and unhelpful offline
        where = " ".join([hub.path, *([f"config {hub.config}"] if hub.config else []), f"split {hub.split}",
                          *([f"revision {revision}"] if revision else [])])
        hint = ""
        if datasets.config.HF_HUB_OFFLINE:
            command = f"snakemake --profile profiles/local {prepared}" if prepared else "xstilts prepare ..."
            hint = ("; the hub is switched off here (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and the datasets "
                    f"cache does not hold it: prepare it on a machine with internet access: `{command}`")
        raise DataError(f"task {task!r}: cannot load {where}: {err}{hint}") from err


def read_split(hub: HubSplit, sources: Sources, *, task: str, local_key: str | None = None,
               on_hub: bool = True, prepared: Path | None = None) -> tuple[pd.DataFrame, Origin]:
    """One split in its hub schema, from a local copy (`sources.<local_key>`), the demo's mirror, or
    the hub, and where it came from. `prepared` is the meta.json being prepared, named in the error
    when the hub is offline."""
    folder = sources.local_path(local_key)
    if folder is not None:
        if not folder.exists():
            raise DataError(f"task {task!r}: `sources.{local_key}` is {folder}, which does not exist: point it "
                            f"at {_LOCAL_LAYOUTS.get(local_key, 'its files')}")
        df, files = _LOCAL_READERS.get(local_key, _local_tables)(folder, hub, task)
        return part(df, hub.part), Origin(str(folder), files=tuple(files))
    if not on_hub:
        raise DataError(f"task {task!r} has no copy on the hub: set `sources.{local_key}` in config.yaml to "
                        f"a folder holding {_LOCAL_LAYOUTS.get(local_key, 'its files')}")
    if sources.hub_mirror is not None:
        df, files = _table(sources.hub_mirror / hub.path / (hub.config or "default"), hub.split, task)
        return part(df, hub.part), Origin(str(sources.hub_mirror), files=tuple(files))
    df, commit = _load_hub(hub, sources.revision(hub), task, prepared)
    return part(df, hub.part), Origin(hub.path, commit)


# --- Normalisers: hub schema -> family table ------------------------------------------------------

Normaliser = Callable[[pd.DataFrame, tuple[str, ...]], pd.DataFrame]


def _label_ids(values: pd.Series, labels: tuple[str, ...]) -> pd.Series:
    """Labels given as ints, numeric strings or names, as ints; missing ones (None, "", -1) as -1."""
    index = {name: i for i, name in enumerate(labels)}

    def one(v: Any) -> int:
        if isinstance(v, str):
            if v in index:
                return index[v]
            return int(v) if v.lstrip("-").isdigit() else -1
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return -1
        return int(v)

    return values.map(one).astype("int64")


def _pairs(a: str, b: str | None, label: str) -> Normaliser:
    def normalise(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
        return pd.DataFrame({
            "text_a": df[a].astype(str),
            "text_b": df[b].astype(str) if b else None,
            "label": _label_ids(df[label], labels),
        })
    return normalise


def _commonsenseqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """The question against each choice; the label is the position of `answerKey` among the choice labels."""
    def label(row: pd.Series) -> int:
        keys = list(row["choices"]["label"])
        return keys.index(row["answerKey"]) if row["answerKey"] in keys else -1

    return pd.DataFrame({"context": df["question"], "choices": df["choices"].map(lambda c: list(c["text"])),
                         "label": df.apply(label, axis=1).astype("int64")})


def _cosmosqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """jiant's pairing: "context question" against each answer."""
    return pd.DataFrame({"context": df["context"] + " " + df["question"],
                         "choices": df[[f"answer{i}" for i in range(4)]].to_numpy().tolist(),
                         "label": _label_ids(df["label"], labels)})


def _hellaswag(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """jiant's pairing: `ctx_a` against "ctx_b ending" for each ending (`ctx_b` is often empty)."""
    choices = [[f"{b} {e}".strip() for e in endings] for b, endings in zip(df["ctx_b"], df["endings"], strict=True)]
    return pd.DataFrame({"context": df["ctx_a"], "choices": choices, "label": _label_ids(df["label"], labels)})


def _tags(column: str) -> Normaliser:
    def normalise(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
        index = {name: i for i, name in enumerate(labels)}
        tags = df[column].map(lambda seq: [index[t] if isinstance(t, str) else int(t) for t in seq])
        return pd.DataFrame({"tokens": df["tokens"].map(lambda seq: [str(t) for t in seq]), "tags": tags})
    return normalise


def _squad(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({
        "id": df["id"].astype(str), "context": df["context"], "question": df["question"],
        "answer_texts": df["answers"].map(lambda a: [str(t) for t in a["text"]]),
        "answer_starts": df["answers"].map(lambda a: [int(s) for s in a["answer_start"]]),
    })


def _bitext(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """Sentences stripped (the hub's Tatoeba lines keep their newline); a missing side stays None. `google/xtreme`
    names the sides source_sentence and target_sentence (English), MTEB's Tatoeba sentence1 and sentence2."""
    def clean(side: pd.Series) -> list[str | None]:
        return [s.strip() if isinstance(s, str) else None for s in side]

    source, target = ("source_sentence", "target_sentence") if "source_sentence" in df else ("sentence1", "sentence2")
    return pd.DataFrame({"source": clean(df[source]), "target": clean(df[target])})


def _siqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """XTREME-R's `run_xcopa.py` pairing: "context question" against each answer; labels "1"-"3" as 0-2."""
    return pd.DataFrame({"context": df["context"] + " " + df["question"],
                         "choices": df[["answerA", "answerB", "answerC"]].to_numpy().tolist(),
                         "label": _label_ids(df["label"], labels) - 1})


def _copa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """COPA and XCOPA as XTREME-R's `run_xcopa.py` pairs them: "premise What was the cause?" (or effect)
    against each choice."""
    return pd.DataFrame({"context": df["premise"] + " What was the " + df["question"] + "?",
                         "choices": df[["choice1", "choice2"]].to_numpy().tolist(),
                         "label": _label_ids(df["label"], labels)})


def _masakhaner(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """MasakhaNER 2.0's tags: XTREME's seven, then B-DATE and I-DATE, which a PAN-X tagger cannot predict: O."""
    table = _tags("ner_tags")(df, labels)
    table["tags"] = table["tags"].map(lambda tags: [t if t < len(NER_TAGS) else 0 for t in tags])
    return table


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """Character spans of a text's sentences, split after sentence-final punctuation followed by white space."""
    starts = [0, *(m.end() for m in _SENTENCE_END.finditer(text))]
    ends = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


def _lareqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """XQuAD-R as LAReQA reads it (`utils_lareqa.load_data`): each question, keyed by its id (the same in every
    language), and each sentence of each paragraph (LAReQA's `sentence_breaks`, else `sentence_breaks()`) with
    the ids of the questions it answers; a question whose answer starts in no sentence is left out, as there."""
    rows: list[dict[str, Any]] = []
    paragraphs: dict[str, list[list[Any]]] = {}
    for row in df.itertuples(index=False):
        breaks = [tuple(b) for b in row.sentence_breaks] if "sentence_breaks" in df else sentence_breaks(row.context)
        sentences = paragraphs.setdefault(row.context, [[(a, b), []] for a, b in breaks])
        start = int(row.answers["answer_start"][0])
        holding = [keys for (a, b), keys in sentences if a <= start < b]
        if holding:
            holding[0].append(str(row.id))
            rows.append({"id": str(row.id), "query": row.question, "candidate": None, "keys": [str(row.id)]})
    for p, (context, sentences) in enumerate(paragraphs.items()):
        rows += [{"id": f"{p}_{s}", "query": None, "candidate": context[a:b] + context, "keys": keys}
                 for s, ((a, b), keys) in enumerate(sentences)]
    return pd.DataFrame(rows, columns=["id", "query", "candidate", "keys"])


def _pool(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """A pool search's table as its local reader wrote it (Mewsli-X)."""
    return df[["id", "query", "candidate", "keys"]].reset_index(drop=True)


NORMALISERS: dict[str, Normaliser] = {
    "anli": _pairs("premise", "hypothesis", "label"),
    "glue_pair": _pairs("premise", "hypothesis", "label"),
    "glue_qqp": _pairs("question1", "question2", "label"),
    "glue_single": _pairs("sentence", None, "label"),
    "pawsx": _pairs("sentence1", "sentence2", "label"),
    "xnli": _pairs("sentence1", "sentence2", "gold_label"),
    "commonsenseqa": _commonsenseqa,
    "cosmosqa": _cosmosqa,
    "hellaswag": _hellaswag,
    "ccg": _tags("tags"),
    "udpos": _tags("pos_tags"),
    "panx": _tags("ner_tags"),
    "squad": _squad,
    "bitext": _bitext,
    "siqa": _siqa,
    "copa": _copa,
    "toxicity": _pairs("text", None, "toxic"),
    "masakhaner": _masakhaner,
    "lareqa": _lareqa,
    "mewslix": _pool,
}


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"] >= 0].reset_index(drop=True) if "label" in df else df


class Bitext(NamedTuple):
    """A retrieval table as BUCC mines and scores it."""

    sources: list[str]  # the distinct source sentences: the candidates mined
    targets: list[str]
    source_keys: list[int | None]  # what names each in the gold pairs; None: nothing (its candidates drop)
    target_keys: list[int | None]
    gold: set[tuple[int, int]]  # gold pairs as (source key, target key)

    def keyed(self, candidates: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
        """Mined candidates (source, target index) as gold keys; those holding an unnamed text dropped."""
        return {(s, t): score for (i, j), score in candidates.items()
                if (s := self.source_keys[i]) is not None and (t := self.target_keys[j]) is not None}


def bitext_sides(df: pd.DataFrame, duplicates: str = "xtreme") -> Bitext:
    """The distinct sentences of a retrieval table (each side mined once per text) and its gold pairs.

    A text on several rows of a side: `xtreme` (XTREME's `utils_retrieve.read_sent2id`) keys sentences
    by row and names no sentence by a repeated text, so candidates holding it are dropped and its gold
    pairs stay in the gold as misses; `jiant` keys sentences by text, one candidate with all its gold
    pairs.
    """
    sides = [df[column].dropna() for column in ("source", "target")]
    texts = [list(dict.fromkeys(side)) for side in sides]
    pairs = df.dropna(subset=["source", "target"])
    if duplicates == "xtreme":  # keyed by row; a text on several rows names none of them
        row_of = [{text: int(row) for row, text in side.drop_duplicates(keep=False).items()} for side in sides]
        keys = [[rows.get(text) for text in side_texts] for rows, side_texts in zip(row_of, texts, strict=True)]
        gold = {(row, row) for row in map(int, pairs.index)}
    elif duplicates == "jiant":  # keyed by text
        keys = [list(range(len(side_texts))) for side_texts in texts]
        index = [{text: i for i, text in enumerate(side_texts)} for side_texts in texts]
        gold = {(index[0][s], index[1][t]) for s, t in zip(pairs["source"], pairs["target"], strict=True)}
    else:
        raise ValueError(f"duplicates {duplicates!r}; allowed: xtreme, jiant")
    return Bitext(texts[0], texts[1], keys[0], keys[1], gold)


# --- Preparing the caches -------------------------------------------------------------------------

def _read_dataset_split(ds: Dataset, hubs: tuple[HubSplit, ...], sources: Sources, prepared: Path,
                        origins: list[Origin]) -> pd.DataFrame:
    frames = []
    for hub in hubs:
        df, origin = read_split(hub, sources, task=ds.name, local_key=ds.local_path_key, on_hub=ds.on_hub,
                                prepared=prepared)
        frames.append(df)
        origins.append(origin)
    df = pd.concat(frames, ignore_index=True)
    if ds.id_prefix:
        df = df[df["id"].str.startswith(ds.id_prefix + "-")].reset_index(drop=True)
    return df


def _read_translations(ds: Dataset, translations: Mapping[str, Any], sources: Sources, prepared: Path,
                       origins: list[Origin]) -> pd.DataFrame:
    """Machine-translated training data in the task's hub schema: a hub repo with one config per
    language (at `sources.revisions` of that repo, if named), or a folder `<lang>/train.parquet`."""
    source = str(translations["source"])
    local = (Sources(local={"translations": Path(source)}) if Path(source).is_dir()
             else Sources(revisions=sources.revisions))
    frames = []
    for lang in translations["languages"]:
        df, origin = read_split(HubSplit(source, lang, "train"), local, task=f"{ds.name} ({lang} translation)",
                                local_key="translations" if local.local else None, prepared=prepared)
        frames.append(df)
        origins.append(origin)
    return pd.concat(frames, ignore_index=True)


def prepare_dataset(name: str, out_dir: Path, sources: Sources,
                    translations: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load an English training dataset (train + dev; optionally translations added to train) and
    write its normalised cache."""
    ds = DATASETS[name]
    prepared = out_dir / "meta.json"
    origins: list[Origin] = []
    raw = {split: _read_dataset_split(ds, hubs, sources, prepared, origins)
           for split, hubs in (("train", ds.train), ("dev", ds.dev))}
    if translations:
        raw["train"] = pd.concat([raw["train"], _read_translations(ds, translations, sources, prepared, origins)],
                                 ignore_index=True)
    labels = ds.labels
    if ds.family == "tagging" and not labels:  # CCG: every supertag of the data (dev-only ones count as errors)
        labels = tuple(sorted({t for df in raw.values() for seq in df["tags"] for t in seq}))
    counts = {}
    for split, df in raw.items():
        table = _labelled(NORMALISERS[ds.schema](df, labels))
        if table.empty:
            raise DataError(f"task {name!r}: the {split} split is empty after normalisation")
        write_parquet(table, out_dir / f"{split}.parquet")
        counts[split] = len(table)
    meta = {"name": name, "family": ds.family, "metric": ds.metric, "labels": list(labels), "rows": counts,
            "data": origins_json(origins)}
    write_text(json.dumps(meta, indent=1), prepared)
    return meta


def _target_rows(target: Target, language: str, split: str, sources: Sources,
                 prepared: Path) -> tuple[pd.DataFrame, Origin]:
    only_local = language in target.local_languages
    df, origin = read_split(target.source(language, split), sources, task=target.name,
                            local_key=target.local_languages.get(language, target.local_path_key),
                            on_hub=target.on_hub and not only_local, prepared=prepared)
    if "language" in df.columns:  # XNLI: one config, every language
        df = df[df["language"] == language]
    if prefix := target.id_prefixes.get(language):  # one config, every language, told apart by the id prefix
        df = df[df["id"].str.startswith(prefix + "-")]
    return df.reset_index(drop=True), origin


def not_comparable(target: Target, languages: list[str], sources: Sources) -> dict[str, str]:
    """The languages whose data, as these sources give them, are not XTREME's, and why: the target's hub
    caveats, unless its local copy (`sources.<local_path_key>`) is what is read."""
    if sources.local_path(target.local_path_key) is not None:
        return {}
    caveats = {lang: target.hub_caveat(lang) for lang in languages}
    return {lang: why for lang, why in caveats.items() if why}


def prepare_target(name: str, languages: list[str], out_dir: Path, sources: Sources) -> dict[str, Any]:
    """Load every (language, split) of a target's evaluation data and write its normalised cache.

    `rows` in meta.json maps each split to the languages that have it (udpos lacks some validation sets);
    `not_comparable` the languages whose data differ from XTREME's (said on stderr too: the job's log).
    """
    target = TARGETS[name]
    prepared = out_dir / "meta.json"
    counts: dict[str, dict[str, int]] = {}
    origins: list[Origin] = []
    for split in target.splits:
        for lang in (lang for lang in languages if split in target.splits_for(lang)):
            df, origin = _target_rows(target, lang, split, sources, prepared)
            origins.append(origin)
            table = _labelled(NORMALISERS[target.schema](df, target.labels))
            if table.empty:
                raise DataError(f"target {name!r}: no {split} rows for language {lang!r}")
            write_parquet(table, out_dir / split / f"{lang}.parquet")
            counts.setdefault(split, {})[lang] = len(table)
    caveats = not_comparable(target, languages, sources)
    for lang, why in caveats.items():
        print(f"xstilts: {name} {lang} is not comparable with XTREME's numbers: {why} "
              f"(set `sources.{target.local_path_key}` to read the original data)", file=sys.stderr)
    meta = {"name": name, "family": target.family, "metric": target.metric, "labels": list(target.labels),
            "languages": languages, "splits": list(target.splits), "rows": counts, "data": origins_json(origins),
            "not_comparable": caveats}
    write_text(json.dumps(meta, indent=1), prepared)
    return meta


def data_facts(kind: str, name: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The run facts' `data` entry for one prepared cache (`<kind>/<name>`, kind "train" or "eval" as
    under results/data): where its rows came from and, for a target, the languages not comparable with
    XTREME's."""
    facts: dict[str, Any] = {"origins": meta.get("data", [])}
    if kind == "eval":
        facts["not_comparable"] = meta.get("not_comparable", {})
    return {f"{kind}/{name}": facts}


def read_meta(folder: Path) -> dict[str, Any]:
    """The `meta.json` of a prepared cache folder, with a clear error when it was never prepared."""
    path = folder / "meta.json"
    if not path.is_file():
        raise DataError(f"data set {folder.name!r} is not prepared: {path} is missing (jobs read only the "
                        f"prepared cache, with the hub offline). Prepare it on a machine with internet access: "
                        f"`snakemake --profile profiles/local {path}`")
    return json.loads(path.read_text())
