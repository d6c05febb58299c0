"""Loading tasks from the hub (or a local copy) and normalising them into a parquet cache.

Every hub schema is read into one table per task family, the only shapes the rest of the package sees:
- classification: text_a, text_b (None for single sentences), label (int)
- multiple_choice: context, choices (list of str), label (int)
- tagging: tokens (list of str), tags (list of int, indices into the label list)
- qa: id, context, question, answer_texts (list of str), answer_starts (list of int)
- retrieval: source, target (aligned sentence pairs)

Prepared caches: `<cache>/<dataset>/{train,dev}.parquet` and `<cache>/<target>/<split>/<lang>.parquet`,
each folder with a `meta.json` (family, labels, row counts) written last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xstilts.catalogue import DATASETS, TARGETS, Dataset, HubSplit, Target
from xstilts.languages import TYDIQA_PREFIXES
from xstilts.results_io import write_parquet, write_text


class DataError(RuntimeError):
    """A data source is missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class Sources:
    """Where data comes from: the hub, a local mirror of it (the demo), or local copies per task."""

    hub_mirror: Path | None = None
    local: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_config(cls, sources: Mapping[str, Any]) -> Sources:
        mirror = sources.get("hub_mirror")
        local = {k: Path(v) for k, v in sources.items() if k != "hub_mirror" and v}
        return cls(Path(mirror) if mirror else None, local)

    def local_path(self, key: str | None) -> Path | None:
        return self.local.get(key) if key else None


def read_split(hub: HubSplit, sources: Sources, *, local_key: str | None = None, on_hub: bool = True,
               task: str = "") -> pd.DataFrame:
    """One hub split as a DataFrame, from a local copy, the demo's mirror, or the hub itself."""
    import datasets

    local = sources.local_path(local_key)
    if local is not None:
        file = local / hub.config / f"{hub.split}.parquet" if hub.config else local / f"{hub.split}.parquet"
    elif sources.hub_mirror is not None:
        file = sources.hub_mirror / hub.path / (hub.config or "default") / f"{hub.split}.parquet"
    elif not on_hub:
        raise DataError(f"task {task!r} has no copy on the hub: set `sources.{local_key}` in config.yaml "
                        f"to a directory holding {hub.split}.parquet")
    else:
        try:
            return datasets.load_dataset(hub.path, hub.config, split=hub.split,
                                         revision=hub.revision).to_pandas()
        except Exception as err:  # the hub's errors are many and unhelpful offline
            hint = (" (offline: prepare data on a machine with internet access: "
                    f"`snakemake --profile profiles/local results/data/{task}/meta.json`)"
                    if os.environ.get("HF_HUB_OFFLINE") == "1" else "")
            raise DataError(f"cannot load {hub.path} [{hub.config}] split {hub.split} for task "
                            f"{task!r}: {err}{hint}") from err
    if not file.is_file():
        raise DataError(f"task {task!r}: {file} does not exist (expected {hub.path} [{hub.config}] "
                        f"split {hub.split}); check `sources` in the config")
    return datasets.load_dataset("parquet", data_files=str(file), split="train").to_pandas()


# --- Normalisers: hub schema -> family table ------------------------------------------------------

def _labels_to_ids(values: pd.Series, labels: tuple[str, ...]) -> pd.Series:
    """Labels given as ints, numeric strings or names, as ints; unlabelled rows (-1, "") dropped later."""
    index = {name: i for i, name in enumerate(labels)}

    def one(v: Any) -> int:
        if isinstance(v, str):
            if v in index:
                return index[v]
            return int(v) if v.lstrip("-").isdigit() else -1
        return int(v)

    return values.map(one).astype("int64")


def _pairs(a: str, b: str | None, label: str) -> Callable[[pd.DataFrame, tuple[str, ...]], pd.DataFrame]:
    def normalise(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
        return pd.DataFrame({
            "text_a": df[a].astype(str),
            "text_b": df[b].astype(str) if b else None,
            "label": _labels_to_ids(df[label], labels),
        })
    return normalise


def _commonsenseqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    def label(row: pd.Series) -> int:
        keys = list(row["choices"]["label"])
        return keys.index(row["answerKey"]) if row["answerKey"] in keys else -1

    return pd.DataFrame({"context": df["question"], "choices": df["choices"].map(lambda c: list(c["text"])),
                         "label": df.apply(label, axis=1).astype("int64")})


def _cosmosqa(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    answers = df[[f"answer{i}" for i in range(4)]].to_numpy().tolist()
    choices = [[f"{q} {a}" for a in row] for q, row in zip(df["question"], answers, strict=True)]
    return pd.DataFrame({"context": df["context"], "choices": choices,
                         "label": _labels_to_ids(df["label"], labels)})


def _hellaswag(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({"context": df["ctx"], "choices": df["endings"].map(list),
                         "label": _labels_to_ids(df["label"], labels)})


def _tags(column: str) -> Callable[[pd.DataFrame, tuple[str, ...]], pd.DataFrame]:
    def normalise(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
        index = {name: i for i, name in enumerate(labels)}
        tags = df[column].map(lambda seq: [index[t] if isinstance(t, str) else int(t) for t in seq])
        return pd.DataFrame({"tokens": df["tokens"].map(list), "tags": tags})
    return normalise


def _squad(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({
        "id": df["id"].astype(str), "context": df["context"], "question": df["question"],
        "answer_texts": df["answers"].map(lambda a: [str(t) for t in a["text"]]),
        "answer_starts": df["answers"].map(lambda a: [int(s) for s in a["answer_start"]]),
    })


def _bitext(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({"source": df["source_sentence"], "target": df["target_sentence"]})


NORMALISERS: dict[str, Callable[[pd.DataFrame, tuple[str, ...]], pd.DataFrame]] = {
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
}


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"] >= 0].reset_index(drop=True) if "label" in df else df


def _read_dataset_split(ds: Dataset, hubs: tuple[HubSplit, ...], sources: Sources) -> pd.DataFrame:
    frames = [read_split(h, sources, local_key=ds.local_path_key, on_hub=ds.on_hub, task=ds.name)
              for h in hubs]
    df = pd.concat(frames, ignore_index=True)
    if ds.id_prefix:
        df = df[df["id"].str.startswith(ds.id_prefix + "-")].reset_index(drop=True)
    return df


def prepare_dataset(name: str, out_dir: Path, sources: Sources) -> dict[str, Any]:
    """Load an English training dataset (train + dev) and write its normalised cache."""
    ds = DATASETS[name]
    raw = {split: _read_dataset_split(ds, hubs, sources) for split, hubs in (("train", ds.train),
                                                                              ("dev", ds.dev))}
    labels = ds.labels
    if ds.family == "tagging" and not labels:  # CCG: the supertag inventory of the training data
        labels = tuple(sorted({t for seq in raw["train"]["tags"] for t in seq}))
    counts = {}
    for split, df in raw.items():
        table = _labelled(NORMALISERS[ds.schema](df, labels))
        if table.empty:
            raise DataError(f"task {name!r}: the {split} split is empty after normalisation")
        write_parquet(table, out_dir / f"{split}.parquet")
        counts[split] = len(table)
    meta = {"name": name, "family": ds.family, "metric": ds.metric, "labels": list(labels),
            "num_choices": ds.num_choices, "rows": counts}
    write_text(json.dumps(meta, indent=1), out_dir / "meta.json")
    return meta


def _target_rows(target: Target, language: str, split: str, sources: Sources) -> pd.DataFrame:
    df = read_split(target.source(language, split), sources, local_key=target.local_path_key,
                    task=target.name)
    if "language" in df.columns:  # XNLI: one config, every language
        df = df[df["language"] == language]
    if target.name == "tydiqa":  # one config, every language, told apart by the id prefix
        df = df[df["id"].str.startswith(TYDIQA_PREFIXES[language] + "-")]
    return df.reset_index(drop=True)


def prepare_target(name: str, languages: list[str], out_dir: Path, sources: Sources) -> dict[str, Any]:
    """Load every (language, split) of a target's evaluation data and write its normalised cache."""
    target = TARGETS[name]
    counts: dict[str, dict[str, int]] = {}
    for split in target.splits:
        for lang in languages:
            table = _labelled(NORMALISERS[target.schema](_target_rows(target, lang, split, sources),
                                                         target.labels))
            if table.empty:
                raise DataError(f"target {name!r}: no {split} rows for language {lang!r}")
            write_parquet(table, out_dir / split / f"{lang}.parquet")
            counts.setdefault(split, {})[lang] = len(table)
    meta = {"name": name, "family": target.family, "metric": target.metric, "labels": list(target.labels),
            "languages": languages, "splits": list(target.splits), "rows": counts}
    write_text(json.dumps(meta, indent=1), out_dir / "meta.json")
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    """The `meta.json` of a prepared cache folder, with a clear error when it was never prepared."""
    path = folder / "meta.json"
    if not path.is_file():
        raise DataError(f"{folder} is not prepared (no meta.json): run "
                        f"`snakemake --profile profiles/local {path}` on a machine with the data sources")
    return json.loads(path.read_text())
