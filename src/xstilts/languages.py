"""Language codes and the spellings each data set uses for them.

A language is its ISO 639-1 code where it has one, else its ISO 639-3 code (MasakhaNER's Ghomala `bbj`,
AmericasNLI's Bribri `bzd`, ...); `hin` is TextDetox's Hinglish (Hindi-English code-mixing in Latin script).
"""

from __future__ import annotations

# code -> English name, for every language of the catalogue's targets.
NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "jv": "Javanese",
    "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "ml": "Malayalam", "mr": "Marathi",
    "ms": "Malay", "my": "Burmese", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
    # XTREME-R's new languages
    "az": "Azerbaijani", "gu": "Gujarati", "ht": "Haitian Creole", "lt": "Lithuanian", "pa": "Punjabi",
    "pl": "Polish", "qu": "Quechua", "ro": "Romanian", "uk": "Ukrainian", "wo": "Wolof",
    # MasakhaNER 2.0
    "bm": "Bambara", "bbj": "Ghomala", "ee": "Ewe", "fon": "Fon", "ha": "Hausa", "ig": "Igbo",
    "rw": "Kinyarwanda", "lg": "Luganda", "luo": "Dholuo", "mos": "Mossi", "ny": "Chichewa",
    "pcm": "Nigerian Pidgin", "sn": "Shona", "tn": "Setswana", "tw": "Twi", "xh": "Xhosa", "zu": "Zulu",
    # AmericasNLI
    "ay": "Aymara", "bzd": "Bribri", "cni": "Ashaninka", "gn": "Guarani", "hch": "Wixarika", "nah": "Nahuatl",
    "oto": "Otomi", "shp": "Shipibo-Konibo", "tar": "Raramuri",
    # TextDetox
    "am": "Amharic", "hin": "Hinglish", "tt": "Tatar",
}  # fmt: skip

# `google/xtreme` udpos configs use English names. The script-era card listed `udpos.Afrikans`; the
# parquet conversion that datasets >= 4 loads names it `udpos.Afrikaans` (commit "Add udpos.Afrikaans
# data files", path `udpos.Afrikaans/train-*`), so no exception is needed any more.
UDPOS_NAMES: dict[str, str] = dict(NAMES)

# `google/xtreme` tatoeba configs use ISO 639-3 codes (Mandarin, Standard Swahili, Iranian Persian).
TATOEBA_CODES: dict[str, str] = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
    "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn", "az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron",
}  # fmt: skip

# TyDiQA-GoldP ids start with the language's lower-case English name ("arabic-...").
TYDIQA_PREFIXES: dict[str, str] = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip

# MasakhaNER 2.0's configs are ISO 639-3 codes.
MASAKHANER_CONFIGS: dict[str, str] = {
    "bm": "bam", "bbj": "bbj", "ee": "ewe", "fon": "fon", "ha": "hau", "ig": "ibo", "rw": "kin", "lg": "lug",
    "luo": "luo", "mos": "mos", "ny": "nya", "pcm": "pcm", "sn": "sna", "sw": "swa", "tn": "tsn", "tw": "twi",
    "wo": "wol", "xh": "xho", "yo": "yor", "zu": "zul",
}  # fmt: skip

# AmericasNLI's configs (Aymara `aym`, Southern Quechua `quy`; the others are their ISO 639-3 codes).
AMERICASNLI_CONFIGS: dict[str, str] = {
    "ay": "aym", "bzd": "bzd", "cni": "cni", "gn": "gn", "hch": "hch", "nah": "nah", "oto": "oto", "qu": "quy",
    "shp": "shp", "tar": "tar",
}  # fmt: skip
