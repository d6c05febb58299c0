"""The paper's alternative rows: multilingual MLM mixed into phase (ii), and translated training data;
and the untrained control row."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from tests.test_training import classification_table
from xstilts.config import load_config
from xstilts.data import Sources, prepare_dataset
from xstilts.families import family
from xstilts.families.mlm import MaskedLMHead
from xstilts.features import IGNORE
from xstilts.grid import Grid
from xstilts.jobs import init_untrained, load_task, mlm_task, train
from xstilts.layout import Layout
from xstilts.models import load_encoder, load_encoder_with_mlm_head
from xstilts.settings import HParams, MLMSettings
from xstilts.specs import read_spec
from xstilts.training import make_plan

ROOT = Path(__file__).resolve().parents[1]


def make_grid(results: Path, model: Path, rows: list[str], **overrides: Any) -> Grid:
    """config.yaml with these rows, `model` as the base model, its results in `results`."""
    return Grid(load_config([ROOT / "config.yaml"], overrides={
        "results": str(results), "model": str(model), "rows": rows, "targets": ["xnli"], **overrides}))


def test_mlm_head_masks_fifteen_percent_of_ordinary_tokens_only(tiny_encoder: Path) -> None:
    _, lm_head, tokenizer = load_encoder_with_mlm_head(tiny_encoder)
    head = MaskedLMHead(lm_head, tokenizer, mask_prob=0.15)
    lines = pd.DataFrame({"text": [" ".join(["anna lives in paris"] * 8)] * 64})
    feats = family("mlm").tokenise(lines, tokenizer, 64)
    batch = family("mlm").collate(feats, list(range(64)), tokenizer.pad_token_id)
    assert set(batch) == {"input_ids", "attention_mask"}  # the head makes its own labels
    torch.manual_seed(0)
    masked = head.inputs(batch)
    chosen = masked["labels"] != IGNORE
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert not (chosen & special).any()
    assert torch.equal(masked["labels"][chosen], batch["input_ids"][chosen])
    fraction = chosen.sum().item() / (~special).sum().item()
    assert 0.12 < fraction < 0.18
    replaced = (masked["input_ids"] == tokenizer.mask_token_id) & chosen
    assert 0.7 < replaced.sum().item() / chosen.sum().item() < 0.9  # 80% of the chosen become <mask>
    torch.manual_seed(0)
    assert torch.equal(head.inputs(batch)["input_ids"], masked["input_ids"])  # the generator decides


def prepared(results: Path, tokenizer, n: int = 96) -> Path:
    """SST-2 as a prepared training dataset of the results folder `results` (its folder returned)."""
    folder = Layout(results).train_data("sst2")
    folder.mkdir(parents=True)
    classification_table(n, 1).to_parquet(folder / "train.parquet")
    classification_table(32, 2).to_parquet(folder / "dev.parquet")
    (folder / "meta.json").write_text(json.dumps({"name": "sst2", "family": "classification", "metric": "accuracy",
                                                  "labels": ["0", "1"]}))
    return folder


def test_mlm_batches_take_the_configured_share_of_the_plan(tiny_encoder: Path, tmp_path: Path) -> None:
    _, _, tokenizer = load_encoder_with_mlm_head(tiny_encoder)
    folder = prepared(tmp_path, tokenizer)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "de.txt").write_text("\n".join(["anna wohnt in berlin"] * 50))
    hp = HParams(batch_size=16, epochs=3, max_length=32)
    sst2 = load_task("sst2", folder, tokenizer, hp)
    mlm = mlm_task(MLMSettings(corpus=str(tmp_path / "corpus"), ratio=0.25), [sst2], tokenizer)
    assert mlm.dev is None and mlm.family is family("mlm") and mlm.hp.batch_size == 16
    plan = make_plan([sst2, mlm], seed=0)
    share = sum(1 for t, _ in plan if t == 1) / len(plan)
    assert share == pytest.approx(0.25, abs=0.03)  # 18 supervised batches, 6 MLM batches


SST2 = {"lr": 1e-3, "batch_size": 16, "grad_accum": 1, "epochs": 2, "max_length": 32}


def test_mlm_mixed_training_keeps_only_the_encoder(tiny_encoder: Path, tmp_path: Path) -> None:
    _, _, tokenizer = load_encoder_with_mlm_head(tiny_encoder)
    prepared(tmp_path, tokenizer, n=48)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "ru.txt").write_text("\n".join(["анна живёт в москве"] * 40))
    variants = {"sst2_mlm": {"task": "sst2", "mlm": {"corpus": str(tmp_path / "corpus"), "ratio": 0.5}}}
    grid = make_grid(tmp_path, tiny_encoder, ["sst2_mlm"], variants=variants, training={"tasks": {"sst2": SST2}})
    spec = grid.train_intermediate("sst2_mlm", 0)
    assert spec.tasks == ("sst2",) and spec.mlm == MLMSettings(corpus=str(tmp_path / "corpus"), ratio=0.5)
    summary = train(spec)
    assert summary["steps"] == 2 * 3 * 2  # supervised 2 epochs x 3 batches, as many MLM batches
    out = spec.out
    log = pd.read_parquet(out / "training_log.parquet")
    assert log["loss"].notna().all()
    from safetensors.torch import load_file

    weights = load_file(str(out / "model.safetensors"))
    assert weights and not [k for k in weights if "lm_head" in k]  # the phase-(ii) head is thrown away
    facts = json.loads(pd.read_parquet(out / "manifest.parquet")["run_facts"].iat[0])
    assert facts["seed"] == 0 and facts["processes"] == 1 and "transformers" in facts["versions"]
    assert read_spec(out) == spec and not spec.state.exists()  # its spec beside it; the state cleaned up


def test_translations_are_added_to_the_english_training_split(tmp_path: Path) -> None:
    mirror = tmp_path / "hub"
    glue = mirror / "nyu-mll" / "glue" / "sst2"
    glue.mkdir(parents=True)
    english = pd.DataFrame({"sentence": ["a good film", "a bad film"], "label": [1, 0], "idx": [0, 1]})
    english.to_parquet(glue / "train.parquet")
    english.to_parquet(glue / "validation.parquet")
    for lang, words in {"de": ["ein guter film", "ein schlechter film"], "zh": ["好 电影", "坏 电影"]}.items():
        (tmp_path / "mt" / lang).mkdir(parents=True)
        pd.DataFrame({"sentence": words, "label": [1, 0], "idx": [0, 1]}).to_parquet(
            tmp_path / "mt" / lang / "train.parquet")
    meta = prepare_dataset("sst2", tmp_path / "out", Sources(hub_mirror=mirror),
                           translations={"source": str(tmp_path / "mt"), "languages": ["de", "zh"]})
    train = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert meta["rows"] == {"train": 6, "dev": 2}
    assert train["text_a"].tolist() == ["a good film", "a bad film", "ein guter film", "ein schlechter film",
                                        "好 电影", "坏 电影"]
    assert train["label"].tolist() == [1, 0] * 3


def test_untrained_control_is_the_architecture_with_seeded_random_weights(tiny_encoder: Path, tmp_path: Path) -> None:
    spec = make_grid(tmp_path / "results", tiny_encoder, ["untrained"]).init_untrained(1)
    assert spec.like == tiny_encoder and spec.seed == 1
    init_untrained(replace(spec, out=tmp_path / "a"))
    init_untrained(replace(spec, out=tmp_path / "b"))
    init_untrained(replace(spec, out=tmp_path / "c", seed=2))
    pretrained = load_encoder(tiny_encoder)[0].state_dict()
    weights = {name: load_encoder(tmp_path / name)[0].state_dict() for name in "abc"}
    key = "embeddings.word_embeddings.weight"
    assert weights["a"].keys() == pretrained.keys() and weights["a"][key].shape == pretrained[key].shape
    assert torch.equal(weights["a"][key], weights["b"][key])  # seeded
    assert not torch.equal(weights["a"][key], weights["c"][key]) and not torch.equal(weights["a"][key], pretrained[key])
    manifest = pd.read_parquet(tmp_path / "a" / "manifest.parquet")
    assert manifest.loc[0, "task"] == "untrained" and manifest.loc[0, "path"] == str(tmp_path / "a")
    assert (tmp_path / "a" / "tokenizer.json").is_file() and not list(tmp_path.glob(".*"))  # renamed into place
    assert read_spec(tmp_path / "c") == replace(spec, out=tmp_path / "c", seed=2)


def test_checkpoint_manifests_say_what_data_the_training_read(tiny_encoder: Path, tmp_path: Path) -> None:
    _, _, tokenizer = load_encoder_with_mlm_head(tiny_encoder)
    folder = prepared(tmp_path, tokenizer, n=32)
    meta = json.loads((folder / "meta.json").read_text())
    origins = [{"folder": "/data/sst2", "files": 2, "sha256": "ab" * 32}]
    (folder / "meta.json").write_text(json.dumps({**meta, "data": origins}))
    grid = make_grid(tmp_path, tiny_encoder, ["sst2", "untrained"], training={"tasks": {"sst2": {**SST2, "epochs": 1}}})
    spec = grid.train_intermediate("sst2", 0)
    assert spec.data == {"sst2": folder} and spec.mlm is None
    train(spec)
    facts = json.loads(pd.read_parquet(spec.out / "manifest.parquet")["run_facts"].iat[0])
    assert facts["data"] == {"train/sst2": {"origins": origins}}
    untrained = replace(grid.init_untrained(1), out=tmp_path / "untrained")
    init_untrained(untrained)
    assert json.loads(pd.read_parquet(untrained.out / "manifest.parquet")["run_facts"].iat[0])["data"] == {}
