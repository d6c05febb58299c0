"""The workflow's steps as functions: train a phase, evaluate a cell. The CLI and the rules call these."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from xstilts import provenance, retrieval
from xstilts.catalogue import DATASETS, TARGETS
from xstilts.data import bitext_sides, data_facts, read_meta
from xstilts.errors import DataError
from xstilts.evaluation import qa_style, score_table
from xstilts.features import FEATURES_VERSION, Features, tokenise
from xstilts.models import (
    MaskedLMHead,
    build_model,
    load_encoder,
    load_encoder_with_mlm_head,
    load_model,
    random_encoder,
    save_encoder,
    save_model,
)
from xstilts.results_io import atomic_path, manifest_row, write_manifest, write_scores
from xstilts.settings import RetrievalSettings
from xstilts.training import HParams, Sampling, TaskData, train, write_log


def device(deterministic: bool = False) -> torch.device:
    """This process's GPU when there is one (TF32 matmuls on), else the CPU; with `deterministic`,
    deterministic kernels only (`provenance.use_deterministic_kernels`)."""
    if deterministic:
        provenance.use_deterministic_kernels()
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


@contextlib.contextmanager
def process_group() -> Iterator[int]:
    """Joins the processes torchrun started (NCCL on GPUs, gloo on the CPU); yields this one's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield 0
        return
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def cached_features(folder: Path, family: str, tokenizer: Any, hp: HParams) -> Features:
    """The tokenised training split, cached per (dataset, tokenizer, max length, stride) as parquet.

    Every target training of a grid row tokenises the same English data with the same tokenizer; the
    cache does it once. It is keyed by a hash of the tokenizer's full definition, written atomically.
    """
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None), definition.pop("padding", None)  # call state, not definition
    definition["xstilts_features"] = FEATURES_VERSION  # a change to the tokenisers invalidates the cache
    key = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / "tokenised" / f"{key}-len{hp.max_length}-stride{hp.doc_stride}.parquet"
    if path.is_file():
        columns = pq.read_table(path).to_pydict()
        lengths = columns.pop("_length")
        return Features(family, columns, lengths)
    feats = tokenise(family, pd.read_parquet(folder / "train.parquet"), tokenizer, hp.max_length,
                     doc_stride=hp.doc_stride, train=True)
    table = pa.Table.from_pydict({**feats.columns, "_length": feats.lengths})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return feats


def load_task(name: str, data_dir: Path, tokenizer: Any, hp: HParams) -> TaskData:
    """A prepared dataset, its training split tokenised (from the cache when it is there)."""
    folder = data_dir / name
    meta = read_meta(folder)
    feats = cached_features(folder, meta["family"], tokenizer, hp)
    return TaskData(name, meta["family"], meta["metric"], meta["labels"], feats,
                    pd.read_parquet(folder / "dev.parquet"), hp, qa_style(name), DATASETS[name].seqeval)


@dataclass(frozen=True)
class MLMMix:
    """Multilingual MLM batches mixed into phase (ii): `ratio` of all micro-batches are MLM."""

    corpus: Path  # a folder of *.txt files, one sentence per line
    ratio: float = 0.25
    mask_prob: float = 0.15
    max_length: int = 128
    max_lines: int = 0  # 0: every line

    def task(self, supervised: list[TaskData], tokenizer: Any) -> TaskData:
        """The MLM corpus as one more task, with as many epochs as give it `ratio` of the batches."""
        files = sorted(Path(self.corpus).glob("*.txt"))
        lines = [ln for f in files for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise DataError(f"MLM corpus {self.corpus} has no lines in *.txt files")
        lines = lines[: self.max_lines] if self.max_lines else lines
        feats = tokenise("mlm", pd.DataFrame({"text": lines}), tokenizer, self.max_length)
        hp = supervised[0].hp
        batches = sum(math.ceil(len(t.train) / t.hp.batch_size) * t.hp.epochs for t in supervised)
        epochs = self.ratio / (1 - self.ratio) * batches / math.ceil(len(feats) / hp.batch_size)
        return TaskData("mlm", "mlm", "", [], feats, None, replace(hp, epochs=epochs))


def _manifest(tmp: Path, out: Path, **fields: Any) -> None:
    """The checkpoint's manifest row (`results_io.manifest_row`), written into the folder being built."""
    row = manifest_row(tmp, **fields)
    row["path"] = str(out)
    write_manifest([row], tmp / "manifest.parquet")


def init_untrained(*, like: Path, out: Path, seed: int) -> None:
    """The untrained control's phase-(ii) checkpoint: `like` with random weights, and its manifest."""
    encoder, tokenizer = random_encoder(like, seed)
    facts = provenance.run_facts(seed=seed, deterministic=False, device="cpu", data={})  # it reads no data
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        save_encoder(encoder, tokenizer, tmp)
        _manifest(tmp, out, phase="intermediate", task="untrained", step=0, dev_metric=math.nan, run_facts=facts)


def train_phase(*, phase: str, tasks: list[str], init: Path, data_dir: Path, out: Path, state_dir: Path,
                hparams: Mapping[str, Mapping[str, Any]], seed: int, sampling: Sampling | None = None,
                mlm: MLMMix | None = None, save_every: int = 0, stop_after: int | None = None,
                deterministic: bool = False) -> dict[str, Any]:
    """Phase (ii) (`intermediate`: keep the encoder) or (iii) (`target`: keep encoder and head)."""
    start = time.perf_counter()
    dev = device(deterministic)
    extra = {}
    dropout = HParams.from_dict(dict(hparams[tasks[0]])).dropout  # the whole model's, as the config says
    if mlm is None:
        encoder, tokenizer = load_encoder(init, dropout)
    else:
        encoder, lm_head, tokenizer = load_encoder_with_mlm_head(init, dropout)
        extra["mlm"] = MaskedLMHead(lm_head, tokenizer, mlm.mask_prob)
    data = [load_task(t, data_dir, tokenizer, HParams.from_dict(dict(hparams[t]))) for t in tasks]
    heads = {t.name: {"family": t.family, "num_labels": len(t.labels)} for t in data}
    if mlm is not None:
        data.append(mlm.task(data, tokenizer))
    if data[0].hp.gradient_checkpointing:
        encoder.gradient_checkpointing_enable()
    torch.manual_seed(seed)
    model = build_model(encoder, heads, dropout=dropout, extra_heads=extra)
    with process_group() as rank:
        run = train(model, tokenizer, data, seed=seed, device=dev, state_dir=state_dir,
                    sampling=sampling or Sampling(), save_every=save_every, stop_after=stop_after)
        if rank == 0:  # one process writes the checkpoint
            model.to("cpu")
            with atomic_path(out) as tmp:
                tmp.mkdir(parents=True)
                if phase == "intermediate":
                    save_encoder(model.encoder, tokenizer, tmp)
                else:
                    save_model(model, tokenizer, tmp)
                write_log(run, tmp / "training_log.parquet")
                trained_on = {k: v for t in tasks for k, v in data_facts("train", t, read_meta(data_dir / t)).items()}
                facts = provenance.run_facts(seed=seed, deterministic=deterministic, device=device_name(dev),
                                             processes=int(os.environ.get("WORLD_SIZE", "1")), data=trained_on)
                _manifest(tmp, out, phase=phase, task="+".join(tasks), step=run.best_step,
                          dev_metric=run.best_metric, run_facts=facts)
            shutil.rmtree(state_dir, ignore_errors=True)
    return {"steps": run.step, "best_step": run.best_step, "dev_metric": run.best_metric,
            "seconds": time.perf_counter() - start}


def _classic_rows(target: str, model_dir: Path, folder: Path, meta: dict[str, Any], hp: HParams,
                  dev: torch.device) -> list[dict[str, Any]]:
    model, tokenizer = load_model(model_dir)
    model.to(dev)
    spec = TARGETS[target]
    rows = []
    for split, languages in meta["rows"].items():  # the splits each language has (udpos lacks some)
        for lang in languages:
            df = pd.read_parquet(folder / split / f"{lang}.parquet")
            scores = score_table(model, spec.trainset, df, tokenizer, family=spec.family, metric=spec.metric,
                                 labels=meta["labels"], language=lang, qa_style=qa_style(target),
                                 seqeval=spec.seqeval,
                                 max_length=hp.max_length, doc_stride=hp.doc_stride,
                                 batch_size=hp.eval_batch_size, device=dev)
            rows += [{"language": lang, "split": split, "metric": m, "value": v, "n_examples": len(df)}
                     for m, v in scores.items()]
    return rows


def _retrieval_rows(target: str, model_dir: Path, folder: Path, meta: dict[str, Any],
                    settings: RetrievalSettings, dev: torch.device) -> list[dict[str, Any]]:
    encoder, tokenizer = load_encoder(model_dir)
    encoder.to(dev).eval()
    layer = retrieval.retrieval_layer(encoder.config.num_hidden_layers) if settings.layer is None else settings.layer

    def vectors(sentences: list[str]) -> np.ndarray:
        return retrieval.embed(encoder, tokenizer, sentences, layer=layer, pooling=settings.pooling,
                               batch_size=settings.batch_size, max_length=settings.max_length, device=dev)

    rows = []
    for lang in meta["languages"]:
        if target == "tatoeba":
            df = pd.read_parquet(folder / "validation" / f"{lang}.parquet")
            foreign, english = vectors(df["source"].tolist()), vectors(df["target"].tolist())
            acc = retrieval.tatoeba_accuracy(english, foreign)  # XTREME queries with the English side
            rows.append({"language": lang, "split": "validation", "metric": "accuracy", "value": acc,
                         "n_examples": len(df)})
            continue
        # BUCC: the F1-optimal threshold on the dev pairs is applied to the test pairs.
        threshold = None
        for split in ("validation", "test"):
            # mined over every sentence (the original files add sentences without translation)
            bitext = bitext_sides(pd.read_parquet(folder / split / f"{lang}.parquet"), settings.duplicates)
            mined = retrieval.mine_pairs(vectors(bitext.sources), vectors(bitext.targets), k=settings.k)
            candidates = bitext.keyed(mined)
            if threshold is None:
                threshold = retrieval.best_threshold(candidates, bitext.gold)
            scores = retrieval.bucc_f1(candidates, bitext.gold, threshold)
            rows += [{"language": lang, "split": split, "metric": m, "value": v, "n_examples": len(bitext.gold)}
                     for m, v in scores.items()]
    return rows


def evaluate_cell(*, target: str, model_dir: Path, data_dir: Path, out: Path,
                  hparams: Mapping[str, Any], retrieval_settings: Mapping[str, Any], seed: int,
                  deterministic: bool = False) -> pd.DataFrame:
    """Every language and split of one target, from one loaded model, into one `scores.parquet`.
    `retrieval_settings`: the target's `RetrievalSettings` as a mapping (retrieval targets only); `seed`
    is the cell's (evaluation draws nothing at random; it goes into the run facts)."""
    start = time.perf_counter()
    dev = device(deterministic)
    folder = data_dir / target
    meta = read_meta(folder)
    if TARGETS[target].family == "retrieval":
        settings = RetrievalSettings.from_dict(retrieval_settings)
        rows = _retrieval_rows(target, model_dir, folder, meta, settings, dev)
    else:
        rows = _classic_rows(target, model_dir, folder, meta, HParams.from_dict(dict(hparams)), dev)
    steps = _trained_steps(model_dir)
    facts = provenance.run_facts(seed=seed, deterministic=deterministic, device=device_name(dev),
                                 data=data_facts("eval", target, meta))
    write_scores(rows, out, model=str(model_dir), steps=steps, wall_seconds=time.perf_counter() - start,
                 device=device_name(dev), run_facts=facts)
    return pd.DataFrame(rows)


def _trained_steps(model_dir: Path) -> int:
    log = model_dir / "training_log.parquet"
    return int(pd.read_parquet(log)["step"].max()) if log.is_file() else 0
