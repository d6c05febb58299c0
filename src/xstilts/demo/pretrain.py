"""Phase (i) in miniature: a tokenizer trained on the demo corpus and a tiny XLM-R given a short MLM.

The tokenizer is a SentencePiece-style Unigram model (the same family as XLM-R's) in the Rust
`tokenizers` backend, with XLM-R's special tokens and ids, so offsets and word ids behave as they do
for `xlm-roberta-large`; the model is `XLMRobertaForMaskedLM`, only smaller.

Both are the same, bit for bit, every time they are trained from the same corpus on the same machine
(`canonical_pieces` says how the tokenizer is made so).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import SentencePieceUnigramTokenizer, models, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from tqdm import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
)

from xstilts.results_io import atomic_path

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..4


@dataclass(frozen=True)
class TinyModel:
    """Size and MLM budget of the demo encoder."""

    vocab_size: int = 4000
    hidden_size: int = 64
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 256
    max_length: int = 256
    mlm_steps: int = 600
    mlm_batch_size: int = 64
    mlm_max_length: int = 64
    lr: float = 1e-3
    seed: int = 0


# The Unigram trainer's score step between the required characters that pruning left out of the model
# (tokenizers' `UnigramTrainer::finalize`: min score + 0.0001 per character, in HashSet order).
_REQUIRED_CHAR_STEP = 1e-4
_SCORE_DECIMALS = 6  # the trainer's run-to-run noise is ~1e-14; segmentation needs far less precision


def canonical_pieces(pieces: list[tuple[str, float]], n_special: int) -> list[tuple[str, float]]:
    """The trained Unigram vocabulary in an order and with scores that do not depend on the trainer's
    iteration order.

    `tokenizers`' Unigram trainer is not reproducible run to run, single-threaded too: it counts the
    corpus' words in a Rust HashMap (randomly seeded per process), so the EM sums run in a random order
    and the scores differ in their last digits, near-equal pieces swap places and ids; and it gives the
    required characters that pruning dropped the scores min + k x 0.0001 in HashSet order. The piece set
    itself is stable. So: the dropped characters get those scores in code-point order, every score is
    rounded to `_SCORE_DECIMALS` decimals, and the pieces after the special tokens are numbered by
    (score descending, piece).
    """
    special, rest = pieces[:n_special], pieces[n_special:]
    low = min(score for _, score in rest)
    steps = {p: (score - low) / _REQUIRED_CHAR_STEP for p, score in rest if len(p) == 1}
    on_grid = {p: round(k) for p, k in steps.items() if abs(k - round(k)) < 1e-6}
    run = next(k for k in range(len(on_grid) + 1) if k not in on_grid.values())  # the steps 0, 1, ... run - 1
    dropped = {p: k for p, k in on_grid.items() if k < run}
    reassigned = dict(zip(sorted(dropped), sorted(dropped.values()), strict=True))
    scored = [(p, round(low + reassigned[p] * _REQUIRED_CHAR_STEP if p in reassigned else score, _SCORE_DECIMALS))
              for p, score in rest]
    return special + sorted(scored, key=lambda piece: (-piece[1], piece[0]))


def train_tokenizer(lines: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A Unigram tokenizer with XLM-R's special tokens and `<s> A </s></s> B </s>` pair template, the same
    for the same lines (`canonical_pieces`)."""
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(lines, vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>",
                           show_progress=False)
    backend = sp._tokenizer
    trained = json.loads(backend.to_str())["model"]
    pieces = canonical_pieces([(p, s) for p, s in trained["vocab"]], len(SPECIAL_TOKENS))
    backend.model = models.Unigram(pieces, unk_id=trained["unk_id"], byte_fallback=False)
    # XLM-R's pipeline splits on white space before Metaspace, so offsets never cover the space before a word
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), backend.pre_tokenizer])
    backend.post_processor = TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                   sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                   mask_token="<mask>", model_max_length=512)


def pretrain(corpus_dir: Path, out: Path, spec: TinyModel = TinyModel()) -> dict[str, float]:
    """Train the tokenizer and the MLM on every `*.txt` in `corpus_dir`; save both to `out`."""
    random.seed(spec.seed)
    torch.manual_seed(spec.seed)
    lines = [ln for f in sorted(corpus_dir.glob("*.txt")) for ln in f.read_text().splitlines() if ln.strip()]
    if not lines:
        raise FileNotFoundError(f"no corpus lines in {corpus_dir}/*.txt")
    tokenizer = train_tokenizer(lines, spec.vocab_size)
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(5))
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads, intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_length + 2, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
        eos_token_id=2)
    model = XLMRobertaForMaskedLM(config)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    encoded = tokenizer(lines, truncation=True, max_length=spec.mlm_max_length)["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=spec.mlm_steps, pct_start=0.1)
    model.train()
    start, loss = time.perf_counter(), torch.tensor(float("nan"))
    for _ in tqdm(range(spec.mlm_steps), desc="mlm", mininterval=2.0):
        batch = collator([{"input_ids": ids} for ids in random.sample(encoded, spec.mlm_batch_size)])
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return {"mlm_loss": float(loss), "seconds": time.perf_counter() - start, "lines": len(lines)}
