"""Language codes and the spellings each XTREME data set uses for them."""

from __future__ import annotations

# ISO 639-1 code -> English name, for every language of the XTREME targets.
NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "jv": "Javanese",
    "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "ml": "Malayalam", "mr": "Marathi",
    "ms": "Malay", "my": "Burmese", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
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
    "zh": "cmn",
}  # fmt: skip

# TyDiQA-GoldP ids start with the language's lower-case English name ("arabic-...").
TYDIQA_PREFIXES: dict[str, str] = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip
