"""Retrieval: layer choice, pooling, embedding, Tatoeba accuracy and BUCC mining against hand values."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from xstilts.families import family
from xstilts.retrieval import (
    best_threshold,
    bucc_f1,
    embed,
    margin_scores,
    mean_pool,
    mine_pairs,
    nearest,
)
from xstilts.settings import RetrievalSettings, retrieval_layer

CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park today",
    "der Hund lief heute im Park",
    "le chat est sur le tapis",
    "con mèo ngồi trên thảm",
]


def test_retrieval_layer_scales_with_depth():
    assert retrieval_layer(24) == 14  # XLM-R Large: XTREME's hidden_states[14]
    assert retrieval_layer(12) == 7  # 14 * 12 / 24 = 7
    assert retrieval_layer(18) == 11  # 10.5, rounded half up
    assert retrieval_layer(6) == 4  # 3.5, rounded half up
    assert retrieval_layer(1) == 1  # 0.58 -> 1, never the embeddings
    assert retrieval_layer(12, reference_layer=8, reference_depth=12) == 8
    assert retrieval_layer(4, reference_layer=30) == 4  # capped at the depth


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [100.0, 100.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # row 0: ([1, 2] + [3, 4]) / 2 = [2, 3]; row 1: [5, 6] / 1
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A real fast tokenizer: word level, trained on the corpus, `<s> ... </s>` around each sentence."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[(t, tok.token_to_id(t)) for t in ("<s>", "</s>")])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


@pytest.fixture(scope="module")
def model(tokenizer) -> XLMRobertaModel:
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, pad_token_id=tokenizer.pad_token_id)
    return XLMRobertaModel(config)


def test_embed_independent_of_batch_size_and_order(model, tokenizer):
    sentences = [*CORPUS, "the", "unknown words here"]
    reference = embed(model, tokenizer, sentences, layer=1, batch_size=64)
    assert reference.dtype == np.float32 and reference.shape == (len(sentences), 32)
    for batch_size in (1, 3):
        assert np.allclose(embed(model, tokenizer, sentences, layer=1, batch_size=batch_size), reference,
                           atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(sentences))
    shuffled = embed(model, tokenizer, [sentences[i] for i in perm], layer=1, batch_size=2)
    assert np.allclose(shuffled, reference[perm], atol=1e-5)


def test_embed_is_the_mean_over_all_tokens_of_one_layer(model, tokenizer):
    ids = tokenizer(CORPUS[1], return_tensors="pt")["input_ids"]  # <s> 7 words </s>, unpadded
    with torch.no_grad():
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
    for layer in (0, 2):
        expected = states[layer][0].mean(dim=0).numpy()
        got = embed(model, tokenizer, [CORPUS[1], CORPUS[0]], layer=layer, batch_size=2)[0]
        assert np.allclose(got, expected, atol=1e-5)
    # truncation: max_length 3 keeps <s>, the first word and </s>
    short = tokenizer(CORPUS[1], truncation=True, max_length=3, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = model(input_ids=short, output_hidden_states=True).hidden_states[1][0].mean(dim=0).numpy()
    assert np.allclose(embed(model, tokenizer, [CORPUS[1]], layer=1, max_length=3)[0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="layer"):
        embed(model, tokenizer, CORPUS, layer=3)


def test_cls_pooling_is_the_first_tokens_state(model, tokenizer):
    """XTREME's `cls_pool_embedding` (its BUCC script): the <s> position of the layer, padding aside."""
    ids = tokenizer(CORPUS[1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = model(input_ids=ids, output_hidden_states=True).hidden_states[2][0, 0].numpy()
    got = embed(model, tokenizer, [CORPUS[1], CORPUS[0]], layer=2, pooling="cls", batch_size=2)[0]
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, embed(model, tokenizer, [CORPUS[1]], layer=2)[0], atol=1e-3)


def test_settings_refuse_unknown_keys_and_values():
    assert RetrievalSettings.from_dict({}) == RetrievalSettings(pooling="mean", layer=None, max_length=512,
                                                                batch_size=64, k=4, duplicates="xtreme")
    assert RetrievalSettings.from_dict({"pooling": "cls", "layer": 20}).pooling == "cls"
    with pytest.raises(ValueError, match=r"unknown retrieval setting\(s\) pool; known: pooling"):
        RetrievalSettings.from_dict({"pool": "cls"})
    with pytest.raises(ValueError, match="duplicates='all'; allowed: xtreme, jiant"):
        RetrievalSettings.from_dict({"duplicates": "all"})


def tatoeba_accuracy(english: np.ndarray, foreign: np.ndarray) -> float:
    """Tatoeba's accuracy as the retrieval family scores a table (English `target`, foreign `source`) whose
    sentence vectors are these, checked against its per-sentence predictions."""
    table = pd.DataFrame({"source": [f"foreign {i}" for i in range(len(foreign))],
                          "target": [f"english {i}" for i in range(len(english))]})
    vectors = dict(zip(table["source"], foreign, strict=True)) | dict(zip(table["target"], english, strict=True))
    rows, predictions = family("retrieval").evaluate("nearest", {"validation": table},
                                                     lambda texts: np.stack([vectors[t] for t in texts]),
                                                     RetrievalSettings())
    assert [{k: r[k] for k in ("split", "metric", "n_examples")} for r in rows] == [
        {"split": "validation", "metric": "accuracy", "n_examples": len(table)}]
    found = nearest(english, foreign)
    assert [p["prediction"] for p in predictions] == [str(j) for j in found]
    assert [p["gold"] for p in predictions] == [p["id"] for p in predictions] == [str(i) for i in range(len(table))]
    assert [p["score"] for p in predictions] == [100.0 * (j == i) for i, j in enumerate(found)]
    assert np.mean([p["score"] for p in predictions]) == pytest.approx(rows[0]["value"])
    return rows[0]["value"]


def test_tatoeba_accuracy_cosine_nearest_neighbour():
    source = np.array([[10.0, 0.0], [0.0, 1.0], [1.0, 0.05]])
    target = np.array([[1.0, 0.1], [10.0, 100.0], [1.0, 0.2]])
    # source 0 (angle 0): cos to t0 = 1 / |(1, 0.1)| = 0.995, to t1 = 10 / |(10, 100)| = 0.0995 (the largest
    #   dot product, 100 vs 1, but cosine ignores the norm), to t2 = 0.981 -> t0, right
    # source 1 (90 deg): cos to t1 = 0.995 is the largest -> right
    # source 2 (angle 2.9 deg): cos to t0 (5.7 deg) = cos(2.8 deg) = 0.9988, to t2 (11.3 deg) =
    #   cos(8.5 deg) = 0.989 -> t0, wrong
    assert tatoeba_accuracy(source, target) == pytest.approx(200 / 3)
    assert nearest(source, target).tolist() == [0, 1, 0]
    assert tatoeba_accuracy(target, target) == pytest.approx(100.0)


def _unit(degrees: list[float]) -> np.ndarray:
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_margin_scores_and_mining_by_hand():
    source = _unit([0, 90])  # x0, x1
    target = _unit([0, 90, 30])  # y0, y1, y2
    # cosines: x0 -> (y0 1, y1 0, y2 cos 30 = r3/2); x1 -> (y0 0, y1 1, y2 1/2); k = 2
    # mean of each one's 2 NN: x0 (1 + r3/2) / 2 = (2 + r3) / 4, x1 (1 + 1/2) / 2 = 3/4,
    #   y0 (1 + 0) / 2 = 1/2, y1 1/2, y2 (r3/2 + 1/2) / 2 = (r3 + 1) / 4
    r3 = math.sqrt(3)
    x0y0 = 1 / (((2 + r3) / 4 + 1 / 2) / 2)  # = 8 / (4 + r3) = 1.3957
    x0y2 = (r3 / 2) / (((2 + r3) / 4 + (r3 + 1) / 4) / 2)  # = 4 r3 / (3 + 2 r3) = 1.0718
    x1y1 = 1 / ((3 / 4 + 1 / 2) / 2)  # = 8 / 5 = 1.6
    x1y2 = (1 / 2) / ((3 / 4 + (r3 + 1) / 4) / 2)  # = 4 / (4 + r3) = 0.6978
    n = margin_scores(source, target, k=2)
    assert n.forward_index.tolist() == [[0, 2], [1, 2]]
    assert np.allclose(n.forward_score, [[x0y0, x0y2], [x1y1, x1y2]], atol=1e-5)
    assert n.backward_index.tolist() == [[0, 1], [1, 0], [0, 1]]
    assert np.allclose(n.backward_score, [[x0y0, 0], [x1y1, 0], [x0y2, x1y2]], atol=1e-5)
    # "max" retrieval: forward bests (x0, y0) 1.3957, (x1, y1) 1.6; backward bests (x0, y0), (x1, y1),
    # (x0, y2) 1.0718. By decreasing score: (x1, y1), its duplicate, (x0, y0), its duplicate, then
    # (x0, y2), dropped because x0 is taken: one-to-one.
    pairs = mine_pairs(source, target, k=2)
    assert list(pairs) == [(1, 1), (0, 0)]
    assert pairs[1, 1] == pytest.approx(x1y1, abs=1e-5)
    assert pairs[0, 0] == pytest.approx(x0y0, abs=1e-5)


def test_margin_scores_match_brute_force_in_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    source, target = rng.normal(size=(50, 8)), rng.normal(size=(40, 8))
    cos = (source / np.linalg.norm(source, axis=1, keepdims=True)) @ (
        target / np.linalg.norm(target, axis=1, keepdims=True)).T
    fwd_idx, bwd_idx = np.argsort(-cos, axis=1)[:, :4], np.argsort(-cos.T, axis=1)[:, :4]
    fwd_mean = np.take_along_axis(cos, fwd_idx, axis=1).mean(axis=1)
    bwd_mean = np.take_along_axis(cos.T, bwd_idx, axis=1).mean(axis=1)
    margin = cos / ((fwd_mean[:, None] + bwd_mean[None, :]) / 2)
    monkeypatch.setattr("xstilts.retrieval._BLOCK_ELEMENTS", 7 * 40)  # blocks of 7 source rows
    n = margin_scores(source, target, k=4)
    assert (n.forward_index == fwd_idx).all() and (n.backward_index == bwd_idx).all()
    assert np.allclose(n.forward_score, np.take_along_axis(margin, fwd_idx, axis=1), atol=1e-5)
    assert np.allclose(n.backward_score, np.take_along_axis(margin.T, bwd_idx, axis=1), atol=1e-5)


def test_tatoeba_ties_go_to_the_lowest_index():
    """Foreign sentences 0 and 1 are the same vector; English 0 is nearest to both: faiss (XTREME) takes
    index 0, right. English 1 is nearest to foreign 2: wrong either way. 4 of 5 right."""
    a, b, c, d = np.eye(4, dtype=np.float32)
    foreign = np.stack([a, a, b, c, d])
    english = np.stack([a, b + 0.1 * a, b, c, d])
    assert tatoeba_accuracy(english, foreign) == pytest.approx(80.0)
    assert nearest(english, foreign).tolist() == [0, 2, 2, 3, 4]


def test_neighbours_of_duplicated_vectors_rank_by_lowest_index(monkeypatch):
    """Many exact ties (a few distinct vectors, repeated): the k-NN lists both ways are those of a sort
    by similarity, then index, also across blocks. Unit vectors of four entries +-1/2: every cosine is a
    multiple of 1/4, exact whatever the order of the sums."""
    rng = np.random.default_rng(3)

    def vectors(distinct: int, n: int) -> np.ndarray:
        v = np.zeros((distinct, 8))
        for row in v:
            row[rng.choice(8, size=4, replace=False)] = rng.choice([-0.5, 0.5], size=4)
        return v[rng.integers(0, distinct, size=n)]

    source, target = vectors(6, 37), vectors(4, 29)
    cos = source @ target.T

    def ranked(sim: np.ndarray) -> np.ndarray:  # per row: by decreasing similarity, equal ones by index
        return np.array([np.lexsort((np.arange(len(row)), -row))[:4] for row in sim])

    monkeypatch.setattr("xstilts.retrieval._BLOCK_ELEMENTS", 5 * 29)  # blocks of 5 source rows
    n = margin_scores(source, target, k=4)
    assert (n.forward_index == ranked(cos)).all()
    assert (n.backward_index == ranked(cos.T)).all()


def test_bucc_threshold_on_dev_applied_to_test():
    dev = {(0, 0): 1.6, (1, 1): 1.4, (2, 5): 1.2, (3, 3): 1.1, (4, 9): 0.9}
    dev_gold = {(0, 0), (1, 1), (3, 3), (7, 7)}  # (7, 7) never mined
    # by decreasing score (extracted, correct, P, R, F1):
    # 1.6 yes (1, 1, 1, 1/4, 0.4); 1.4 yes (2, 2, 1, 1/2, 0.667); 1.2 no (3, 2, 2/3, 1/2, 0.571);
    # 1.1 yes (4, 3, 3/4, 3/4, 0.75) <- best; 0.9 no (5, 3, 3/5, 3/4, 0.667)
    # threshold = midpoint of 1.1 and the next score 0.9 = 1.0
    threshold = best_threshold(dev, dev_gold)
    assert threshold == pytest.approx(1.0)
    assert bucc_f1(dev, dev_gold, threshold) == pytest.approx({"precision": 75.0, "recall": 75.0, "f1": 75.0})
    test = {(0, 0): 1.3, (1, 2): 1.05, (2, 2): 0.95}
    # kept (>= 1.0): (0, 0) right, (1, 2) wrong -> P 1/2; gold (0, 0), (2, 2) -> R 1/2; F1 1/2
    assert bucc_f1(test, {(0, 0), (2, 2)}, threshold) == pytest.approx(
        {"precision": 50.0, "recall": 50.0, "f1": 50.0})


def test_bucc_threshold_edge_cases():
    # best F1 at the last candidate (after one: P 1, R 1/2, F1 2/3; after both: F1 1): its own score
    assert best_threshold({(0, 0): 2.0, (1, 1): 1.0}, {(0, 0), (1, 1)}) == pytest.approx(1.0)
    # no candidate is gold: 0.0, and nothing is right
    assert best_threshold({(0, 1): 2.0}, {(0, 0)}) == 0.0
    assert bucc_f1({(0, 1): 2.0}, {(0, 0)}, 0.0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
