"""`xstilts plan`: FLOPs as torch counts them, parameters and memory of the known XLM-R sizes, MFU, tokens
from the prepared caches or the catalogue, calibration from finished jobs, the paper grid's bill, `--check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import XLMRobertaConfig, XLMRobertaModel

from tests.grids import ROOT, make_grid
from tests.test_variants import prepared
from xstilts.architectures import ARCHITECTURES, Architecture, architecture
from xstilts.catalogue import TARGETS
from xstilts.config import load_config
from xstilts.devices import DEVICES, device_for, mfu, peak_flops
from xstilts.grid import Grid
from xstilts.lexicons import file_name
from xstilts.models import load_encoder
from xstilts.plan import (
    Rate,
    Work,
    calibrate,
    check,
    plan,
    shards_needed,
    suggested_resources,
    training_memory,
)

TINY = XLMRobertaConfig(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=80, type_vocab_size=1, pad_token_id=1)


def test_forward_and_training_flops_are_what_torch_counts() -> None:
    model = XLMRobertaModel(XLMRobertaConfig(**{**TINY.to_dict(), "attn_implementation": "eager"}),
                            add_pooling_layer=False)
    arch = Architecture.from_config(TINY.to_dict())
    ids = torch.randint(3, 120, (5, 40))
    with FlopCounterMode(display=False) as forward:
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert forward.get_total_flops() == arch.forward_flops([40] * 5)
    with FlopCounterMode(display=False) as training:
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.sum().backward()
    assert training.get_total_flops() == 3 * arch.forward_flops([40] * 5)


def test_known_architectures_have_their_published_sizes() -> None:
    assert Architecture.from_config(TINY.to_dict()).params == sum(p.numel() for p in XLMRobertaModel(TINY).parameters())
    billions = {name: round(a.params / 1e9, 2) for name, a in ARCHITECTURES.items()}
    assert billions["xlm-roberta-base"] == 0.28 and billions["xlm-roberta-large"] == 0.56
    assert billions["facebook/xlm-roberta-xl"] == 3.48 and billions["facebook/xlm-roberta-xxl"] == 10.71
    # mixed-precision AdamW: 18 bytes per parameter before activations (XL ~63 GB, XXL ~193 GB)
    none = Work(0, 0, "catalogue", batch=0, length=0)
    for name, gb in (("facebook/xlm-roberta-xl", 63), ("facebook/xlm-roberta-xxl", 193)):
        memory = training_memory(ARCHITECTURES[name], none, processes=1, sharded=False, offload=False,
                                 checkpointing=False)
        assert round((memory.device - 1.5 * 2 ** 30) / 1e9) == gb
    with pytest.raises(ValueError, match="no architecture known for model 'someone/else'"):
        architecture("someone/else")


def test_shards_needed_grow_with_the_model_and_fall_with_offload() -> None:
    h100, nli = DEVICES["H100"], Work(0, 0, "catalogue", batch=4, length=256)
    choices = Work(0, 0, "catalogue", batch=4, sequences=4, length=256)  # 4 x 4 sequences of 256 a micro-batch

    def shards(name: str, work: Work = nli, **options: bool) -> int | None:
        return shards_needed(ARCHITECTURES[name], work, h100, **{"sharded": False, "offload": False,
                                                                  "checkpointing": False, **options})

    assert shards("xlm-roberta-large") == 1 and shards("facebook/xlm-roberta-xl") == 1  # 63 GB + activations
    assert shards("facebook/xlm-roberta-xl", choices) == 2
    assert shards("facebook/xlm-roberta-xl", choices, checkpointing=True) == 1
    assert shards("facebook/xlm-roberta-xxl") == 4
    assert shards("facebook/xlm-roberta-xxl", offload=True) == 2  # 20 bytes a parameter on the host instead
    huge = Work(0, 0, "catalogue", batch=4096, length=512)
    assert shards_needed(ARCHITECTURES["facebook/xlm-roberta-xxl"], huge, h100, sharded=True, offload=True,
                         checkpointing=False, most=64) is None  # the activations alone overflow it


def test_mfu_against_the_devices_peak() -> None:
    assert device_for("NVIDIA H100 80GB HBM3").name == "H100"
    assert device_for("NVIDIA H100 PCIe").name == "H100-PCIe"
    assert device_for("NVIDIA A100-SXM4-80GB").name == "A100-80GB"
    assert device_for("NVIDIA A100-PCIE-40GB").name == "A100"
    assert device_for("NVIDIA H200").name == "H200" and device_for("Tesla T4") is None
    # 6 x 302M parameters x 200k tokens/s on an H100: 37% of 989 TFLOP/s
    flops = 6 * ARCHITECTURES["xlm-roberta-large"].matmul_params * 200_000
    assert mfu(flops, 1.0, peak_flops("NVIDIA H100 80GB HBM3")) == pytest.approx(0.3665, abs=1e-3)
    assert peak_flops("cpu", threads=4) == 4 * DEVICES["cpu"].peak_flops
    assert pd.isna(mfu(1e12, 1.0, None))


def test_calibration_recovers_rates_and_time_per_job_and_task() -> None:
    fallback = {rule: Rate(1.0, 99.0, "configured") for rule in ("train_intermediate", "train_target", "evaluate")}
    # seconds = 5 (xnli) or 9 (bucc) + FLOPs / 2 GFLOP/s
    evaluations = [(task, f, base + f / 2e9, 1, None) for task, base in (("xnli", 5.0), ("bucc", 9.0))
                   for f in (2e9, 6e9)]
    trainings = [("mnli", f, 20.0 + f / (2 * 1e10), 2, 1e10) for f in (1e11, 3e11)]  # logged 10 GFLOP/s a process
    rates = calibrate({"evaluate": evaluations, "train_target": trainings, "train_intermediate": []}, fallback)
    assert rates["evaluate", "xnli"].overhead_s == pytest.approx(5) and rates["evaluate", "bucc"].overhead_s == \
        pytest.approx(9)
    assert rates["evaluate", None].flops_per_s == pytest.approx(2e9)  # one fit over the rule's jobs
    assert (rates["train_target", None].flops_per_s, rates["train_target", "mnli"].overhead_s) == \
        (1e10, pytest.approx(20))
    assert rates["train_intermediate", None] == fallback["train_intermediate"]
    assert rates["evaluate", "xnli"].source == "measured (4 jobs, 2 of xnli)"


def test_tokens_come_from_the_prepared_cache_once_it_exists(tiny_encoder: Path, tmp_path: Path) -> None:
    grid = Grid(load_config([ROOT / "config.yaml"], overrides={
        "results": str(tmp_path), "model": str(tiny_encoder), "rows": ["sst2"], "targets": ["tatoeba"],
        "training": {"tasks": {"sst2": {"epochs": 3, "max_length": 32}}}}))
    before = plan(grid).set_index("job")
    assert before.loc["intermediate sst2 1", "tokens_from"] == "catalogue"
    assert before.loc["intermediate sst2 1", "tokens"] == 3 * 67_349 * 14  # epochs x typical rows x tokens
    _, tokenizer = load_encoder(tiny_encoder)
    folder = prepared(tmp_path, tokenizer, n=64)
    after = plan(grid).set_index("job")
    train = pd.read_parquet(folder / "train.parquet")
    lengths = tokenizer(train["text_a"].tolist(), truncation=True, max_length=32)["input_ids"]
    assert after.loc["intermediate sst2 1", "tokens_from"] == "cache"
    assert after.loc["intermediate sst2 1", "tokens"] == 3 * sum(map(len, lengths))
    assert len(list((folder / "tokenised").glob("*-len32-*.parquet"))) == 1  # the cache the training then reads
    assert after.loc["intermediate sst2 1", "architecture_from"].endswith("config.json")


def test_the_paper_grid_plans_and_xxl_needs_sharding(tmp_path: Path) -> None:
    large = plan(make_grid(tmp_path, ["none", "mnli", "multitask"], ["xnli", "tatoeba"]))
    assert set(large["rule"]) == {"train_intermediate", "train_target", "evaluate"}
    assert (large["tokens_from"] == "catalogue").all() and (large["shards_needed"] == 1).all()
    mnli = large.set_index("job").loc["intermediate mnli 1"]
    assert mnli["tokens"] == 2 * 392_702 * 42 and mnli["flops"] > 6 * 302e6 * mnli["tokens"]  # + attention, dev
    assert check(large, DEVICES["H100"]) == []
    xxl_grid = Grid(load_config([ROOT / "config.yaml"], overrides={
        "results": str(tmp_path), "model": "facebook/xlm-roberta-xxl", "rows": ["none", "mnli"], "targets": ["xnli"]}))
    xxl = plan(xxl_grid)
    problems = check(xxl, DEVICES["H100"])
    assert "intermediate mnli 1: needs 201 GB per GPU unsharded (a H100 has 80): set execution parallel: fsdp " \
           "with >= 4 GPUs" in problems
    overlay = suggested_resources(xxl_grid, xxl)
    assert overlay["execution"] == {"models": {"facebook/xlm-roberta-xxl": {"parallel": "fsdp"}}}
    assert overlay["resources"]["train_target"]["default"]["gpu"] == 4
    sized = Grid(load_config([ROOT / "config.yaml"], overrides={**xxl_grid.config, **overlay,
                                                                "resources": overlay["resources"]}))
    assert check(plan(sized), DEVICES["H100"]) == []


@pytest.mark.parametrize("model", ["xl", "xxl"])
def test_the_repositorys_xl_and_xxl_configs_pass_the_check(model: str, tmp_path: Path) -> None:
    (tmp_path / "here.yaml").write_text(f"results: {tmp_path}\n")
    done = subprocess.run([sys.executable, "-m", "xstilts", "plan", "--check", "--configfile",
                           str(ROOT / "config.yaml"), str(ROOT / "configs" / f"xlm-roberta-{model}.yaml"),
                           str(tmp_path / "here.yaml")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(tmp_path / "plan.parquet")
    assert (frame.loc[frame["rule"] != "evaluate", "parallel"] == "fsdp").all()
    assert "total" in done.stdout and f"facebook/xlm-roberta-{model}" in done.stdout


def test_check_refuses_too_little_time_naming_the_job(tmp_path: Path) -> None:
    (tmp_path / "short.yaml").write_text(f"results: {tmp_path}\nrows: [none, mnli]\ntargets: [xnli]\n"
                                         "resources: {train_intermediate: {tasks: {mnli: {runtime: 1}}}}\n")
    done = subprocess.run([sys.executable, "-m", "xstilts", "plan", "--check", "--configfile",
                           str(ROOT / "config.yaml"), str(tmp_path / "short.yaml")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert "1 job(s) ask for too little" in done.stderr
    assert "intermediate mnli 1: needs runtime >= " in done.stderr and "asks 1" in done.stderr


def test_robustness_conditions_add_their_sample_of_the_reported_split(tmp_path: Path) -> None:
    languages = TARGETS["xnli"].languages
    lexicons = tmp_path / "lexicons"
    lexicons.mkdir()
    for lang in set(languages) - {"en"}:  # English switches into every other language, each of them into English
        for pair in (f"en-{lang}", f"{lang}-en"):
            (lexicons / file_name(*pair.split("-"))).write_text("a b\n")

    def xnli_tokens(robustness: dict | None) -> float:
        grid = Grid(load_config([ROOT / "config.yaml"], overrides={
            "results": str(tmp_path), "rows": ["none"], "targets": ["xnli"], "robustness": robustness,
            "sources": {"lexicons": str(lexicons)}}))
        return plan(grid).set_index("job").loc["none xnli 1", "tokens"]

    clean = xnli_tokens(None)
    per_test_table = 5_010 // 4 + 1  # the sample of 0.25: every 4th of XNLI's 5,010 typical test examples
    noise = xnli_tokens({"conditions": ["char_noise", "word_order"], "sample": 0.25})
    assert noise - clean == 2 * len(languages) * per_test_table * 45
    attack = xnli_tokens({"conditions": ["adversarial"], "sample": 0.25, "adversarial": {"budget": 8}})
    assert attack - clean == 8 * len(languages) * per_test_table * 45
