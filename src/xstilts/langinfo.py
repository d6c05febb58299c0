"""Metadata of every target language: English name, family, script and resource class.

Resource classes are those of Joshi et al. (2020), "The State and Fate of Linguistic Diversity and
Inclusion in the NLP World" (ACL 2020): 0 "The Left-Behinds" ... 5 "The Winners". Source: the
authors' lang2tax.txt (https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt, lines
"name,class"), read from the copy shipped as data/lang2tax.txt in the `distals` 0.1.1 package; Chinese
is listed there as "mandarin", Punjabi as "eastern punjabi", Fon as "fongbe", Mossi as "mooré", Otomi as
"otomí", Ashaninka as "campa", Wixarika as "huichol", Raramuri as "tarahumara", Haitian Creole as "haitian" (2;
"haitian creole" has 0 there too). Ghomala, Dholuo and Hinglish (TextDetox's Hindi-English code-mixing) are not
listed: their class is None. Families are top-level language families (the names of XTREME's language table,
Hu et al. 2020; creoles as "Creole"); scripts are the writing systems the data use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from xstilts.languages import NAMES

RESOURCE_CLASSES: dict[int, str] = {
    0: "The Left-Behinds",
    1: "The Scraping-Bys",
    2: "The Hopefuls",
    3: "The Rising Stars",
    4: "The Underdogs",
    5: "The Winners",
}


@dataclass(frozen=True)
class LanguageInfo:
    """One language: ISO 639-1 code, English name, family, script, Joshi et al. resource class."""

    code: str
    name: str
    family: str
    script: str
    resource_class: int | None


_IE = "Indo-European"
_AA = "Afro-Asiatic"
_AN = "Austronesian"
_NC = "Niger-Congo"
_UA = "Uto-Aztecan"
# code: (family, script, resource class)
_META: dict[str, tuple[str, str, int | None]] = {
    "af": (_IE, "Latin", 3), "ar": (_AA, "Arabic", 5), "bg": (_IE, "Cyrillic", 3),
    "bn": (_IE, "Bengali", 3), "de": (_IE, "Latin", 5), "el": (_IE, "Greek", 3),
    "en": (_IE, "Latin", 5), "es": (_IE, "Latin", 5), "et": ("Uralic", "Latin", 3),
    "eu": ("Basque", "Latin", 4), "fa": (_IE, "Arabic", 4), "fi": ("Uralic", "Latin", 4),
    "fr": (_IE, "Latin", 5), "he": (_AA, "Hebrew", 3), "hi": (_IE, "Devanagari", 4),
    "hu": ("Uralic", "Latin", 4), "id": (_AN, "Latin", 3), "it": (_IE, "Latin", 4),
    "ja": ("Japonic", "Japanese", 5), "jv": (_AN, "Latin", 1), "ka": ("Kartvelian", "Georgian", 3),
    "kk": ("Turkic", "Cyrillic", 3), "ko": ("Koreanic", "Hangul", 4), "ml": ("Dravidian", "Malayalam", 1),
    "mr": (_IE, "Devanagari", 2), "ms": (_AN, "Latin", 3), "my": ("Sino-Tibetan", "Myanmar", 1),
    "nl": (_IE, "Latin", 4), "pt": (_IE, "Latin", 4), "ru": (_IE, "Cyrillic", 4),
    "sw": ("Niger-Congo", "Latin", 2), "ta": ("Dravidian", "Tamil", 3), "te": ("Dravidian", "Telugu", 1),
    "th": ("Kra-Dai", "Thai", 3), "tl": (_AN, "Latin", 3), "tr": ("Turkic", "Latin", 4),
    "ur": (_IE, "Arabic", 3), "vi": ("Austro-Asiatic", "Latin", 4), "yo": ("Niger-Congo", "Latin", 2),
    "zh": ("Sino-Tibetan", "Han", 5),
    # XTREME-R
    "az": ("Turkic", "Latin", 1), "gu": (_IE, "Gujarati", 1), "ht": ("Creole", "Latin", 2),
    "lt": (_IE, "Latin", 3), "pa": (_IE, "Gurmukhi", 2), "pl": (_IE, "Latin", 4), "qu": ("Quechuan", "Latin", 1),
    "ro": (_IE, "Latin", 3), "uk": (_IE, "Cyrillic", 3), "wo": (_NC, "Latin", 2),
    # MasakhaNER 2.0
    "bm": (_NC, "Latin", 1), "bbj": (_NC, "Latin", None), "ee": (_NC, "Latin", 1), "fon": (_NC, "Latin", 0),
    "ha": (_AA, "Latin", 2), "ig": (_NC, "Latin", 1), "rw": (_NC, "Latin", 1), "lg": (_NC, "Latin", 1),
    "luo": ("Nilo-Saharan", "Latin", None), "mos": (_NC, "Latin", 0), "ny": (_NC, "Latin", 1),
    "pcm": ("Creole", "Latin", 0), "sn": (_NC, "Latin", 1), "tn": (_NC, "Latin", 2), "tw": (_NC, "Latin", 1),
    "xh": (_NC, "Latin", 2), "zu": (_NC, "Latin", 2),
    # AmericasNLI
    "ay": ("Aymaran", "Latin", 1), "bzd": ("Chibchan", "Latin", 0), "cni": ("Arawakan", "Latin", 0),
    "gn": ("Tupian", "Latin", 1), "hch": (_UA, "Latin", 0), "nah": (_UA, "Latin", 1),
    "oto": ("Oto-Manguean", "Latin", 0), "shp": ("Panoan", "Latin", 0), "tar": (_UA, "Latin", 0),
    # TextDetox
    "am": (_AA, "Ge'ez", 2), "hin": (_IE, "Latin", None), "tt": ("Turkic", "Cyrillic", 1),
}  # fmt: skip

LANGUAGES: dict[str, LanguageInfo] = {
    code: LanguageInfo(code, NAMES[code], *meta) for code, meta in sorted(_META.items())
}


def language_frame(codes: Sequence[str]) -> pd.DataFrame:
    """name, family, script and (resource) class of each language, indexed by code, sorted by class, then code
    (a code without metadata, e.g. a demo's own, first, with empty fields)."""
    def order(code: str) -> tuple[int, str]:  # a class of None (not in Joshi et al.'s list) with the unknown
        known = LANGUAGES[code].resource_class if code in LANGUAGES else None
        return (-1 if known is None else known, code)

    ordered = sorted(codes, key=order)
    return pd.DataFrame([{"name": LANGUAGES[c].name, "family": LANGUAGES[c].family, "script": LANGUAGES[c].script,
                          "class": LANGUAGES[c].resource_class} if c in LANGUAGES else {} for c in ordered],
                        index=pd.Index(ordered, name="language"), columns=["name", "family", "script", "class"])
