"""Training and evaluation speed of xstilts' trainer against `transformers.Trainer` (DESIGN.md section 6).

The same work three ways, interleaved over several rounds (medians reported): fine-tune a tiny XLM-R on
NLI-like sentence pairs with long-tailed lengths, evaluating on the dev set once per epoch, then score the
test tables of four "languages". `xstilts` is `training.train` plus `evaluation.score_table`;
`default_trainer` is `transformers.Trainer` with its defaults (random batches, dynamic padding by
`DataCollatorWithPadding`); `grouped_trainer` is the Trainer at its best, with
`train_sampling_strategy="group_by_length"`. Model, initial weights, data, tokenizer and hyperparameters
are the same for all three. Prints `name: value` lines (wall seconds and process CPU seconds, the latter
steadier where other jobs share the machine: there, use `--threads 1`); run with
`python benchmarks/train_speed.py [--rounds 3] [--threads N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import (
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)
from transformers.trainer_pt_utils import get_length_grouped_indices

from xstilts.demo.pretrain import train_tokenizer
from xstilts.evaluation import score_table
from xstilts.families import Scoring, family
from xstilts.features import length_grouped_batches
from xstilts.models import TransferModel, build_model, load_encoder
from xstilts.settings import HParams
from xstilts.training import TaskData, make_plan, train

CPU = torch.device("cpu")
LABELS = ["entailment", "contradiction", "neutral"]
FAMILY = family("pair_classification")  # premise and hypothesis, as XNLI's and MNLI's tables
SCORING = Scoring(FAMILY.name, "accuracy", tuple(LABELS))
LANGUAGES = ("l1", "l2", "l3", "l4")
HP = HParams(lr=5e-4, warmup=0.1, batch_size=32, grad_accum=1, epochs=2, max_length=128, eval_batch_size=128,
             weight_decay=0.01, max_grad_norm=1.0, dropout=0.1)
SEED = 0


def vocabulary(n: int = 600, seed: int = 0) -> list[str]:
    """Pseudo-words of 2-4 syllables, so the Unigram tokenizer splits some of them."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    return sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(n)})


def nli_table(n: int, words: list[str], seed: int) -> pd.DataFrame:
    """Premise/hypothesis pairs of long-tailed length (4-36 words, median 10: 8-128 tokens), 3 learnable labels.

    Entailment: the hypothesis is a piece of the premise; contradiction: such a piece negated ("not");
    neutral: unrelated words. One label in ten is flipped, so accuracy stays below 100.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        total = min(36, max(4, round(rng.lognormvariate(math.log(10), 0.6))))
        n_hyp = max(2, total // 3)
        premise = rng.choices(words, k=total - n_hyp)
        label = rng.randrange(3)
        start = rng.randrange(max(1, len(premise) - n_hyp))
        piece = premise[start:start + n_hyp]
        hypothesis = (piece if label == 0 else
                      [*piece[:1], "not", *piece[1:]] if label == 1 else rng.choices(words, k=n_hyp))
        if rng.random() < 0.1:
            label = rng.randrange(3)
        rows.append({"text_a": " ".join(premise), "text_b": " ".join(hypothesis), "label": label})
    return pd.DataFrame(rows)


def make_encoder(out: Path, words: list[str]) -> None:
    """A randomly initialised 4-layer XLM-R (hidden 128) and a Unigram tokenizer, saved like a hub model."""
    rng = random.Random(1)
    lines = [" ".join(rng.choices([*words, "not"], k=rng.randint(5, 30))) for _ in range(5000)]
    tokenizer = train_tokenizer(lines, vocab_size=1000)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=128, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=512, max_position_embeddings=HP.max_length + 2,
                              type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def fresh_xstilts(encoder_dir: Path) -> tuple[TransferModel, PreTrainedTokenizerBase]:
    """The xstilts model as `jobs.train` builds it: encoder plus a seeded classification head."""
    encoder, tokenizer = load_encoder(encoder_dir, HP.dropout)
    torch.manual_seed(SEED)
    model = build_model(encoder, {"nli": {"family": FAMILY.name, "num_labels": len(LABELS)}}, HP.dropout)
    return model, tokenizer


def fresh_hf(encoder_dir: Path) -> XLMRobertaForSequenceClassification:
    """The same encoder with the Trainer's usual class, its head set to the xstilts head's initial weights."""
    model = XLMRobertaForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=len(LABELS), hidden_dropout_prob=HP.dropout, attention_probs_dropout_prob=HP.dropout)
    head = fresh_xstilts(encoder_dir)[0].heads["nli"]
    with torch.no_grad():
        for ours, theirs in ((head.dense, model.classifier.dense), (head.out, model.classifier.out_proj)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    return model


class Clock:
    """Wall and process CPU seconds of consecutive laps: `laps["<name>_s"]`, `laps["<name>_cpu_s"]`."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.laps |= {f"{name}_s": wall - self.wall, f"{name}_cpu_s": cpu - self.cpu}
        self.wall, self.cpu = wall, cpu


def run_xstilts(encoder_dir: Path, data: dict[str, pd.DataFrame]) -> dict[str, float]:
    """`training.train` (dev evaluation once per epoch), then `score_table` on every test table."""
    model, tokenizer = fresh_xstilts(encoder_dir)
    task = TaskData("nli", FAMILY, FAMILY.tokenise(data["train"], tokenizer, HP.max_length), data["dev"], HP, SCORING)
    with tempfile.TemporaryDirectory() as state:
        clock = Clock()
        run = train(model, tokenizer, [task], optim=HP, seed=SEED, device=CPU, state_dir=Path(state))
        clock.lap("train")
        test = [score_table(model, "nli", SCORING, data[lang], tokenizer, max_length=HP.max_length,
                            batch_size=HP.eval_batch_size, device=CPU)["accuracy"] for lang in LANGUAGES]
        clock.lap("eval")
    return {**clock.laps, "dev_accuracy": run.best_metric, "test_accuracy": float(np.mean(test))}


class Rows(torch.utils.data.Dataset):
    """Tokenised pairs as the Trainer's examples: {"input_ids", "labels"} per row."""

    def __init__(self, df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase) -> None:
        ids = tokenizer(df["text_a"].tolist(), df["text_b"].tolist(), truncation=True, max_length=HP.max_length,
                        return_token_type_ids=False, return_attention_mask=False)["input_ids"]
        self.rows = [{"input_ids": x, "labels": y} for x, y in zip(ids, df["label"].tolist(), strict=True)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def accuracy(pred: Any) -> dict[str, float]:
    return {"accuracy": 100.0 * float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def run_trainer(encoder_dir: Path, data: dict[str, pd.DataFrame], sampling: str) -> dict[str, float]:
    """`Trainer.train` (dev evaluation once per epoch), then `Trainer.evaluate` on every test table."""
    model = fresh_hf(encoder_dir)
    tokenizer = load_encoder(encoder_dir)[1]
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # as XLM-R's own tokenizer: no type ids
    train_rows, dev_rows = Rows(data["train"], tokenizer), Rows(data["dev"], tokenizer)
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(sys.stderr):  # its printed logs
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=HP.batch_size, per_device_eval_batch_size=HP.eval_batch_size,
            gradient_accumulation_steps=HP.grad_accum, learning_rate=HP.lr, weight_decay=HP.weight_decay,
            warmup_steps=HP.warmup, max_grad_norm=HP.max_grad_norm, num_train_epochs=HP.epochs,
            lr_scheduler_type="linear", eval_strategy="epoch", save_strategy="no", seed=SEED, use_cpu=True,
            report_to="none", train_sampling_strategy=sampling)
        clock = Clock()
        trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=dev_rows,
                          processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                          compute_metrics=accuracy)
        trainer.train()
        clock.lap("train")
        dev = max(e["eval_accuracy"] for e in trainer.state.log_history if "eval_accuracy" in e)
        test = [trainer.evaluate(Rows(data[lang], tokenizer))["eval_accuracy"] for lang in LANGUAGES]
        clock.lap("eval")
    return {**clock.laps, "dev_accuracy": dev, "test_accuracy": float(np.mean(test))}


def real_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    """Real tokens over all tokens (real plus padding) of batches padded to their longest row."""
    return (sum(lengths[i] for b in batches for i in b) /
            sum(len(b) * max(lengths[i] for i in b) for b in batches))


def chunks(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def padding_figures(encoder_dir: Path, data: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Real-token fractions of the training batches (the Trainer's: one epoch) and evaluation batches."""
    tokenizer = load_encoder(encoder_dir)[1]
    train_f = FAMILY.tokenise(data["train"], tokenizer, HP.max_length)
    task = TaskData("nli", FAMILY, train_f, data["dev"], HP, SCORING)
    plan = [rows for _, rows in make_plan([task], SEED)]
    test = [FAMILY.tokenise(data[lang], tokenizer, HP.max_length).lengths for lang in LANGUAGES]
    ours_eval = [real_fraction(n, length_grouped_batches(n, HP.eval_batch_size, torch.Generator(), shuffle=False))
                 for n in test]
    g = torch.Generator().manual_seed(SEED)
    n = train_f.lengths
    return {
        "real_token_fraction_train": real_fraction(n, plan),
        "real_token_fraction_eval": float(np.mean(ours_eval)),
        "default_trainer_real_token_fraction_train":
            real_fraction(n, chunks(torch.randperm(len(n), generator=g).tolist(), HP.batch_size)),
        "grouped_trainer_real_token_fraction_train":
            real_fraction(n, chunks(get_length_grouped_indices(n, HP.batch_size, generator=g), HP.batch_size)),
        "trainer_real_token_fraction_eval":
            float(np.mean([real_fraction(t, chunks(list(range(len(t))), HP.eval_batch_size)) for t in test])),
    }


def main(rounds: int, n_train: int, n_dev: int, n_test: int) -> None:
    words = vocabulary()
    data = {"train": nli_table(n_train, words, 1), "dev": nli_table(n_dev, words, 2)}
    data |= {lang: nli_table(n_test, words, 10 + i) for i, lang in enumerate(LANGUAGES)}
    systems: dict[str, Callable[[Path, dict[str, pd.DataFrame]], dict[str, float]]] = {
        "xstilts": run_xstilts,
        "default_trainer": lambda e, d: run_trainer(e, d, "random"),
        "grouped_trainer": lambda e, d: run_trainer(e, d, "group_by_length"),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory() as encoder_dir:
        make_encoder(Path(encoder_dir), words)
        for r in range(rounds):
            names = list(systems)
            for name in names[r % 3:] + names[:r % 3]:  # rotate the order: no system always runs first
                results[name].append(systems[name](Path(encoder_dir), data))
        figures = padding_figures(Path(encoder_dir), data)
    med = {name: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for name, runs in results.items()}
    print(f"rounds: {rounds}")
    print(f"threads: {torch.get_num_threads()}")
    print(f"train_examples: {n_train}")
    print(f"test_examples: {n_test * len(LANGUAGES)}")
    for name, m in med.items():
        for lap in ("train", "eval"):
            print(f"{name}_{lap}_seconds: {m[f'{lap}_s']:.2f}")
            print(f"{name}_{lap}_cpu_seconds: {m[f'{lap}_cpu_s']:.2f}")
            rounds_s = ",".join(f"{x[lap + '_s']:.2f}" for x in results[name])
            print(f"{name}_{lap}_seconds_per_round: {rounds_s}")
    ours = med["xstilts"]
    for name in ("grouped_trainer", "default_trainer"):
        m = med[name]
        for clock in ("", "cpu_"):  # wall seconds; process CPU seconds (steadier on a shared machine)
            train_s, eval_s = f"train_{clock}s", f"eval_{clock}s"
            print(f"train_{clock}speedup_vs_{name}: {m[train_s] / ours[train_s]:.2f}")
            print(f"eval_{clock}speedup_vs_{name}: {m[eval_s] / ours[eval_s]:.2f}")
            print(f"end_to_end_{clock}speedup_vs_{name}: "
                  f"{(m[train_s] + m[eval_s]) / (ours[train_s] + ours[eval_s]):.2f}")
    for name, value in figures.items():
        print(f"{name}: {value:.3f}")
    for name, m in med.items():
        print(f"{name}_dev_accuracy: {m['dev_accuracy']:.1f}")
        print(f"{name}_test_accuracy: {m['test_accuracy']:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=4000, help="training pairs")
    parser.add_argument("--dev", type=int, default=500, help="dev pairs (evaluated once per epoch)")
    parser.add_argument("--test", type=int, default=1000, help="test pairs per language (4 languages)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = parser.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    transformers.logging.set_verbosity_error()
    main(a.rounds, a.train, a.dev, a.test)
