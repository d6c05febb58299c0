"""UD-POS as XTREME reads a UD release (`sources.udpos`), on a hand-made UD tree in the release's layout
(tests/fixtures/local/ud-treebanks-v2.5: Greek GDT beside Ancient Greek PROIEL, two English treebanks, a
Spanish tie), against the hub copy, whose languages with other treebanks are marked not comparable; and the
demo's generated UD release."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from xstilts.catalogue import TARGETS, UDPOS_HUB_OTHER_TREEBANKS, UPOS_TAGS
from xstilts.data import Sources, prepare_dataset, prepare_target
from xstilts.demo.world import UD_FOLDER, DemoSizes, generate_hub_mirror
from xstilts.errors import DataError
from xstilts.ud import read_file

FIXTURES = Path(__file__).parent / "fixtures"
UD = FIXTURES / "local" / "ud-treebanks-v2.5"
TAG = {t: i for i, t in enumerate(UPOS_TAGS)}


def tagged(*sentences: tuple[list[str], list[str]]) -> list[dict]:
    return [{"tokens": tokens, "tags": [TAG[t] for t in tags]} for tokens, tags in sentences]


def rows(path: Path) -> list[dict]:
    return [{"tokens": list(r["tokens"]), "tags": list(r["tags"])} for r in pd.read_parquet(path).to_dict("records")]


def test_udpos_from_a_ud_release_is_what_xtreme_reads(tmp_path: Path) -> None:
    meta = prepare_target("udpos", ["el", "en"], tmp_path, Sources(local={"udpos": UD}))
    assert rows(tmp_path / "test" / "el.parquet") == tagged(
        (["Πήγα", "στον", "κήπο", "."], ["VERB", "ADP", "NOUN", "PUNCT"]),  # fused; tie: ADP before DET
        (["Είδα", "στην", "πόλη", "."], ["VERB", "DET", "NOUN", "PUNCT"]),  # an enhanced edge: DET is higher
        (["Αυτό", "έχειδει", "."], ["PRON", "AUX", "PUNCT"]),  # the higher word heads the span
        (["_", "_", "καλή", "μέρα"], ["X", "X", "ADJ", "NOUN"]),  # the text-less sentences are gone
        (["Στη", "ΝέαΥόρκη", "καλά"], ["ADP", "PROPN", "ADV"]))  # spaces and zero-width non-joiners removed
    # no Ancient Greek (grc_proiel): XTREME selects files by ISO prefix; English: both treebanks, in name order
    assert rows(tmp_path / "test" / "en.parquet") == tagged((["Fish", "swim"], ["NOUN", "VERB"]),
                                                           (["Ants", "work", "!"], ["NOUN", "VERB", "PUNCT"]))
    assert rows(tmp_path / "validation" / "el.parquet") == tagged(
        (["Η", "γάτα", "κοιμάται", "."], ["DET", "NOUN", "VERB", "PUNCT"]))
    assert meta["not_comparable"] == {}
    assert meta["rows"] == {"validation": {"el": 1, "en": 1}, "test": {"el": 5, "en": 2}}
    [origin] = meta["data"]
    assert origin["folder"] == str(UD) and origin["files"] == 5 and len(origin["sha256"]) == 64


def test_the_release_digest_follows_the_files_read(tmp_path: Path) -> None:
    copy = tmp_path / "ud"
    shutil.copytree(UD, copy)
    first = prepare_target("udpos", ["el"], tmp_path / "a", Sources(local={"udpos": copy}))["data"][0]["sha256"]
    (copy / "UD_Ancient_Greek-PROIEL" / "grc_proiel-ud-test.conllu").unlink()  # not read: same digest
    assert prepare_target("udpos", ["el"], tmp_path / "b", Sources(local={"udpos": copy}))["data"][0]["sha256"] == first
    test = copy / "UD_Greek-GDT" / "el_gdt-ud-test.conllu"
    test.write_text(test.read_text(encoding="utf-8").replace("κήπο", "κήπου"), encoding="utf-8")
    assert prepare_target("udpos", ["el"], tmp_path / "c", Sources(local={"udpos": copy}))["data"][0]["sha256"] != first


def test_the_english_training_set_comes_from_the_release_too(tmp_path: Path) -> None:
    meta = prepare_dataset("udpos", tmp_path, Sources(local={"udpos": UD}))
    assert rows(tmp_path / "train.parquet") == tagged((["Dogs", "bark", "."], ["NOUN", "VERB", "PUNCT"]),
                                                      (["Cats", "sleep"], ["NOUN", "VERB"]))
    assert rows(tmp_path / "dev.parquet") == tagged((["Birds", "sing"], ["NOUN", "VERB"]))
    assert meta["data"][0]["files"] == 2


def test_span_heads_use_the_languages_precedence_list() -> None:
    """conllu_to_conll.py ranks tied heads by a list per language: Spanish puts AUX before PRON."""
    file = UD / "UD_Spanish-GSD" / "es_gsd-ud-test.conllu"
    assert read_file(file, "es") == [(["Come", "seha"], ["VERB", "AUX"])]
    assert read_file(file, "de") == [(["Come", "seha"], ["VERB", "PRON"])]  # the default list


def test_a_missing_release_names_sources_udpos(tmp_path: Path) -> None:
    gone = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"`sources\.udpos` is {gone}, which does not exist: point it at a UD v2\.5"):
        prepare_target("udpos", ["el"], tmp_path / "out", Sources(local={"udpos": gone}))
    with pytest.raises(DataError, match=r"`sources\.udpos` is .* holds no UD_\*/ru_\*-ud-dev\.conllu"):
        prepare_target("udpos", ["ru"], tmp_path / "out", Sources(local={"udpos": UD}))
    assert not (tmp_path / "out" / "meta.json").exists()


def test_the_hub_copy_marks_languages_with_other_treebanks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    meta = prepare_target("udpos", ["en", "el", "af"], tmp_path, Sources(hub_mirror=FIXTURES / "hub"))
    assert rows(tmp_path / "test" / "el.parquet")[1]["tokens"] == ["ἐν", "ἀρχῇ", "ἦν", "ὁ", "λόγος"]  # as on the hub
    assert meta["not_comparable"] == {"el": "the hub's udpos.Greek mixes in " + UDPOS_HUB_OTHER_TREEBANKS["el"]}
    assert "Ancient Greek" in meta["not_comparable"]["el"]
    log = capsys.readouterr().err
    assert "udpos el is not comparable with XTREME's numbers" in log and "`sources.udpos`" in log
    assert json.loads((tmp_path / "meta.json").read_text())["not_comparable"] == meta["not_comparable"]


def test_hub_languages_with_other_treebanks_are_the_ones_checked_against_ud_v2_5() -> None:
    """Row counts of the hub's configs (README dataset_info) = their own ISO treebanks plus the others
    (stats.xml at tag r2.5): Greek GDT + grc_perseus + grc_proiel, Russian ru_* + orv_*, and so on."""
    hub = {"el": (28152, 2559, 2809), "ru": (67435, 9960, 11336), "zh": (18998, 3038, 5528),
           "fr": (47308, 5979, 9465), "de": (166849, 19233, 22458)}
    own = {"el": (1662, 403, 456), "ru": (3850 + 48814 + 1435, 579 + 6584 + 945, 601 + 1000 + 6491 + 884),
           "zh": (3997 + 3997, 500 + 500, 500 + 500 + 451 + 1004 + 1000),
           "fr": (14759 + 14450 + 803 + 2231 + 1156, 1235 + 1476 + 107 + 412 + 907,
                  2289 + 2541 + 416 + 1000 + 110 + 456 + 726),
           "de": (13814 + 153035, 799 + 18434, 977 + 18459 + 1922 + 1000)}
    other = {"el": (15014 + 11476, 1019 + 1137, 1047 + 1306), "ru": (13336, 1852, 604 + 1756),
             "zh": (11004, 2038, 2073), "fr": (13909, 1842, 1927), "de": (0, 0, 100)}
    assert set(UDPOS_HUB_OTHER_TREEBANKS) == set(hub)
    for lang, counts in hub.items():
        assert counts == tuple(a + b for a, b in zip(own[lang], other[lang], strict=True)), lang
        assert f"{other[lang][2]:,} of {counts[2]:,} test" in UDPOS_HUB_OTHER_TREEBANKS[lang]
    assert {lang for lang in TARGETS["udpos"].languages if TARGETS["udpos"].hub_caveat(lang)} == set(hub)


def test_bucc_from_the_hub_is_marked_and_from_the_original_files_is_not(tmp_path: Path) -> None:
    hub = prepare_target("bucc", ["de"], tmp_path / "hub", Sources(hub_mirror=FIXTURES / "hub"))
    assert list(hub["not_comparable"]) == ["de"] and "gold pairs only" in hub["not_comparable"]["de"]
    files = prepare_target("bucc", ["de"], tmp_path / "files",
                           Sources(local={"bucc": FIXTURES / "local" / "bucc2018"}))
    assert files["not_comparable"] == {}
    assert files["data"][0]["folder"] == str(FIXTURES / "local" / "bucc2018") and files["data"][0]["files"] == 6


def test_the_demo_world_writes_a_ud_release_with_a_treebank_xtreme_leaves_out(tmp_path: Path) -> None:
    sizes = DemoSizes(train=30, dev=10, eval=20, corpus=10)
    generate_hub_mirror(tmp_path / "hub", {"udpos": ["en", "ru"]}, seed=0, sizes=sizes)
    release = tmp_path / "hub" / "local" / UD_FOLDER
    assert sorted(p.relative_to(release).as_posix() for p in release.rglob("*.conllu")) == [
        "UD_English-Demo/en_demo-ud-dev.conllu", "UD_English-Demo/en_demo-ud-test.conllu",
        "UD_English-Demo/en_demo-ud-train.conllu", "UD_Old_Russian-Demo/qru_demo-ud-test.conllu",
        "UD_Russian-Demo/ru_demo-ud-dev.conllu", "UD_Russian-Demo/ru_demo-ud-test.conllu"]
    local = prepare_target("udpos", ["en", "ru"], tmp_path / "local",
                           Sources(hub_mirror=tmp_path / "hub", local={"udpos": release}))
    mirror = prepare_target("udpos", ["en", "ru"], tmp_path / "mirror", Sources(hub_mirror=tmp_path / "hub"))
    assert local["rows"] == mirror["rows"] and local["not_comparable"] == {}
    assert list(mirror["not_comparable"]) == ["ru"]
    # the same sentences; outside English an ADP + DET pair is one (fused) word, tagged ADP
    ud_ru, hub_ru = (pd.read_parquet(tmp_path / d / "test" / "ru.parquet") for d in ("local", "mirror"))
    text = release.joinpath("UD_Russian-Demo", "ru_demo-ud-test.conllu").read_text(encoding="utf-8")
    fused = len(re.findall(r"^\d+-\d+\t", text, flags=re.M))
    assert fused > 0 and ud_ru["tokens"].map(len).sum() == hub_ru["tokens"].map(len).sum() - fused
    old = {tuple(t) for t in pd.DataFrame(read_file(release / "UD_Old_Russian-Demo" / "qru_demo-ud-test.conllu",
                                                    "qru"))[0]}
    assert not old & {tuple(t) for t in ud_ru["tokens"]}  # the Old Russian treebank is not read
    en_ud, en_hub = (pd.read_parquet(tmp_path / d / "test" / "en.parquet") for d in ("local", "mirror"))
    pd.testing.assert_frame_equal(en_ud, en_hub)  # English: no multiword tokens, the same rows
