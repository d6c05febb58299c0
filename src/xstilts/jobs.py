"""The workflow's jobs, one function per kind of job spec (`xstilts.specs`): the CLI runs them for the
rules, `xstilts submit` through `run`. Every job writes its spec beside its outputs.

Torch and transformers are imported by the jobs that compute, so that preparing data and writing the
demo's world start in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xstilts.catalogue import DATASETS, TARGETS
from xstilts.data import data_facts, read_meta
from xstilts.errors import DataError
from xstilts.layout import MANIFEST_FILE, SPEC_FILE, TRAINING_LOG_FILE
from xstilts.results_io import atomic_path
from xstilts.settings import retrieval_layer
from xstilts.specs import (
    AlignSpec,
    DemoDataSpec,
    DemoPretrainSpec,
    EvaluateSpec,
    FetchModelSpec,
    InitUntrainedSpec,
    PrepareSpec,
    Spec,
    TrainSpec,
    read_spec,
)

if TYPE_CHECKING:
    import torch

    from xstilts.evaluation import TableResult
    from xstilts.families import Family
    from xstilts.features import Features
    from xstilts.settings import HParams, MLMSettings
    from xstilts.training import TaskData


def run(spec: Spec) -> Any:
    """Run one job of the grid (the aggregate job needs the whole grid: `report.aggregate`)."""
    from xstilts.alignment import align

    runners = {DemoDataSpec: demo_data, DemoPretrainSpec: demo_pretrain, FetchModelSpec: fetch_model,
               PrepareSpec: prepare, InitUntrainedSpec: init_untrained, TrainSpec: train, EvaluateSpec: evaluate,
               AlignSpec: align}
    return runners[type(spec)](spec)


# --------------------------------------------------------------------------------------------------
# Data and phase (i)


def demo_data(spec: DemoDataSpec) -> None:
    from xstilts.demo.world import DemoSizes, generate_hub_mirror

    generate_hub_mirror(spec.out, spec.languages, seed=spec.seed, sizes=DemoSizes(**spec.sizes),
                        translations=spec.translations)
    spec.write(spec.out)


def demo_pretrain(spec: DemoPretrainSpec) -> dict[str, float]:
    from xstilts.demo.pretrain import TinyModel, pretrain

    summary = pretrain(spec.corpus, spec.out, TinyModel(**spec.model))
    spec.write(spec.out)
    return summary


def fetch_model(spec: FetchModelSpec) -> None:
    """Download a hub model once (login node), so GPU jobs load it from disk with the hub offline.

    Saved with its MLM head, which the MLM-mixed rows train; `AutoModel` loads the encoder alone."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    with atomic_path(spec.out) as tmp:
        AutoTokenizer.from_pretrained(spec.model).save_pretrained(tmp)
        AutoModelForMaskedLM.from_pretrained(spec.model).save_pretrained(tmp, safe_serialization=True)
        spec.write(tmp)


def prepare(spec: PrepareSpec) -> dict[str, Any]:
    """A dataset's or a target's parquet cache (`xstilts.data`); its meta.json is written last."""
    from xstilts.data import Sources, prepare_dataset, prepare_target

    spec.write(spec.out)
    sources = Sources.from_config(spec.sources)
    if spec.what == "dataset":
        return prepare_dataset(spec.task, spec.out, sources, translations=spec.translations)
    return prepare_target(spec.name, list(spec.languages), spec.out, sources)


# --------------------------------------------------------------------------------------------------
# Training


def tokenised_cache(folder: Path, tokenizer_key: str, hp: HParams) -> Path:
    """Where a dataset's training split lies tokenised for a tokenizer (its key; "*": any) and lengths."""
    return folder / "tokenised" / f"{tokenizer_key}-len{hp.max_length}-stride{hp.doc_stride}.parquet"


def tokenizer_key(tokenizer: Any) -> str:
    """A hash of a tokenizer's full definition and of the features' version: what a tokenised cache is keyed by."""
    from xstilts.features import FEATURES_VERSION

    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None), definition.pop("padding", None)  # call state, not definition
    definition["xstilts_features"] = FEATURES_VERSION  # a change to the tokenisers invalidates the cache
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def cached_features(folder: Path, fam: Family, tokenizer: Any, hp: HParams) -> Features:
    """The tokenised training split, cached per (dataset, tokenizer, max length, stride) as parquet.

    Every target training of a grid row tokenises the same English data with the same tokenizer; the
    cache does it once. It is keyed by a hash of the tokenizer's full definition, written atomically.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xstilts.features import Features

    path = tokenised_cache(folder, tokenizer_key(tokenizer), hp)
    if path.is_file():
        columns = pq.read_table(path).to_pydict()
        lengths = columns.pop("_length")
        return Features(columns, lengths)
    feats = fam.tokenise(pd.read_parquet(folder / "train.parquet"), tokenizer, hp.max_length,
                         doc_stride=hp.doc_stride)
    table = pa.Table.from_pydict({**feats.columns, "_length": feats.lengths})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return feats


def load_task(name: str, folder: Path, tokenizer: Any, hp: HParams) -> TaskData:
    """A prepared dataset (`folder`), its training split tokenised (from the cache when it is there)."""
    from xstilts.families import Scoring, family
    from xstilts.training import TaskData

    meta = read_meta(folder)
    task = DATASETS[meta["name"]]  # the catalogue entry it was prepared from (a variant's: its task's)
    fam = family(task.family)
    return TaskData(name, fam, cached_features(folder, fam, tokenizer, hp), pd.read_parquet(folder / "dev.parquet"),
                    hp, Scoring.of(task, meta["labels"]))


def mlm_task(settings: MLMSettings, supervised: list[TaskData], tokenizer: Any) -> TaskData:
    """The MLM corpus as one more task, with as many epochs as give it `ratio` of the batches (batch size
    and lengths: the first supervised task's)."""
    from xstilts.families import family
    from xstilts.training import TaskData

    files = sorted(Path(settings.corpus).glob("*.txt"))
    lines = [ln for f in files for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"MLM corpus {settings.corpus} has no lines in *.txt files")
    lines = lines[: settings.max_lines] if settings.max_lines else lines
    fam = family("mlm")
    feats = fam.tokenise(pd.DataFrame({"text": lines}), tokenizer, settings.max_length)
    hp = supervised[0].hp
    batches = sum(math.ceil(len(t.train) / t.hp.batch_size) * t.hp.epochs for t in supervised)
    epochs = settings.ratio / (1 - settings.ratio) * batches / math.ceil(len(feats) / hp.batch_size)
    return TaskData("mlm", fam, feats, None, replace(hp, epochs=epochs))


def _manifest(tmp: Path, out: Path, **fields: Any) -> None:
    """The checkpoint's manifest row (`results_io.manifest_row`), written into the folder being built."""
    from xstilts.results_io import manifest_row, write_manifest

    row = manifest_row(tmp, **fields)
    row["path"] = str(out)
    write_manifest([row], tmp / MANIFEST_FILE)


def init_untrained(spec: InitUntrainedSpec) -> None:
    """The untrained control's phase-(ii) checkpoint: the base model with random weights, and its manifest."""
    from xstilts import provenance
    from xstilts.models import random_encoder, save_encoder

    encoder, tokenizer = random_encoder(spec.like, spec.seed)
    facts = provenance.run_facts(seed=spec.seed, deterministic=False, device="cpu", data={})  # it reads no data
    with atomic_path(spec.out) as tmp:
        tmp.mkdir(parents=True)
        save_encoder(encoder, tokenizer, tmp)
        _manifest(tmp, spec.out, phase="intermediate", task="untrained", step=0, dev_metric=math.nan,
                  run_facts=facts)
        spec.write(tmp)


def train(spec: TrainSpec, stop_after: int | None = None) -> dict[str, Any]:
    """Phase (ii) (`intermediate`: keep the encoder) or (iii) (`target`: keep encoder and head).
    `stop_after` ends the run as if preempted after that many steps (tests of resumption)."""
    import torch

    from xstilts import provenance, runtime
    from xstilts.families.mlm import MaskedLMHead
    from xstilts.models import (
        build_model,
        continue_head,
        load_encoder,
        load_encoder_with_mlm_head,
        part,
        save_encoder,
        save_model,
    )
    from xstilts.packing import implementation
    from xstilts.training import gathered_state, transformer_layers, write_log
    from xstilts.training import train as train_loop

    start = time.perf_counter()
    dev = runtime.device(spec.deterministic)
    optim, execution = spec.optim, spec.execution
    try:
        attention = implementation(execution.attention, dev)
    except RuntimeError as err:
        raise DataError(str(err)) from None
    extra = {}
    if spec.mlm is None:
        encoder, tokenizer = load_encoder(spec.init, optim.dropout, attention)
    else:
        encoder, lm_head, tokenizer = load_encoder_with_mlm_head(spec.init, optim.dropout, attention)
        extra["mlm"] = MaskedLMHead(lm_head, tokenizer, spec.mlm.mask_prob)
    data = [load_task(t, spec.data[t], tokenizer, spec.hparams[t]) for t in spec.tasks]
    heads = {t.name: {"family": t.family.name, "num_labels": len(t.scoring.labels)} for t in data}
    if spec.mlm is not None:
        data.append(mlm_task(spec.mlm, data, tokenizer))
    if optim.gradient_checkpointing:
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if execution.compile and dev.type == "cuda":
        for layer in transformer_layers(encoder):
            layer.compile(dynamic=True)
    torch.manual_seed(spec.seed)
    model = build_model(encoder, heads, dropout=optim.dropout, extra_heads=extra)
    if spec.phase == "target" and DATASETS[spec.tasks[0]].after:  # a later stage: the earlier stage's head goes on
        continue_head(model, spec.init, spec.tasks[0])
    with runtime.process_group(always=execution.parallel == "fsdp") as rank:
        run_state = train_loop(model, tokenizer, data, optim=optim, seed=spec.seed, device=dev, state_dir=spec.state,
                               sampling=spec.sampling, save_every=spec.save_every, stop_after=stop_after,
                               execution=execution)
        state = gathered_state(model)  # a sharded model's weights, gathered once (every process takes part)
        if rank == 0:  # one process writes the checkpoint
            if state is None:
                model.to("cpu")
            with atomic_path(spec.out) as tmp:
                tmp.mkdir(parents=True)
                if spec.phase == "intermediate":
                    save_encoder(model.encoder, tokenizer, tmp, None if state is None else part(state, "encoder."))
                else:
                    save_model(model, tokenizer, tmp, state)
                write_log(run_state, tmp / TRAINING_LOG_FILE)
                trained_on = {k: v for t in spec.tasks
                              for k, v in data_facts("train", t, read_meta(spec.data[t])).items()}
                facts = provenance.run_facts(seed=spec.seed, deterministic=spec.deterministic,
                                             device=runtime.device_name(dev), processes=runtime.world_size(),
                                             parallel=execution.parallel, attention=attention, data=trained_on)
                _manifest(tmp, spec.out, phase=spec.phase, task="+".join(spec.tasks), step=run_state.best_step,
                          dev_metric=run_state.best_metric, run_facts=facts)
                spec.write(tmp)
            shutil.rmtree(spec.state, ignore_errors=True)
    return {"steps": run_state.step, "best_step": run_state.best_step, "dev_metric": run_state.best_metric,
            "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------------
# Evaluation

ScoreRows = list[dict[str, Any]]


def _checkpoint_settings(model_dir: Path) -> tuple[str, HParams]:
    """The head and the data settings (lengths, evaluation batch size) of a phase-(iii) checkpoint, from the
    spec it was trained with."""
    spec = read_spec(model_dir)
    if not isinstance(spec, TrainSpec) or spec.trainset is None:
        raise DataError(f"{model_dir / SPEC_FILE} is missing or is not a phase-(iii) training's spec (made before "
                        "job specs were recorded?): train it again, e.g. with `xstilts rerun ROW TARGET`")
    return spec.trainset, spec.hparams[spec.trainset]


def _perturbed(spec: EvaluateSpec, df: pd.DataFrame, split: str, language: str, condition: str,
               languages: list[str]) -> pd.DataFrame | None:
    """The sample of `df` (one language and split of the target; `conditions.sample_rows`) under a perturbation:
    from the target's cache, else made and cached (`layout.perturbed_table`, keyed by the clean table, the
    settings, the seed and the lexicons read); None where it changes nothing (no language to switch into)."""
    from xstilts.conditions import CONDITIONS, VERSION, perturb, settings_of, switch_languages
    from xstilts.layout import perturbed_table
    from xstilts.results_io import write_parquet

    assert spec.robustness is not None and spec.perturbed is not None
    settings = settings_of(spec.robustness, condition)
    switches, read = None, ""
    if CONDITIONS[condition].lexicon:
        into = switch_languages(language, settings.languages, languages)
        if not into:
            return None
        switches, read = _switches(spec, language, into)
    facts = {"table": hashlib.sha256((spec.data / split / f"{language}.parquet").read_bytes()).hexdigest(),
             "condition": condition, "settings": asdict(settings), "seed": spec.robustness.seed,
             "sample": spec.robustness.sample, "lexicons": read, "version": VERSION}
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    path = perturbed_table(spec.perturbed, condition, key, split, language)
    if path.is_file():
        return pd.read_parquet(path)
    table = perturb(_sample(spec, df, split, language), TARGETS[spec.target].family, condition, settings, language,
                    spec.robustness.seed, switches)
    write_parquet(table, path)
    return table


def _picked(spec: EvaluateSpec, n: int, split: str, language: str) -> list[int]:
    """The rows of an n-row table the perturbations are scored on (`robustness.sample`)."""
    from xstilts.conditions import sample_rows

    assert spec.robustness is not None
    return sample_rows(n, spec.robustness.sample, spec.robustness.seed, language, split)


def _sample(spec: EvaluateSpec, df: pd.DataFrame, split: str, language: str) -> pd.DataFrame:
    """The sampled rows of a table, each with its id in the whole table (`Family.ids`: else its row number)."""
    df = df if "id" in df else df.assign(id=[str(i) for i in range(len(df))])
    return df.iloc[_picked(spec, len(df), split, language)].reset_index(drop=True)


def _switches(spec: EvaluateSpec, language: str, into: tuple[str, ...]) -> tuple[Any, str]:
    """The lexicons' translations of `language`'s words into `into`, and a digest of the files read."""
    from xstilts import lexicons

    assert spec.lexicons is not None
    try:
        return lexicons.switches(spec.lexicons, language, into)
    except FileNotFoundError as err:
        raise DataError(f"{err}; a demo world generated before it wrote lexicons lacks them: `make clean-demo`"
                        ) from None


def _attack(spec: EvaluateSpec, df: pd.DataFrame, split: str, language: str, languages: list[str],
            clean: TableResult, oracle: Any, show: Any) -> tuple[dict[str, float], list[dict[str, Any]]] | None:
    """The adversarial condition on the sample of one table (`xstilts.attack`): its metrics and per-example
    records (labels as `show` writes them); None where there is no language to switch into."""
    from xstilts.attack import attack_metrics, greedy_attack
    from xstilts.conditions import switch_languages

    assert spec.robustness is not None
    settings = spec.robustness.adversarial
    into = switch_languages(language, settings.languages, languages)
    if not into:
        return None
    switches, _ = _switches(spec, language, into)
    picked = _picked(spec, len(df), split, language)
    texts = [(df["text_a"].iat[i], df["text_b"].iat[i] if "text_b" in df else None) for i in picked]
    golds = [int(df["label"].iat[i]) for i in picked]
    found = greedy_attack(texts, golds, [clean.predictions[i] for i in picked], switches, oracle, k=settings.k,
                          budget=settings.budget, seed=spec.robustness.seed)
    return attack_metrics(found, golds), [
        {"id": clean.ids[i], "prediction": show(r.prediction), "gold": show(g), "score": 100.0 * (r.prediction == g)}
        for i, r, g in zip(picked, found, golds, strict=True)]


def _classic_rows(spec: EvaluateSpec, meta: dict[str, Any], dev: torch.device) -> tuple[ScoreRows, ScoreRows]:
    """Classification, tagging and QA: the target-trained model on every language and split, clean, and on the
    report split (the one the tables show) under every perturbation."""
    from xstilts.conditions import ADVERSARIAL, CLEAN, CLEAN_SAMPLE
    from xstilts.evaluation import class_probabilities, evaluate_table
    from xstilts.families import Scoring, family
    from xstilts.models import load_model

    head, hp = _checkpoint_settings(spec.model)
    model, tokenizer = load_model(spec.model)
    model.to(dev)
    target = TARGETS[spec.target]
    scoring, fam = Scoring.of(target, meta["labels"]), family(target.family)
    options = {"max_length": hp.max_length, "batch_size": hp.eval_batch_size, "device": dev}

    def oracle(texts: list[tuple[str | None, ...]]) -> Any:
        frame = pd.DataFrame({"text_a": [t[0] for t in texts], "text_b": [t[1] for t in texts], "label": 0})
        return class_probabilities(model, head, scoring, frame, tokenizer, **options)

    rows, predictions = [], []
    for split, languages in meta["rows"].items():  # the splits each language has (udpos lacks some)
        for lang in languages:
            df = pd.read_parquet(spec.data / split / f"{lang}.parquet")
            clean = evaluate_table(model, head, scoring, df, tokenizer, language=lang, doc_stride=hp.doc_stride,
                                   **options)
            for condition in spec.conditions if split == target.report_split else (CLEAN,):
                if condition == CLEAN:
                    found = clean.metrics, clean.records(fam, scoring)
                elif condition == CLEAN_SAMPLE:  # the clean predictions of the sample: no forward pass
                    picked = _picked(spec, len(df), split, lang)
                    records = clean.records(fam, scoring)
                    found = (fam.score([clean.predictions[i] for i in picked], [clean.golds[i] for i in picked],
                                       scoring, lang), [records[i] for i in picked])
                elif condition == ADVERSARIAL:
                    found = _attack(spec, df, split, lang, meta["languages"], clean, oracle,
                                    lambda label: fam.show(label, scoring))
                elif (table := _perturbed(spec, df, split, lang, condition, meta["languages"])) is not None:
                    result = evaluate_table(model, head, scoring, table, tokenizer, language=lang,
                                            doc_stride=hp.doc_stride, **options)
                    found = result.metrics, result.records(fam, scoring)
                else:
                    found = None
                if found is None:
                    continue
                where = {"language": lang, "split": split, "condition": condition}
                rows += [{**where, "metric": m, "value": v, "n_examples": len(found[1])} for m, v in found[0].items()]
                predictions += [{**where, **record} for record in found[1]]
    return rows, predictions


def _retrieval_rows(spec: EvaluateSpec, meta: dict[str, Any], dev: torch.device) -> tuple[ScoreRows, ScoreRows]:
    """BUCC, Tatoeba, Mewsli-X and LAReQA: the row's encoder, pooled sentence vectors, the target's search
    (a pool search is scored clean only: `config.check_robustness` refuses perturbations of it)."""
    import numpy as np

    from xstilts import retrieval
    from xstilts.conditions import CLEAN, CLEAN_SAMPLE
    from xstilts.families import family
    from xstilts.models import load_encoder

    encoder, tokenizer = load_encoder(spec.model)
    encoder.to(dev).eval()
    settings, target = spec.retrieval, TARGETS[spec.target]
    layer = retrieval_layer(encoder.config.num_hidden_layers) if settings.layer is None else settings.layer
    known: dict[str, np.ndarray] = {}  # with perturbations: every sentence's vector, the clean ones as computed

    def embed(sentences: list[str]) -> np.ndarray:
        return retrieval.embed(encoder, tokenizer, sentences, layer=layer, pooling=settings.pooling,
                               batch_size=settings.batch_size, max_length=settings.max_length, device=dev)

    def clean_vectors(sentences: list[str]) -> np.ndarray:
        found = embed(sentences)
        if len(spec.conditions) > 1:
            known.update(zip(sentences, found, strict=True))
        return found

    def vectors(sentences: list[str]) -> np.ndarray:
        """The sentences' vectors, computing only those not seen (the English side of a pair is the clean one)."""
        missing = list(dict.fromkeys(s for s in sentences if s not in known))
        if missing:
            known.update(zip(missing, embed(missing), strict=True))
        return np.stack([known[s] for s in sentences]) if sentences else embed([])

    tables = {lang: {split: pd.read_parquet(spec.data / split / f"{lang}.parquet") for split in target.splits_for(lang)}
              for lang in meta["languages"]}
    rows, predictions = [], []
    if target.search == "pool":  # one pool of every language's candidates
        scores, found = family("retrieval").pool(tables, clean_vectors)
        return [{"condition": CLEAN, **row} for row in scores], [{"condition": CLEAN, **row} for row in found]
    for lang in meta["languages"]:
        for condition in spec.conditions:
            if condition == CLEAN:
                transformed, search = tables[lang], clean_vectors
            elif condition == CLEAN_SAMPLE:
                transformed = {split: _sample(spec, df, split, lang) for split, df in tables[lang].items()}
                search = vectors
            else:
                transformed = {split: _perturbed(spec, df, split, lang, condition, meta["languages"])
                               for split, df in tables[lang].items()}
                search = vectors
            if any(df is None for df in transformed.values()):
                continue
            scores, found = family("retrieval").evaluate(target.search, transformed, search, settings)
            where = {"language": lang, "condition": condition}
            rows += [{**where, **row} for row in scores]
            predictions += [{**where, **row} for row in found]
    return rows, predictions


def evaluate(spec: EvaluateSpec) -> pd.DataFrame:
    """Every language and split of one target under every condition, from one loaded model, into one
    `scores.parquet` and one `predictions.parquet` (the cell's seed goes into the run facts: evaluation
    draws nothing at random; a perturbation draws from the robustness seed)."""
    from xstilts import provenance, runtime
    from xstilts.results_io import write_predictions, write_scores

    start = time.perf_counter()
    dev = runtime.device(spec.deterministic)
    meta = read_meta(spec.data)
    evaluate_rows = _retrieval_rows if TARGETS[spec.target].trainset is None else _classic_rows
    rows, predictions = evaluate_rows(spec, meta, dev)
    facts = provenance.run_facts(seed=spec.seed, deterministic=spec.deterministic, device=runtime.device_name(dev),
                                 data=data_facts("eval", spec.target, meta))
    spec.write(spec.out.parent)
    write_predictions(predictions, spec.predictions)
    write_scores(rows, spec.out, model=str(spec.model), steps=_trained_steps(spec.model),
                 wall_seconds=time.perf_counter() - start, device=runtime.device_name(dev), run_facts=facts)
    return pd.DataFrame(rows)


def _trained_steps(model_dir: Path) -> int:
    log = model_dir / TRAINING_LOG_FILE
    return int(pd.read_parquet(log)["step"].max()) if log.is_file() else 0
