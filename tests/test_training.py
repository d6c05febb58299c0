"""The training loop on every family with the tiny encoder: the loss falls, outputs are well-formed,
and a run interrupted and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import sentences
from xstilts.errors import Preempted
from xstilts.evaluation import decode_spans, predict, score_table
from xstilts.features import tokenise
from xstilts.models import build_model, load_encoder
from xstilts.training import HParams, TaskData, make_plan, train

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


def task(name: str, family: str, table, tokenizer, labels: list[str], metric: str = "accuracy") -> TaskData:
    train_df, dev_df = table(160, 1), table(40, 2)
    feats = tokenise(family, train_df, tokenizer, HP.max_length, doc_stride=16)
    return TaskData(name, family, metric, labels, feats, dev_df, HP)


def fresh_model(encoder_dir: Path, tasks: list[TaskData], seed: int = 0):
    encoder, tokenizer = load_encoder(encoder_dir)
    torch.manual_seed(seed)
    heads = {t.name: {"family": t.family, "num_labels": len(t.labels)} for t in tasks}
    return build_model(encoder, heads, dropout=0.1), tokenizer


@pytest.mark.parametrize("family", ["classification", "multiple_choice", "tagging", "qa"])
def test_loss_falls_and_outputs_are_well_formed(family: str, tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    spec = {"classification": (classification_table, ["0", "1"], "accuracy"),
            "multiple_choice": (choice_table, [], "accuracy"),
            "tagging": (tagging_table, ["O", "B-PER", "B-LOC"], "f1"),
            "qa": (qa_table, [], "f1")}[family]
    data = task("t", family, spec[0], tokenizer, spec[1], spec[2])
    model, tokenizer = fresh_model(tiny_encoder, [data])
    run = train(model, tokenizer, [data], seed=0, device=CPU, state_dir=tmp_path / "state")
    losses = [e["loss"] for e in run.log]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert run.best_step > 0 and run.best_metric >= 0
    dev = data.dev
    feats = tokenise(family, dev, tokenizer, HP.max_length, doc_stride=16, train=False)
    outputs = predict(model, "t", feats, pad_id=tokenizer.pad_token_id, batch_size=8, device=CPU)
    if family == "qa":
        assert len(feats) > len(dev)  # long contexts were split into windows
        answers = decode_spans(dev, feats, outputs)
        assert set(answers) == set(dev["id"])
        for qid, context in zip(dev["id"], dev["context"], strict=True):
            assert answers[qid] in context  # a span of the context, through the offsets
    elif family == "tagging":
        scores = score_table(model, "t", dev, tokenizer, family=family, metric="f1", labels=spec[1],
                             max_length=HP.max_length, device=CPU)
        assert 0 <= scores["f1"] <= 100
    else:
        n = 4 if family == "multiple_choice" else 2
        assert all(0 <= o < n for o in outputs)


def test_interrupted_run_resumes_to_identical_weights(tiny_encoder: Path, tmp_path: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    data = [task("cls", "classification", classification_table, tokenizer, ["0", "1"]),
            task("tag", "tagging", tagging_table, tokenizer, ["O", "B-PER", "B-LOC"], "f1")]

    model, _ = fresh_model(tiny_encoder, data)
    straight = train(model, tokenizer, data, seed=3, device=CPU, state_dir=tmp_path / "a")
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model, _ = fresh_model(tiny_encoder, data)
    with pytest.raises(Preempted):
        train(model, tokenizer, data, seed=3, device=CPU, state_dir=tmp_path / "b", stop_after=7)
    assert (tmp_path / "b" / "state.pt").is_file()
    model, _ = fresh_model(tiny_encoder, data, seed=99)  # a new process: nothing survives but the state
    resumed = train(model, tokenizer, data, seed=3, device=CPU, state_dir=tmp_path / "b")

    assert resumed.step == straight.step and resumed.best_step == straight.best_step
    assert [e["loss"] for e in resumed.log] == pytest.approx([e["loss"] for e in straight.log], abs=0)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_non_finite_loss_stops_with_a_clear_message(tiny_encoder: Path, tmp_path: Path) -> None:
    from xstilts.errors import TrainingError

    _, tokenizer = load_encoder(tiny_encoder)
    data = task("cls", "classification", classification_table, tokenizer, ["0", "1"])
    model, _ = fresh_model(tiny_encoder, [data])
    with torch.no_grad():
        model.heads["cls"].out.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="loss is nan at step 0 on task 'cls'"):
        train(model, tokenizer, [data], seed=0, device=CPU, state_dir=tmp_path / "s")


def test_multitask_plan_is_proportional_and_deterministic(tiny_encoder: Path) -> None:
    _, tokenizer = load_encoder(tiny_encoder)
    big = task("big", "classification", classification_table, tokenizer, ["0", "1"])
    small_df = classification_table(40, 5)
    small = TaskData("small", "classification", "accuracy", ["0", "1"],
                     tokenise("classification", small_df, tokenizer, 48), small_df, HP)
    plan = make_plan([big, small], seed=1)
    assert plan == make_plan([big, small], seed=1)
    counts = [sum(1 for t, _ in plan if t == i) for i in range(2)]
    assert counts == [8 * 10, 8 * 3]  # epochs x ceil(rows / batch): 160/16 and 40/16
    for t, rows in plan:
        assert len(rows) <= HP.batch_size and max(rows) < len([big, small][t].train)
