"""The training loop on every family with the tiny encoder: the loss falls, outputs are well-formed,
a run interrupted and resumed ends with exactly the weights of an uninterrupted run, and the multi-task
row's optimiser is its own section of the config."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from tests.conftest import sentences
from xstilts.config import load_config
from xstilts.errors import Preempted
from xstilts.evaluation import predict, score_table
from xstilts.families import Scoring, family
from xstilts.families.qa import decode_spans
from xstilts.grid import Grid
from xstilts.models import build_model, load_encoder
from xstilts.settings import OPTIMIZER_FIELDS, HParams
from xstilts.training import TaskData, make_plan, train

ROOT = Path(__file__).resolve().parents[1]

CPU = torch.device("cpu")
HP = HParams(lr=2e-3, batch_size=16, grad_accum=1, epochs=8, max_length=48, dropout=0.0, eval_every=1000,
             eval_batch_size=32, doc_stride=16)


def classification_table(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for s in sentences(n, seed):
        label = rng.randint(0, 1)
        rows.append({"text_a": f"{s} {'great' if label else 'awful'}", "text_b": s, "label": label})
    return pd.DataFrame(rows)


def tagging_table(n: int, seed: int) -> pd.DataFrame:
    names = {"anna": 1, "bob": 1, "paris": 2, "rome": 2}
    rows = []
    for s in sentences(n, seed):
        tokens = s.split()
        rows.append({"tokens": tokens, "tags": [names.get(t, 0) for t in tokens]})
    return pd.DataFrame(rows)


def qa_table(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i, s in enumerate(sentences(n, seed)):
        city = rng.choice(["paris", "rome", "berlin"])
        filler = " ".join(sentences(6, seed * 1000 + i))  # long: several windows at max_length 48
        context = f"{filler} anna lives in {city} . {s}"
        rows.append({"id": f"q{i}", "context": context, "question": "where anna lives",
                     "answer_texts": [city], "answer_starts": [context.index(f"in {city}") + 3]})
    return pd.DataFrame(rows)


def choice_table(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for s in sentences(n, seed):
        label = rng.randint(0, 3)
        choices = [f"{s} awful" for _ in range(4)]
        choices[label] = f"{s} great"
        rows.append({"context": s, "choices": choices, "label": label})
    return pd.DataFrame(rows)


def task(name: str, family_name: str, table, tokenizer, labels: list[str], metric: str = "accuracy") -> TaskData:
    train_df, dev_df = table(160, 1), table(40, 2)
    fam = family(family_name)
    feats = fam.tokenise(train_df, tokenizer, HP.max_length, doc_stride=16)
    return TaskData(name, fam, feats, dev_df, HP, Scoring(family_name, metric, tuple(labels)))


def fresh_model(encoder_dir: Path, tasks: list[TaskData], seed: int = 0):
    encoder, tokenizer = load_encoder(encoder_dir)
    torch.manual_seed(seed)
    heads = {t.name: {"family": t.family.name, "num_labels": len(t.scoring.labels)} for t in tasks}
    return build_model(encoder, heads, dropout=0.1), tokenizer


@pytest.mark.parametrize("family_name", ["classification", "pair_classification", "multiple_choice", "tagging", "qa"])
def test_loss_falls_and_outputs_are_well_formed(family_name: str, tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    spec = {"classification": (classification_table, ["0", "1"], "accuracy"),  # text_a alone
            "pair_classification": (classification_table, ["0", "1"], "accuracy"),  # text_a and text_b
            "multiple_choice": (choice_table, [], "accuracy"),
            "tagging": (tagging_table, ["O", "B-PER", "B-LOC"], "f1"),
            "qa": (qa_table, [], "f1")}[family_name]
    data = task("t", family_name, spec[0], tokenizer, spec[1], spec[2])
    model, tokenizer = fresh_model(tiny_encoder, [data])
    run = train(model, tokenizer, [data], optim=HP, seed=0, device=CPU, state_dir=tmp_path / "state")
    losses = [e["loss"] for e in run.log]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert run.best_step > 0 and run.best_metric >= 0
    dev = data.dev
    fam = family(family_name)
    feats = fam.tokenise(dev, tokenizer, HP.max_length, doc_stride=16)
    outputs = predict(model, "t", fam, feats, pad_id=tokenizer.pad_token_id, batch_size=8, device=CPU)
    if family_name == "qa":
        assert len(feats) > len(dev)  # long contexts were split into windows
        answers = decode_spans(dev, feats, outputs)
        assert set(answers) == set(dev["id"])
        for qid, context in zip(dev["id"], dev["context"], strict=True):
            assert answers[qid] in context  # a span of the context, through the offsets
    elif family_name == "tagging":
        scores = score_table(model, "t", Scoring("tagging", "f1", tuple(spec[1])), dev, tokenizer,
                             max_length=HP.max_length, device=CPU)
        assert 0 <= scores["f1"] <= 100
    else:
        n = 4 if family_name == "multiple_choice" else 2
        assert all(0 <= o < n for o in outputs)


def test_interrupted_run_resumes_to_identical_weights(tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    data = [task("cls", "pair_classification", classification_table, tokenizer, ["0", "1"]),
            task("tag", "tagging", tagging_table, tokenizer, ["O", "B-PER", "B-LOC"], "f1")]

    model, _ = fresh_model(tiny_encoder, data)
    straight = train(model, tokenizer, data, optim=HP, seed=3, device=CPU, state_dir=tmp_path / "a")
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model, _ = fresh_model(tiny_encoder, data)
    with pytest.raises(Preempted):
        train(model, tokenizer, data, optim=HP, seed=3, device=CPU, state_dir=tmp_path / "b", stop_after=7)
    assert (tmp_path / "b" / "state.pt").is_file()
    model, _ = fresh_model(tiny_encoder, data, seed=99)  # a new process: nothing survives but the state
    resumed = train(model, tokenizer, data, optim=HP, seed=3, device=CPU, state_dir=tmp_path / "b")

    assert resumed.step == straight.step and resumed.best_step == straight.best_step
    assert [e["loss"] for e in resumed.log] == pytest.approx([e["loss"] for e in straight.log], abs=0)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_non_finite_loss_stops_with_a_clear_message(tiny_encoder: Path, tmp_path: Path) -> None:
    from xstilts.errors import TrainingError

    _, tokenizer = load_encoder(tiny_encoder)
    data = task("cls", "pair_classification", classification_table, tokenizer, ["0", "1"])
    model, _ = fresh_model(tiny_encoder, [data])
    with torch.no_grad():
        model.heads["cls"].out.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"loss is nan at step 0 on task 'cls': .*\(now 0.002\)"):
        train(model, tokenizer, [data], optim=HP, seed=0, device=CPU, state_dir=tmp_path / "s")


def test_multitask_plan_is_proportional_and_deterministic(tiny_encoder: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    big = task("big", "pair_classification", classification_table, tokenizer, ["0", "1"])
    small_df = classification_table(40, 5)
    pairs = family("pair_classification")
    small = TaskData("small", pairs, pairs.tokenise(small_df, tokenizer, 48), small_df, HP,
                     Scoring("pair_classification", "accuracy", ("0", "1")))
    plan = make_plan([big, small], seed=1)
    assert plan == make_plan([big, small], seed=1)
    counts = [sum(1 for t, _ in plan if t == i) for i in range(2)]
    assert counts == [8 * 10, 8 * 3]  # epochs x ceil(rows / batch): 160/16 and 40/16
    for t, rows in plan:
        assert len(rows) <= HP.batch_size and max(rows) < len([big, small][t].train)


def test_optimiser_and_evaluation_cadence_are_the_runs_own(tiny_encoder: Path, tmp_path: Path) -> None:
    """`optim` sets the learning rate, not the first task's settings; without `eval_every` the run evaluates
    once per epoch of the scored task with the most epochs (an unscored task, like mixed-in MLM, counts
    for the steps only), and at the end."""
    _, tokenizer = load_encoder(tiny_encoder)
    pairs = family("pair_classification")
    scoring = Scoring("pair_classification", "accuracy", ("0", "1"))

    def pair_task(name: str, n: int, epochs: float, scored: bool) -> TaskData:
        df = classification_table(n, len(name))
        hp = replace(HP, lr=0.5, epochs=epochs)  # a task's own lr would diverge
        return TaskData(name, pairs, pairs.tokenise(df, tokenizer, HP.max_length),
                        classification_table(24, 9) if scored else None, hp, scoring)

    data = [pair_task("three", 32, 3, True), pair_task("one", 32, 1, True), pair_task("unscored", 32, 5, False)]
    model, _ = fresh_model(tiny_encoder, data)
    optim = replace(HP, lr=1e-3, warmup=0.0, eval_every=0)
    run = train(model, tokenizer, data, optim=optim, seed=0, device=CPU, state_dir=tmp_path / "s")
    assert run.step == 2 * (3 + 1 + 5)  # 32 rows / 16 per batch, per epoch of each task
    evaluated = [e["step"] for e in run.log if not math.isnan(e["dev_metric"])]
    assert evaluated == [6, 12, 18]  # 18 steps / 3 epochs (the unscored task's 5 would evaluate every 4)
    assert 0 < max(e["lr"] for e in run.log) <= 1e-3


def resolved(results: Path, **overrides: Any) -> Grid:
    return Grid(load_config([ROOT / "config.yaml"], overrides={"results": str(results), **overrides}))


def test_multitask_optimiser_is_its_own_section_not_the_first_tasks(tmp_path: Path) -> None:
    """The multi-task row trains with `training.defaults` overridden by `multitask.optimizer`: anli (its
    first task) overriding its own lr or warmup changes anli's row, never the multi-task row's optimiser;
    every task keeps its own data settings."""
    anli = {"lr": 3e-4, "warmup": 0.3, "grad_accum": 2}
    grid = resolved(tmp_path, training={"tasks": {"anli": anli}})
    defaults = HParams.from_dict(grid.config["training"]["defaults"])
    multitask = grid.train_intermediate("multitask", 1)
    assert multitask.tasks[0] == "anli" and multitask.hparams["anli"] == replace(defaults, **anli)
    assert multitask.optim == defaults
    assert grid.train_intermediate("anli", 1).optim == replace(defaults, **anli)  # anli's own row: its settings
    other = resolved(tmp_path, training={"tasks": {"anli": {**anli, "lr": 5e-5}}})
    assert other.train_intermediate("multitask", 1).optim == multitask.optim
    assert other.train_intermediate("anli", 1).optim.lr == 5e-5

    section = {"lr": 2e-5, "warmup": 0.06, "grad_accum": 16, "patience": 3}
    own = resolved(tmp_path, training={"tasks": {"anli": anli}}, multitask={"optimizer": section})
    spec = own.train_intermediate("multitask", 1)
    assert spec.optim == replace(defaults, **section) and set(section) <= set(OPTIMIZER_FIELDS)
    assert spec.hparams["anli"] == replace(defaults, **anli)  # untouched by the section
    assert (spec.hparams["squad_v2"].max_length, spec.hparams["squad_v2"].grad_accum) == (384, 4)
