"""Alignment probes: linear CKA and isotropy on cases with known answers, the parallel pairs each target's data
give, the probe job on a tiny encoder, and the tables that join alignment gains with transfer gains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xstilts.alignment import (
    MEASURES,
    align,
    alignment_transfer,
    correlations,
    isotropy,
    layer_means,
    linear_cka,
    parallel_pairs,
    retrieval_accuracy,
    target_pairs,
)
from xstilts.results_io import read_alignment
from xstilts.settings import AlignmentSettings, JobSize
from xstilts.specs import AlignSpec, read_spec

RNG = np.random.default_rng(0)


def test_linear_cka_known_answers() -> None:
    x = RNG.normal(size=(500, 16))
    rotation, _ = np.linalg.qr(RNG.normal(size=(16, 16)))
    assert linear_cka(x, x) == pytest.approx(1.0)  # identical
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0)  # a random rotation
    assert linear_cka(x, 3.0 * x + 7.0) == pytest.approx(1.0)  # scaled and shifted: CKA centres
    noise = linear_cka(RNG.normal(size=(2000, 8)), RNG.normal(size=(2000, 8)))
    assert 0 <= noise < 0.02  # independent noise: near 0 (about dimensions / examples)
    assert linear_cka(np.ones((5, 3)), x[:5, :3]) == 0.0  # a constant representation
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(x[:3], x[:4])


def test_isotropy_and_retrieval_accuracy_known_answers() -> None:
    spread = RNG.normal(size=(2000, 64))
    assert abs(isotropy(spread, 5000, np.random.default_rng(1))) < 0.02  # every direction: mean cosine near 0
    cone = np.ones((50, 8)) + 0.01 * RNG.normal(size=(50, 8))
    assert isotropy(cone, 500, np.random.default_rng(1)) > 0.99  # one narrow cone: near 1
    assert np.isnan(isotropy(spread[:1], 10, np.random.default_rng(1)))
    queries = np.eye(4)
    assert retrieval_accuracy(queries, queries) == 100.0
    assert retrieval_accuracy(queries, queries[[1, 0, 2, 3]]) == 50.0


def write_tables(folder: Path, tables: dict[str, pd.DataFrame], languages: list[str]) -> None:
    for name, df in tables.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(folder / f"{name}.parquet")
    (folder / "meta.json").write_text(json.dumps({"languages": languages}))


@pytest.fixture
def parallel(tmp_path: Path) -> dict[str, Path]:
    """Tatoeba-, XNLI- and XQuAD-shaped tables of English and German, some sentences shared between them."""
    data = {"tatoeba": tmp_path / "tatoeba", "xnli": tmp_path / "xnli", "xquad": tmp_path / "xquad"}
    write_tables(data["tatoeba"], {"validation/de": pd.DataFrame({"source": ["der hund", "die katze", None],
                                                                   "target": ["the dog", "the cat", "the cow"]})},
                 ["de"])
    nli = {lang: pd.DataFrame({"text_a": [f"{p} eins", f"{p} eins", f"{p} zwei"], "text_b": [f"{p} a", f"{p} b",
                                                                                                 f"{p} c"],
                               "label": [0, 1, 2]}) for lang, p in (("en", "one"), ("de", "ein"))}
    write_tables(data["xnli"], {f"validation/{lang}": df for lang, df in nli.items()}, ["en", "de"])
    questions = {"en": (["q1", "q2", "q3"], ["where is the dog", "what", "who"]),
                 "de": (["q3", "q1"], ["wer", "wo ist der hund"])}
    write_tables(data["xquad"], {f"validation/{lang}": pd.DataFrame({"id": ids, "question": qs})
                                 for lang, (ids, qs) in questions.items()}, ["en", "de"])
    return data


def test_each_target_pairs_sentences_as_its_data_do(parallel: dict[str, Path]) -> None:
    assert target_pairs("tatoeba", parallel["tatoeba"], "de") == [("the dog", "der hund"), ("the cat", "die katze")]
    assert target_pairs("xnli", parallel["xnli"], "de") == [
        ("one eins", "ein eins"), ("one eins", "ein eins"), ("one zwei", "ein zwei"),
        ("one a", "ein a"), ("one b", "ein b"), ("one c", "ein c")]
    assert target_pairs("xquad", parallel["xquad"], "de") == [("who", "wer"), ("where is the dog", "wo ist der hund")]
    assert target_pairs("xquad", parallel["xquad"], "fr") == []
    pairs = parallel_pairs(parallel, "de", max_pairs=100, seed=0)
    assert len(pairs) == 2 + 5 + 2 and len({en for en, _ in pairs}) == len(pairs)  # each side unique
    assert parallel_pairs(parallel, "de", max_pairs=4, seed=0) == parallel_pairs(parallel, "de", max_pairs=4, seed=0)
    assert len(parallel_pairs(parallel, "de", max_pairs=4, seed=0)) == 4


def test_the_probe_job_measures_every_layer_and_language(parallel: dict[str, Path], tiny_encoder: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "results/alignment/intermediate=none/seed=1/alignment.parquet"
    spec = AlignSpec(log=tmp_path / "log", row="none", seed=1, encoder=tiny_encoder, data=parallel, out=out,
                     settings=AlignmentSettings(isotropy_pairs=50), job_size=JobSize(0, 1, 1000, 10))
    frame = align(spec)
    assert read_spec(out.parent) == spec
    assert set(frame["language"]) == {"de", "en"} and set(frame["layer"]) == {0, 1, 2}  # embeddings + 2 layers
    german = frame[frame["language"] == "de"]
    assert len(german) == 3 * len(MEASURES) and set(german["n"]) == {9}
    assert set(frame[frame["language"] == "en"]["measure"]) == {"isotropy"}
    assert german[german["measure"] == "cka"]["value"].between(0, 1).all()
    assert german[german["measure"].str.startswith("retrieval")]["value"].between(0, 100).all()
    read = read_alignment(tmp_path / "results/alignment")
    assert len(read) == len(frame) and set(read["intermediate"]) == {"none"} and set(read["seed"]) == {1}


def test_identical_sentences_align_perfectly_at_every_layer(tmp_path: Path, tiny_encoder: Path) -> None:
    same = ["the dog runs", "a cat sleeps", "rome is a city", "anna works at acme"]
    data = {"tatoeba": tmp_path / "tatoeba"}
    write_tables(data["tatoeba"], {"validation/de": pd.DataFrame({"source": same, "target": same})}, ["de"])
    spec = AlignSpec(log=tmp_path / "log", row="none", seed=1, encoder=tiny_encoder, data=data,
                     out=tmp_path / "a.parquet", settings=AlignmentSettings(), job_size=JobSize(0, 1, 1000, 10))
    frame = align(spec)
    german = frame[frame["language"] == "de"].pivot(index="layer", columns="measure", values="value")
    assert (german["retrieval_en_xx"] == 100).all() and (german["retrieval_xx_en"] == 100).all()
    assert np.allclose(german["cka"], 1.0)


def test_alignment_gains_join_transfer_gains_with_their_correlation() -> None:
    rows = ["none", "mnli", "sst2", "qqp", "untrained"]
    alignment = pd.DataFrame([
        {"intermediate": r, "seed": 1, "language": lang, "layer": layer, "measure": m, "value": v}
        for r, base in (("none", 0.0), ("mnli", 1.0), ("sst2", 2.0), ("qqp", 4.0), ("untrained", 9.0))
        for lang, shift in (("de", 0.0), ("ru", 10.0)) for layer in (0, 1, 2)
        for m, v in (("cka", base + shift + layer), ("retrieval_en_xx", 2 * base), ("retrieval_xx_en", 0.0),
                     ("isotropy", -base))])
    cells = pd.DataFrame([{"intermediate": r, "target": "xnli", "seed": 1, "language": lang, "value": v + extra}
                          for r, v in (("none", 50.0), ("mnli", 51.0), ("sst2", 52.0), ("qqp", 54.0),
                                       ("untrained", 0.0)) for lang, extra in (("de", 0.0), ("ru", 1.0),
                                                                               ("en", 30.0))])
    joined = alignment_transfer(alignment, cells, rows, layer=1)
    assert set(joined["intermediate"]) == {"mnli", "sst2", "qqp"} and set(joined["language"]) == {"de", "ru"}
    mnli = joined[(joined["intermediate"] == "mnli") & (joined["language"] == "ru")].iloc[0]
    # cka 1 + 10 + 1 - (0 + 10 + 1) = 1; retrieval mean of (2, 0) = 1; isotropy -1; transfer 52 - 51 = 1
    assert (mnli["transfer_gain"], mnli["cka"], mnli["retrieval"], mnli["isotropy"]) == (1.0, 1.0, 1.0, -1.0)
    found = correlations(joined).set_index(["target", "measure"])
    assert found.loc[("xnli", "cka"), "n"] == 6 and found.loc[("xnli", "cka"), "pearson"] == pytest.approx(1.0)
    assert found.loc[("xnli", "isotropy"), "spearman"] == pytest.approx(-1.0)
    means = layer_means(alignment, rows)
    assert means[(means["intermediate"] == "none") & (means["measure"] == "cka")]["value"].tolist() == [5, 6, 7]
