"""XTREME's retrieval evaluation (BUCC 2018, Tatoeba) without training: pooled hidden states + cosine.

Sentence vector (`settings.RetrievalSettings`, per target): by default the mean of one layer's hidden states
over all non-padding tokens, special tokens included (XTREME's `mean_pool_embedding` with the attention mask),
or the first token's (`cls`, XTREME's `cls_pool_embedding`). XTREME's Tatoeba script pools
`hidden_states[14]` of XLM-R Large (`--specific_layer 13` over the 24 layer outputs); other depths scale
that layer (`settings.retrieval_layer`).

Neighbour search is exact, by blocked matrix products in torch: faiss is not needed at these sizes.
Equal similarities (duplicated sentences) rank by lowest index, as faiss returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, get_args

import numpy as np
import torch

from xstilts.settings import Pooling

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Similarity entries computed at once (64 MiB of float32) when searching neighbours block by block.
_BLOCK_ELEMENTS = 1 << 24


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` [B, T, H] over the positions where `attention_mask` [B, T] is 1: [B, H]."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Sentence vectors [B, H] of `hidden` [B, T, H]: `mean_pool`, or the first token's (`cls`)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    raise ValueError(f"pooling {pooling!r}; allowed: {', '.join(get_args(Pooling))}")


def embed_layers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[str], *,
                 layers: Sequence[int], pooling: Pooling = "mean", batch_size: int = 64, max_length: int = 512,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """Pooled `hidden_states[layer]` of each sentence for each of `layers`, float32 [layers, N, hidden size], in
    input order, from one forward pass per batch.

    Sentences are tokenised once (truncated to `max_length` tokens, special tokens included), sorted by
    length so that each batch pads little, and run under `torch.inference_mode`; the model is put in
    eval mode and is expected on `device` already.
    """
    num_layers = model.config.num_hidden_layers
    for layer in layers:
        if not 0 <= layer <= num_layers:
            raise ValueError(f"layer {layer} is not in 0..{num_layers} (0 = embeddings)")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token")
    out = np.zeros((len(layers), len(sentences), model.config.hidden_size), dtype=np.float32)
    if len(sentences) == 0:
        return out
    ids = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)  # longest first: OOM early
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = len(ids[rows[0]])
            input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
                attention_mask[r, :len(ids[i])] = 1
            attention_mask = attention_mask.to(device)
            hidden = model(input_ids=input_ids.to(device), attention_mask=attention_mask,
                           output_hidden_states=True).hidden_states
            for k, layer in enumerate(layers):
                out[k, rows] = pool(hidden[layer].float(), attention_mask, pooling).cpu().numpy()
    return out


def embed(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[str], *,
          layer: int, pooling: Pooling = "mean", batch_size: int = 64, max_length: int = 512,
          device: str | torch.device = "cpu") -> np.ndarray:
    """Pooled `hidden_states[layer]` of each sentence, float32 [N, hidden size], in input order (`embed_layers`)."""
    return embed_layers(model, tokenizer, sentences, layers=[layer], pooling=pooling, batch_size=batch_size,
                        max_length=max_length, device=device)[0]


def _unit_rows(x: np.ndarray, device: str | torch.device) -> torch.Tensor:
    rows = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"expected a non-empty [N, H] matrix of embeddings, got shape {tuple(rows.shape)}")
    return torch.nn.functional.normalize(rows, dim=1)


_Neighbours = tuple[torch.Tensor, torch.Tensor]  # similarities [n, k], indices [n, k], best first


def _topk(values: torch.Tensor, k: int) -> _Neighbours:
    """The k largest entries of each row and their columns, best first, equal values by lowest column
    (faiss's order; `torch.topk` leaves ties in no set order)."""
    wide = min(k + 1, values.shape[1])  # one more than k: does a tie cross the k-th place?
    top, columns = values.topk(wide, dim=1)
    split = (top[:, -1] == top[:, k - 1]).nonzero()[:, 0] if wide > k else []
    top, columns = top[:, :k].contiguous(), columns[:, :k].contiguous()
    if len(split):  # rare: those rows in full
        top[split], columns[split] = (t[:, :k] for t in values[split].sort(dim=1, descending=True, stable=True))
    columns, order = columns.sort(dim=1)
    top, order = top.gather(1, order).sort(dim=1, descending=True, stable=True)
    return top, columns.gather(1, order)


def _knn_both_ways(x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[_Neighbours, _Neighbours]:
    """Cosine k nearest neighbours of each row of x among y's rows, and of each row of y among x's.

    Returns (x->y similarities [N, k'], indices), (y->x similarities [M, k''], indices), with
    k' = min(k, M) and k'' = min(k, N), best first; one pass over blocks of x.
    """
    kx, ky = min(k, y.shape[0]), min(k, x.shape[0])
    fwd_sim, fwd_idx = [], []
    bwd_sim = torch.full((y.shape[0], ky), -torch.inf, device=x.device)
    bwd_idx = torch.zeros((y.shape[0], ky), dtype=torch.long, device=x.device)
    step = max(1, _BLOCK_ELEMENTS // y.shape[0])
    for start in range(0, x.shape[0], step):
        sim = x[start:start + step] @ y.T
        top, columns = _topk(sim, kx)
        fwd_sim.append(top)
        fwd_idx.append(columns)
        # merge this block's best sources for every target into the running top k'' (the running top,
        # of lower sources, first: positions order equal values as source indices do)
        col_sim, col_idx = _topk(sim.T, min(ky, sim.shape[0]))
        bwd_sim, order = _topk(torch.cat([bwd_sim, col_sim], dim=1), ky)
        bwd_idx = torch.cat([bwd_idx, col_idx + start], dim=1).gather(1, order)
    return (torch.cat(fwd_sim), torch.cat(fwd_idx)), (bwd_sim, bwd_idx)


def nearest(source: np.ndarray, target: np.ndarray, *, device: str | torch.device = "cpu") -> np.ndarray:
    """The row of each source's cosine-nearest target (equal similarities: the lowest row, as faiss).

    Tatoeba: XTREME's `evaluate_retrieval.py` queries with the English side (`tatoeba.xx-eng.eng`) against
    the other language's sentences; a query is right when it finds its own translation (row i <-> row i).
    """
    (_, found), _ = _knn_both_ways(_unit_rows(source, device), _unit_rows(target, device), 1)
    return found[:, 0].cpu().numpy()


class MarginNeighbours(NamedTuple):
    """Ratio-margin scores of each sentence's k nearest neighbours, in both directions."""

    forward_index: np.ndarray  # [N, k]: the targets nearest to each source
    forward_score: np.ndarray  # [N, k]: margin(source i, forward_index[i, j])
    backward_index: np.ndarray  # [M, k]: the sources nearest to each target
    backward_score: np.ndarray  # [M, k]: margin(backward_index[j, i], target j)


def margin_scores(source: np.ndarray, target: np.ndarray, k: int = 4, *,
                  device: str | torch.device = "cpu") -> MarginNeighbours:
    """Ratio-margin scores (Artetxe & Schwenk 2019) of the cosine k-NN candidates, both ways.

    score(x, y) = cos(x, y) / ((sum of cos to x's k NN) / 2k + (sum of cos to y's k NN) / 2k), as
    XTREME's `utils_retrieve.score_candidates` (k is capped by the size of the other side).
    """
    x, y = _unit_rows(source, device), _unit_rows(target, device)
    (fwd_sim, fwd_idx), (bwd_sim, bwd_idx) = _knn_both_ways(x, y, k)
    fwd_mean, bwd_mean = fwd_sim.mean(dim=1), bwd_sim.mean(dim=1)
    fwd_score = fwd_sim / ((fwd_mean[:, None] + bwd_mean[fwd_idx]) / 2)
    bwd_score = bwd_sim / ((bwd_mean[:, None] + fwd_mean[bwd_idx]) / 2)
    return MarginNeighbours(*(t.cpu().numpy() for t in (fwd_idx, fwd_score, bwd_idx, bwd_score)))


def mine_pairs(source: np.ndarray, target: np.ndarray, k: int = 4, *,
               device: str | torch.device = "cpu") -> dict[tuple[int, int], float]:
    """Candidate pairs {(source row, target row): margin score}, XTREME's `mine_bitext` "max" retrieval.

    Each source's best-scoring target (forward) and each target's best-scoring source (backward) are
    pooled and taken by decreasing score, keeping a pair only while neither side is already used (so the
    result is one-to-one; on equal scores forward candidates come first). Pairs scoring <= 0 are dropped,
    as XTREME mines with threshold 0.
    """
    n = margin_scores(source, target, k, device=device)
    fwd_best = n.forward_score.argmax(axis=1)
    bwd_best = n.backward_score.argmax(axis=1)
    src = np.concatenate([np.arange(len(fwd_best)), n.backward_index[np.arange(len(bwd_best)), bwd_best]])
    trg = np.concatenate([n.forward_index[np.arange(len(fwd_best)), fwd_best], np.arange(len(bwd_best))])
    score = np.concatenate([n.forward_score.max(axis=1), n.backward_score.max(axis=1)])
    pairs: dict[tuple[int, int], float] = {}
    seen_src: set[int] = set()
    seen_trg: set[int] = set()
    for i in np.argsort(-score, kind="stable"):
        s, t = int(src[i]), int(trg[i])
        if s in seen_src or t in seen_trg:
            continue
        seen_src.add(s)
        seen_trg.add(t)
        if score[i] > 0:
            pairs[s, t] = float(score[i])
    return pairs


def best_threshold(candidates: dict[tuple[int, int], float], gold: set[tuple[int, int]]) -> float:
    """The score threshold that maximises F1 of `candidates` against `gold` (XTREME's `bucc_optimize`).

    Candidates are taken by decreasing score; at the best F1 the threshold is the midpoint between that
    candidate's score and the next one's (the candidate's own score when it is the last: XTREME fails
    there). 0.0 when no candidate is gold.
    """
    items = sorted(candidates.items(), key=lambda item: -item[1])
    threshold = 0.0
    best_f1 = correct = 0.0
    for i, (pair, score) in enumerate(items):
        correct += pair in gold
        if correct == 0:
            continue
        precision, recall = correct / (i + 1), correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold


def bucc_f1(candidates: dict[tuple[int, int], float], gold: set[tuple[int, int]],
            threshold: float) -> dict[str, float]:
    """Precision, recall and F1 (0-100) of the candidates scoring >= `threshold` against `gold`."""
    predicted = {pair for pair, score in candidates.items() if score >= threshold}
    correct = len(predicted & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall = correct / len(predicted), correct / len(gold)
    return {"precision": 100 * precision, "recall": 100 * recall,
            "f1": 100 * 2 * precision * recall / (precision + recall)}


def top_k(queries: np.ndarray, candidates: np.ndarray, k: int, *, device: str | torch.device = "cpu") -> np.ndarray:
    """The rows of each query's k cosine-nearest candidates [n, min(k, m)], best first (equal similarities: the
    lowest row first, as faiss), blocked as `nearest` is."""
    x, y = _unit_rows(queries, device), _unit_rows(candidates, device)
    k = min(k, y.shape[0])
    step = max(1, _BLOCK_ELEMENTS // y.shape[0])
    found = [_topk(x[start:start + step] @ y.T, k)[1] for start in range(0, x.shape[0], step)]
    return torch.cat(found).cpu().numpy()


def average_precision_at_k(relevant: set[int], ranked: Sequence[int], k: int) -> float:
    """AP@k as LAReQA's `utils_lareqa.average_precision_at_k` computes it: over the top k, each relevant hit adds
    the precision at its rank; the sum is divided by min(|relevant|, k). 0 without relevant candidates (Mewsli-X's
    MRR@k scores a mention whose entity is not found 0; with one relevant candidate AP@k is that reciprocal rank)."""
    if not relevant:
        return 0.0
    hits = score = 0.0
    for rank, candidate in enumerate(ranked[:k], 1):
        if candidate in relevant:
            hits += 1
            score += hits / rank
    return score / min(len(relevant), k)
