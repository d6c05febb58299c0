"""Metadata of every XTREME target language: English name, family, script and resource class.

Resource classes are those of Joshi et al. (2020), "The State and Fate of Linguistic Diversity and
Inclusion in the NLP World" (ACL 2020): 0 "The Left-Behinds" ... 5 "The Winners". Source: the
authors' lang2tax.txt (https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt, lines
"name,class"), read from the copy shipped as data/lang2tax.txt in the `distals` 0.1.1 package; Chinese
is listed there as "mandarin". Families are top-level language families (the names of XTREME's
language table, Hu et al. 2020); scripts are the writing systems the XTREME data uses.
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
    resource_class: int


_IE = "Indo-European"
_AA = "Afro-Asiatic"
_AN = "Austronesian"
# code: (family, script, resource class)
_META: dict[str, tuple[str, str, int]] = {
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
}  # fmt: skip

LANGUAGES: dict[str, LanguageInfo] = {
    code: LanguageInfo(code, NAMES[code], *meta) for code, meta in sorted(_META.items())
}


def language_frame(codes: Sequence[str]) -> pd.DataFrame:
    """name, family, script and (resource) class of each language, indexed by code, sorted by class, then code
    (a code without metadata, e.g. a demo's own, first, with empty fields)."""
    ordered = sorted(codes, key=lambda c: (LANGUAGES[c].resource_class if c in LANGUAGES else -1, c))
    return pd.DataFrame([{"name": LANGUAGES[c].name, "family": LANGUAGES[c].family, "script": LANGUAGES[c].script,
                          "class": LANGUAGES[c].resource_class} if c in LANGUAGES else {} for c in ordered],
                        index=pd.Index(ordered, name="language"), columns=["name", "family", "script", "class"])
