"""Evaluation conditions: named, seeded perturbations of a target's evaluation tables, every one scored by
the same evaluation job from the one loaded model (`scores.parquet` has a `condition` column).

`clean` is the table as prepared: the only condition the transfer tables show. The others (config
`robustness`, settings in `xstilts.settings.RobustnessSettings`):
- `char_noise`: one typo per word with probability `rate` (per character in scripts written without spaces:
  Han, Kana, Thai, ...): two letters swapped, one dropped, one inserted or one replaced by a neighbour on the
  script's keyboard (QWERTY, ЙЦУКЕН, Greek, Arabic, Hebrew) or, for other scripts, by a letter a code point
  or two away in the same script; only letters change, never digits (numbers decide labels);
- `case_punct`: a word's casing flipped (lower-cased, or capitalised when already lower) with probability
  `rate`, each punctuation mark dropped or doubled with probability `rate` (a word never vanishes);
- `word_order`: adjacent words swapped with probability `rate` (their attached punctuation stays in place);
- `code_switch`: a word replaced by a translation with probability `rate`, from bilingual lexicons in the MUSE
  format (`xstilts.lexicons`), into a language drawn among those configured, as CoSDA-ML (Qin et al. 2020)
  and PolyGloss (Tan & Joty 2021) mix languages;
- `adversarial`: the greedy substitution attack of `xstilts.attack` (the model in the loop).

A perturbation is a pure function of (table, family, language, settings, seed, lexicons): a word transform
applied to the family's text columns with draws seeded by (seed, condition, language, the text itself), so
the same text is perturbed the same way in every row, seed and cell. Labels stay exact: classification and
retrieval texts are perturbed whole; a tagged sentence keeps one tag per word (no transform changes the
number of words; `word_order` is not offered for tagging, where a swap would break entity spans); a QA
context keeps every word of its answers as it is and the answers' offsets are recomputed. No pandas import
here: the config check reads the registry when the DAG is built.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from xstilts.lexicons import Switches

if TYPE_CHECKING:
    import pandas as pd

VERSION = 1  # of the transforms: a change invalidates the perturbed tables cached by evaluation jobs
CLEAN = "clean"
# `clean` on the examples the perturbations are scored on (`robustness.sample` < 1): every drop's reference
CLEAN_SAMPLE = "clean_sample"
ADVERSARIAL = "adversarial"
WordTransform = Callable[[list[str], frozenset[int], random.Random], list[str]]
"""(the words of one text, the positions left as they are, the text's draws) -> as many words."""


@dataclass(frozen=True)
class Condition:
    """An evaluation condition: the families whose labels it keeps exact, and how it changes a table:
    `words` builds its word transform from its settings (and the lexicons' switches, when `lexicon`)."""

    name: str
    families: frozenset[str]
    kind: Literal["clean", "reference", "transform", "attack"]
    words: Callable[[Any, Switches | None], WordTransform] | None = None
    lexicon: bool = False

    def serves(self, family: str) -> bool:
        return family in self.families

    def serves_target(self, target: str) -> bool:
        """Whether it perturbs a target: one of its families, and not a pool search (LAReQA, Mewsli-X: their
        candidates are every language's at once, scored clean only)."""
        from xstilts.catalogue import TARGETS

        return self.serves(TARGETS[target].family) and TARGETS[target].search != "pool"


# --------------------------------------------------------------------------------------------------
# Words and scripts

_WORD = re.compile(r"\S+")
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
# Scripts written without spaces between words: each character is drawn as a word would be.
UNSPACED = frozenset({"CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR"})
_KEYBOARDS: dict[str, tuple[str, ...]] = {
    "LATIN": ("qwertyuiop", "asdfghjkl", "zxcvbnm"),
    "CYRILLIC": ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю"),
    "GREEK": ("ςερτυθιοπ", "ασδφγηξκλ", "ζχψωβνμ"),
    "ARABIC": ("ضصثقفغعهخحجد", "شسيبلاتنمكط", "ئءؤرىةوزظ"),
    "HEBREW": ("קראטוןםפ", "שדגכעיחלךף", "זסבהנמצתץ"),
}


def script(char: str) -> str:
    """The Unicode script a character's name starts with: LATIN, CYRILLIC, CJK, DEVANAGARI, ..."""
    return unicodedata.name(char, "?").split(" ")[0]


def _is_letter(char: str) -> bool:
    return unicodedata.category(char).startswith("L")


@cache
def _keyboard_neighbours(script_name: str) -> dict[str, str]:
    """Each key's neighbours on the script's keyboard: left and right, and the keys above and below."""
    rows = _KEYBOARDS.get(script_name, ())
    found: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            near = [row[c - 1] if c else "", row[c + 1] if c + 1 < len(row) else ""]
            near += [rows[r2][c] for r2 in (r - 1, r + 1) if 0 <= r2 < len(rows) and c < len(rows[r2])]
            found[key] = "".join(near)
    return found


@cache
def neighbours(char: str) -> str:
    """The letters a typo puts for `char`, in its own script: its keyboard neighbours (case kept), else the
    letters one or two code points away in the same script."""
    name = script(char)
    keys = _keyboard_neighbours(name).get(char.lower(), "")
    if keys:
        return keys.upper() if char != char.lower() else keys
    near = (chr(code) for code in (ord(char) + d for d in (-2, -1, 1, 2)) if 0 <= code <= 0x10FFFF)
    return "".join(c for c in near if _is_letter(c) and script(c) == name)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A text's words (runs of non-space characters) and their character spans."""
    matches = list(_WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def join_words(text: str, spans: Sequence[tuple[int, int]], words: Sequence[str]) -> tuple[str, list[int]]:
    """`text` with the words at `spans` replaced by `words` (the spaces between kept), and each new word's start."""
    parts, starts, end, length = [], [], 0, 0
    for (start, stop), word in zip(spans, words, strict=True):
        parts.append(text[end:start])
        length += start - end
        starts.append(length)
        parts.append(word)
        length += len(word)
        end = stop
    parts.append(text[end:])
    return "".join(parts), starts


def _core(word: str) -> tuple[str, str, str]:
    """A word as (leading punctuation, core, trailing punctuation)."""
    match = _CORE.match(word)
    assert match is not None  # the pattern matches every string
    return match.group(1), match.group(2), match.group(3)


# --------------------------------------------------------------------------------------------------
# Word transforms


def _typo(chars: list[str], i: int, rng: random.Random) -> None:
    """One typo at letter `i`: a swap with the next letter, a drop, an insertion or a substitution by a neighbour
    (a swap or a drop that is not possible there becomes a substitution)."""
    operation = rng.choice(("swap", "drop", "insert", "substitute"))
    following = chars[i + 1] if i + 1 < len(chars) else ""
    if operation == "swap" and following and _is_letter(following) and following != chars[i] \
            and script(following) == script(chars[i]):
        chars[i], chars[i + 1] = following, chars[i]
        return
    if operation == "drop" and sum(map(_is_letter, chars)) > 1:
        del chars[i]
        return
    near = neighbours(chars[i])
    if not near:
        return
    if operation == "insert":
        chars.insert(i + 1, rng.choice(near))
    else:
        chars[i] = rng.choice(near)


def typos(word: str, rate: float, rng: random.Random) -> str:
    """`word` with one typo with probability `rate` (each character of an unspaced script drawn alone)."""
    chars = list(word)
    letters = [i for i, c in enumerate(chars) if _is_letter(c)]
    if not letters:
        return word
    if script(chars[letters[0]]) in UNSPACED:
        positions = [i for i in letters if rng.random() < rate]
    else:
        positions = [letters[rng.randrange(len(letters))]] if rng.random() < rate else []
    for i in reversed(positions):  # right to left: an edit leaves the positions before it in place
        _typo(chars, i, rng)
    return "".join(chars)


def char_noise(settings: Any, _switches: Switches | None = None) -> WordTransform:
    rate = settings.rate
    return lambda words, keep, rng: [w if i in keep else typos(w, rate, rng) for i, w in enumerate(words)]


def case_and_punctuation(word: str, rate: float, rng: random.Random) -> str:
    """`word` with its casing flipped with probability `rate`, and each punctuation mark dropped or doubled
    with probability `rate` (a word of punctuation alone keeps at least one mark)."""
    flip = rng.random() < rate
    if flip and word.lower() != word.upper():
        word = word.lower() if word != word.lower() else word.capitalize()
    marks = []
    for char in word:
        if unicodedata.category(char).startswith("P") and rng.random() < rate:
            marks.append(char * 2 if rng.random() < 0.5 else "")
        else:
            marks.append(char)
    return "".join(marks) or word


def case_punct(settings: Any, _switches: Switches | None = None) -> WordTransform:
    rate = settings.rate
    return lambda words, keep, rng: [w if i in keep else case_and_punctuation(w, rate, rng)
                                     for i, w in enumerate(words)]


def swaps(words: list[str], keep: frozenset[int], rate: float, rng: random.Random) -> list[str]:
    """Adjacent words swapped with probability `rate`, left to right, a word in one swap at most; each word's
    leading and trailing punctuation stays where it was; kept words and bare punctuation never move."""
    parts = [_core(w) for w in words]
    out = list(words)
    i = 0
    while i + 1 < len(words):
        movable = i not in keep and i + 1 not in keep and parts[i][1] and parts[i + 1][1]
        if movable and rng.random() < rate:
            (a_pre, a, a_post), (b_pre, b, b_post) = parts[i], parts[i + 1]
            out[i], out[i + 1] = a_pre + b + a_post, b_pre + a + b_post
            i += 2
        else:
            i += 1
    return out


def word_order(settings: Any, _switches: Switches | None = None) -> WordTransform:
    rate = settings.rate
    return lambda words, keep, rng: swaps(words, keep, rate, rng)


def translation_options(word: str, switches: Switches) -> tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """How a word can be switched: its punctuation around the core, and the lexicons' options for the core (as
    written, else lower-cased; a capitalised word's translation is capitalised)."""
    pre, core, post = _core(word)
    options = switches.get(core) or switches.get(core.lower()) or ()
    if options and core not in switches:
        options = tuple((lang, tuple(t[:1].upper() + t[1:] for t in found)) for lang, found in options)
    return pre, post, options


def switch_word(word: str, switches: Switches, rate: float, rng: random.Random) -> str:
    """`word` replaced with probability `rate` by a translation: a language drawn among its options, then one
    of its translations there."""
    pre, post, options = translation_options(word, switches)
    if not options or rng.random() >= rate:
        return word
    _, found = options[rng.randrange(len(options))]
    return pre + found[rng.randrange(len(found))] + post


def code_switch(settings: Any, switches: Switches | None) -> WordTransform:
    rate, table = settings.rate, switches or {}
    return lambda words, keep, rng: [w if i in keep else switch_word(w, table, rate, rng)
                                     for i, w in enumerate(words)]


# --------------------------------------------------------------------------------------------------
# The registry

TEXT_FAMILIES = frozenset({"classification", "pair_classification", "tagging", "qa", "retrieval"})
CLASSIFICATION = frozenset({"classification", "pair_classification"})
CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition(CLEAN, TEXT_FAMILIES | {"multiple_choice"}, "clean"),
    Condition(CLEAN_SAMPLE, TEXT_FAMILIES, "reference"),
    Condition("char_noise", TEXT_FAMILIES, "transform", char_noise),
    Condition("case_punct", TEXT_FAMILIES, "transform", case_punct),
    Condition("word_order", TEXT_FAMILIES - {"tagging"}, "transform", word_order),
    Condition("code_switch", TEXT_FAMILIES, "transform", code_switch, lexicon=True),
    Condition(ADVERSARIAL, CLASSIFICATION, "attack", lexicon=True),
)}
PERTURBATIONS: tuple[str, ...] = tuple(name for name, c in CONDITIONS.items() if c.kind in ("transform", "attack"))


def sample_rows(n: int, share: float, seed: int, language: str, split: str) -> list[int]:
    """The rows of an n-row table scored under the perturbations: a seeded sample of round(share x n) of them
    (at least one), in table order; every row when `share` is 1."""
    if share >= 1:
        return list(range(n))
    k = min(n, max(1, round(share * n)))
    return sorted(random.Random(f"{seed}/sample/{language}/{split}").sample(range(n), k))


def settings_of(robustness: Any, condition: str) -> Any:
    """A condition's own settings in `RobustnessSettings` (a field of its name)."""
    return getattr(robustness, condition)


def switch_languages(language: str, configured: Sequence[str] | None, target_languages: Sequence[str]
                     ) -> tuple[str, ...]:
    """The languages `language`'s words are switched into: the configured ones but itself; by default (None)
    English, and for English every other evaluated language of the target."""
    if configured is None:
        return tuple(lang for lang in target_languages if lang != "en") if language == "en" else ("en",)
    return tuple(lang for lang in configured if lang != language)


# --------------------------------------------------------------------------------------------------
# Tables

Draws = Callable[[str], random.Random]  # a text -> its own seeded draws


def perturb_text(text: str, transform: WordTransform, rng: random.Random,
                 keep: Sequence[tuple[int, int]] = ()) -> tuple[str, Callable[[int], int]]:
    """A text through a word transform, the words overlapping the character spans `keep` left as they are;
    and where a character of a kept word moved to."""
    words, spans = split_words(text)
    kept = frozenset(i for i, (start, end) in enumerate(spans) if any(start < b and a < end for a, b in keep))
    new, starts = join_words(text, spans, transform(words, kept, rng))

    def moved(position: int) -> int:
        k = next(i for i, (start, end) in enumerate(spans) if start <= position < end)
        if k not in kept:
            raise ValueError(f"character {position} is in no kept word")
        return starts[k] + position - spans[k][0]

    return new, moved


def _texts(df: pd.DataFrame, columns: Sequence[str], transform: WordTransform, draws: Draws) -> pd.DataFrame:
    """Whole texts perturbed (classification pairs, retrieval's own-language side); missing texts stay missing."""
    out = df.copy()
    for column in columns:
        if column in out:
            out[column] = [perturb_text(text, transform, draws(text))[0] if isinstance(text, str) else text
                           for text in out[column]]
    return out


def _tagging(df: pd.DataFrame, transform: WordTransform, draws: Draws) -> pd.DataFrame:
    out = df.copy()
    out["tokens"] = [transform([str(t) for t in tokens], frozenset(), draws("\0".join(map(str, tokens))))
                     for tokens in df["tokens"]]
    return out


def _qa(df: pd.DataFrame, transform: WordTransform, draws: Draws) -> pd.DataFrame:
    """Contexts perturbed around their answers (kept as they are, offsets recomputed); questions whole."""
    contexts, starts = [], []
    for context, texts, answer_starts in zip(df["context"], df["answer_texts"], df["answer_starts"], strict=True):
        answers = [(int(s), int(s) + len(t)) for t, s in zip(texts, answer_starts, strict=True)]
        new, moved = perturb_text(context, transform, draws(context), keep=answers)
        contexts.append(new)
        starts.append([moved(start) for start, _ in answers])
    out = df.copy()
    out["context"], out["answer_starts"] = contexts, starts
    out["question"] = [perturb_text(q, transform, draws(q))[0] for q in df["question"]]
    return out


_ADAPTERS: dict[str, Callable[[pd.DataFrame, WordTransform, Draws], pd.DataFrame]] = {
    "classification": lambda df, t, d: _texts(df, ["text_a", "text_b"], t, d),
    "pair_classification": lambda df, t, d: _texts(df, ["text_a", "text_b"], t, d),
    "retrieval": lambda df, t, d: _texts(df, ["source"], t, d),  # the language's side; `target` is English
    "tagging": _tagging,
    "qa": _qa,
}


def perturb(df: pd.DataFrame, family: str, condition: str, settings: Any, language: str, seed: int,
            switches: Switches | None = None) -> pd.DataFrame:
    """A normalised evaluation table of `family` under a perturbation (`settings`: the condition's own;
    `switches`: the lexicons' translations of `language`'s words, for `code_switch`)."""
    found = CONDITIONS[condition]
    if found.words is None or not found.serves(family):
        raise ValueError(f"condition {condition!r} does not perturb {family} tables; it serves "
                         f"{', '.join(sorted(found.families))}")
    transform = found.words(settings, switches)
    return _ADAPTERS[family](df, transform, lambda text: random.Random(f"{seed}/{condition}/{language}/{text}"))
