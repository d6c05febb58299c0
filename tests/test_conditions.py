"""The perturbed evaluation conditions: each transform's output pinned on fixed inputs, script-aware typos,
labels and answer spans intact on every family's tables (a property over many seeds and texts), the same
text perturbed the same way, the sample of the examples, and the MUSE lexicons (the demo's exact)."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import sentences
from xstilts import lexicons
from xstilts.conditions import (
    CONDITIONS,
    PERTURBATIONS,
    case_punct,
    char_noise,
    code_switch,
    neighbours,
    perturb,
    perturb_text,
    sample_rows,
    script,
    switch_languages,
    word_order,
)
from xstilts.demo.world import DemoSizes, generate_hub_mirror
from xstilts.settings import CodeSwitchSettings, NoiseSettings, RobustnessSettings

HIGH = NoiseSettings(rate=0.5)
SWITCHES = {"house": (("de", ("Haus",)), ("fr", ("maison",))), "red": (("de", ("rot",)),),
            "lives": (("de", ("lebt", "wohnt")),)}


def pinned(transform, text: str) -> str:
    return perturb_text(text, transform, random.Random("pin"))[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("The quick brown fox jumps over the lazy dog.", "Teh quick brown ofx jump over the lazy dog."),
    ("Москва — столица России.", "Мосвка — столица России."),
    ("تقع مدينة القاهرة على ضفاف نهر النيل", "تعق مدينة القاهرة لعى ضفغاف هر النيل"),
    ("北京是中国的首都", "国京中的皅首"),
    ("भारत एक विशाल देश है", "भातर एक विशाल तेश है"),
])
def test_char_noise_is_pinned(text: str, expected: str) -> None:
    assert pinned(char_noise(HIGH), text) == expected


def test_case_punct_word_order_and_code_switch_are_pinned() -> None:
    assert pinned(case_punct(HIGH), "Anna lives in Paris, (really) well!") == "anna Lives In paris, (really Well!"
    # adjacent words swap, their punctuation stays where it was
    assert pinned(word_order(HIGH), "one two, three four five six.") == "two one, four three six five."
    # a capitalised word's translation is capitalised; the punctuation around a word stays
    assert pinned(code_switch(NoiseSettings(rate=1.0), SWITCHES), "The red house, Red House!") == \
        "The rot Haus, Rot Haus!"


def test_typos_stay_in_the_words_script_and_leave_digits() -> None:
    texts = ["Москва столица России 1917", "تقع مدينة القاهرة على ضفاف نهر النيل 2024", "北京是中国的首都 1949",
             "भारत एक विशाल देश है 1947", "Ελλάδα είναι χώρα 1830", "서울은 한국의 수도이다 1394"]
    for text in texts:
        own = {script(c) for c in text if unicodedata.category(c).startswith("L")}
        for seed in range(30):
            out = perturb_text(text, char_noise(NoiseSettings(rate=1.0)), random.Random(seed))[0]
            assert {script(c) for c in out if unicodedata.category(c).startswith("L")} <= own, (text, out)
            assert [c for c in out if c.isdigit()] == [c for c in text if c.isdigit()]
    # keyboard neighbours: left, right, above and below (QWERTY, ЙЦУКЕН); elsewhere the script's nearby letters
    assert neighbours("s") == "adwx" and neighbours("S") == "ADWX" and neighbours("к") == "уеа"
    assert all(script(c) == "CJK" for c in neighbours("京"))


def _tables(seed: int) -> dict[str, pd.DataFrame]:
    """A table of each family, from random sentences (some repeated, some with punctuation)."""
    rng = random.Random(seed)
    texts = [s + rng.choice(["", ".", ", yes!", " (no)"]) for s in sentences(12, seed)]
    texts[3] = texts[1]
    qa = []
    for i, text in enumerate(texts):
        words = text.split()
        k = rng.randrange(len(words))
        answer = words[k].strip(".,!()") or words[k]
        start = sum(len(w) + 1 for w in words[:k]) + words[k].index(answer)
        qa.append({"id": f"q{i}", "context": f"{text} {texts[-1 - i]}", "question": f"who {i} ?",
                   "answer_texts": [answer], "answer_starts": [start]})
    return {
        "pair_classification": pd.DataFrame({"text_a": texts, "text_b": [None, *texts[1:]],
                                             "label": [i % 3 for i in range(len(texts))]}),
        "tagging": pd.DataFrame({"tokens": [t.split() for t in texts], "tags": [[i % 4] * len(t.split())
                                                                                 for i, t in enumerate(texts)]}),
        "qa": pd.DataFrame(qa),
        "retrieval": pd.DataFrame({"source": [*texts[:-1], None], "target": texts[::-1]}),
    }


SETTINGS = {"char_noise": NoiseSettings(rate=0.7), "case_punct": NoiseSettings(rate=0.7),
            "word_order": NoiseSettings(rate=0.7), "code_switch": CodeSwitchSettings(rate=0.7)}
WORDS = {w: (("xx", (w.upper() + "X",)),) for w in "anna bob lives works in at paris rome the a film good".split()}


@pytest.mark.parametrize("condition", list(SETTINGS))
def test_labels_and_spans_stay_exact_on_every_family(condition: str) -> None:
    for seed in range(15):
        for family, df in _tables(seed).items():
            if not CONDITIONS[condition].serves(family):
                continue
            out = perturb(df, family, condition, SETTINGS[condition], "en", seed, WORDS)
            assert len(out) == len(df) and list(out.columns) == list(df.columns)
            if family == "pair_classification":
                assert out["label"].tolist() == df["label"].tolist() and pd.isna(out["text_b"].iat[0])
            if family == "tagging":
                assert out["tags"].map(list).tolist() == df["tags"].map(list).tolist()
                assert [len(t) for t in out["tokens"]] == [len(t) for t in df["tokens"]]
                assert all(w for tokens in out["tokens"] for w in tokens)
            if family == "qa":
                assert out["id"].tolist() == df["id"].tolist()
                for context, texts, starts in zip(out["context"], out["answer_texts"], out["answer_starts"],
                                                  strict=True):
                    assert [context[s:s + len(t)] for t, s in zip(texts, starts, strict=True)] == list(texts)
            if family == "retrieval":
                assert out["target"].tolist() == df["target"].tolist() and pd.isna(out["source"].iat[-1])
    changed = perturb(_tables(0)["qa"], "qa", condition, SETTINGS[condition], "en", 0, WORDS)
    assert (changed["context"] != _tables(0)["qa"]["context"]).any()


def test_the_same_text_is_perturbed_the_same_way_and_the_seed_matters() -> None:
    df = _tables(1)["pair_classification"]
    out = perturb(df, "pair_classification", "char_noise", HIGH, "de", 7)
    assert out["text_a"].iat[1] == out["text_a"].iat[3]  # a repeated premise: one perturbation
    assert perturb(df, "pair_classification", "char_noise", HIGH, "de", 7).equals(out)
    assert not perturb(df, "pair_classification", "char_noise", HIGH, "de", 8).equals(out)
    assert not perturb(df, "pair_classification", "char_noise", HIGH, "ru", 7).equals(out)
    assert perturb(df, "pair_classification", "char_noise", NoiseSettings(rate=0.0), "de", 7).equals(df)


def test_a_condition_refuses_a_family_it_cannot_keep_exact() -> None:
    assert not CONDITIONS["word_order"].serves("tagging")  # a swap would break entity spans
    assert CONDITIONS["adversarial"].families == {"classification", "pair_classification"}
    with pytest.raises(ValueError, match="does not perturb tagging tables; it serves classification"):
        perturb(_tables(0)["tagging"], "tagging", "word_order", HIGH, "en", 0)
    assert set(PERTURBATIONS) == {f for f in RobustnessSettings.__dataclass_fields__
                                  if f not in ("conditions", "targets", "seed", "sample")}


def test_switch_languages_default_to_english_and_from_english_to_the_others() -> None:
    assert switch_languages("de", None, ["en", "de", "ru"]) == ("en",)
    assert switch_languages("en", None, ["en", "de", "ru"]) == ("de", "ru")
    assert switch_languages("de", ["de", "fr"], ["en", "de"]) == ("fr",)
    assert switch_languages("en", ["en"], ["en", "de"]) == ()


def test_the_sample_is_seeded_in_table_order_and_whole_at_one() -> None:
    picked = sample_rows(100, 0.25, 0, "de", "test")
    assert len(picked) == 25 and picked == sorted(picked) == sample_rows(100, 0.25, 0, "de", "test")
    assert picked != sample_rows(100, 0.25, 0, "fr", "test")  # another language
    assert picked != sample_rows(100, 0.25, 1, "de", "test")  # another seed
    assert sample_rows(7, 1.0, 0, "de", "test") == list(range(7)) and len(sample_rows(3, 0.01, 0, "de", "x")) == 1


def test_muse_lexicons_are_read_as_muse_writes_them(tmp_path: Path) -> None:
    (tmp_path / "de-en.txt").write_text("haus house\nhaus home\nhaus\thouse\nrot red\nname name\nzu viel too much\n",
                                        encoding="utf-8")
    assert lexicons.parse((tmp_path / "de-en.txt").read_text()) == {"haus": ("house", "home"), "rot": ("red",)}
    assert lexicons.parse(lexicons.render({"a": ("b", "c")})) == {"a": ("b", "c")}
    assert lexicons.pairs_in(tmp_path) == {("de", "en")} and lexicons.pairs_in(tmp_path / "none") == set()
    found, digest = lexicons.switches(tmp_path, "de", ["en"])
    assert found == {"haus": (("en", ("house", "home")),), "rot": (("en", ("red",)),)} and len(digest) == 64
    with pytest.raises(FileNotFoundError, match=r"no lexicon de-fr\.txt"):
        lexicons.switches(tmp_path, "de", ["en", "fr"])
    assert lexicons.demo_pairs(["de"]) == {("de", "en"), ("en", "de")}


def test_the_demo_world_writes_exact_lexicons(tmp_path: Path) -> None:
    """Every German word of the demo's XNLI translates back to the English sentence through de-en.txt."""
    generate_hub_mirror(tmp_path, {"xnli": ["en", "de"]}, sizes=DemoSizes(train=10, dev=10, eval=10, corpus=10))
    assert lexicons.pairs_in(tmp_path / lexicons.FOLDER) == {("de", "en"), ("en", "de")}
    table = pd.read_parquet(tmp_path / "google/xtreme/XNLI/test.parquet")
    german, english = (table[table["language"] == lang]["sentence1"].tolist() for lang in ("de", "en"))
    found, _ = lexicons.switches(tmp_path / lexicons.FOLDER, "de", ["en"])
    back = [pinned(code_switch(NoiseSettings(rate=1.0), found), text) for text in german]
    assert [b.lower() for b in back] == [e.lower() for e in english]
