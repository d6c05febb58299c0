"""A synthetic "hub mirror" for the demo: one small semantic world rendered into every hub schema.

The world (people, cities and organisations with generated names; numbers; a few relations, events and
evaluative words) comes from a seed. Facts are rendered through a few regular templates into English;
every other language is a word-for-word substitution of English (word forms generated from a hash of
(language, word), in a non-Latin script for some languages) in which names and numbers stay as they
are, as anchors. Every task is defined on the world, so labels, tags and answer spans are exact, and
each label is carried by a few cue words, so a tiny model learns English quickly (DESIGN.md section 7).

Layout under `out_dir`: `<repo>/<config or "default">/<split>.parquet` for every hub split that the
catalogue reads (column names and types as on the hub), `local/ccg/{train,dev}.parquet` (CCGbank is
not on the hub), `local/mewslix/` (Mewsli-X as get-mewsli-x.sh writes it: candidate_set_entities.jsonl,
wikinews_mentions-{dev,test}.jsonl), `local/ud-treebanks-v2.5/UD_<Language>-Demo/<iso>_demo-ud-<split>.conllu`
(the UD-POS sentences as a UD release: ADP + DET fused into one multiword token outside English, an empty node now and
then, and for each non-English language a second treebank `UD_Old_<Language>-Demo/q<iso>_demo-ud-test.conllu`
that XTREME's selection by ISO prefix leaves out), `corpus/<lang>.txt` (MLM text; about half of each
non-English corpus translates the English lines, line by line) and `lexicons/<src>-<tgt>.txt` (exact bilingual
lexicons of the world's words in the MUSE format, for every pair of its languages and English).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from xstilts.catalogue import DATASETS, NER_TAGS, NLI_LABELS, TARGETS, UPOS_TAGS, HubSplit
from xstilts.languages import NAMES, TATOEBA_CODES, TYDIQA_PREFIXES
from xstilts.lexicons import FOLDER as LEXICON_FOLDER
from xstilts.lexicons import demo_pairs, file_name, render
from xstilts.ud import UD_SPLITS, conllu_text

UD_FOLDER = "ud-treebanks-v2.5"  # the demo's UD release, under `local/`


@dataclass(frozen=True)
class DemoSizes:
    """How many examples (or corpus lines) each generated split holds."""

    train: int = 600  # examples per training split (per Dataset in catalogue.DATASETS)
    dev: int = 200  # examples per English dev split
    eval: int = 150  # examples per (target, language, split)
    corpus: int = 3000  # MLM corpus lines per language


# --- Tokens, lexicon and sentences ----------------------------------------------------------------

class _Tok(NamedTuple):
    text: str  # English surface form; names and numbers are the same in every language
    upos: str
    ner: str  # BIO tag
    ccg: str  # CCG-like supertag
    word: bool  # a vocabulary word (translated), not an anchor (name, number)


class _Sent(NamedTuple):
    toks: tuple[_Tok, ...]
    spans: dict[str, tuple[int, int]]  # template slot -> token range [start, end)


# Every template word by part of speech; `word|variant` spells the same word with other tags.
_LEXICON: dict[str, str] = {
    "NOUN": "home job years age office city company number year person film book concert meal trip "
            "hotel show song game story letter dinner door lake friend bread time photo music water bill "
            "night pen pan bed key boat phone knife clock camera guitar coat bucket money lamp shelf eggs "
            "stove table soap floor towel hole garden tree soil can paint brush wall helmet bike park "
            "sheet paper envelope museum university family car language shop sea days cars books boats "
            "houses bikes dogs cats horses house horse",
    "VERB": "lives live has have works work owns own visited visit met meet founded started based wants "
            "plans hopes buy like sold bought arrived lived moving moved said thinks found need use read "
            "write cook sleep open cross call cut tell take play keep carry pay see went wanted go stayed "
            "stay find study watch learn sell rest takes puts cooks eats fills washes dries digs waters "
            "opens dips paints gets rides locks writes sends",
    "AUX": "does did is was would",
    "ADJ": "old many warm good great wonderful excellent pleasant lovely brilliant charming bad terrible "
           "awful boring poor dreadful dull horrible",
    "ADV": "never where how when why very really there then long",
    "PRON": "what who",
    "DET": "a the which what|DET",
    "ADP": "in at for of from to by before after on with",
    "PART": "not to|PART",
    "SCONJ": "because before|S after|S",
    "PUNCT": ". ? , !",
}
_CCG_DEFAULT = {
    "NOUN": "N", "VERB": "(S\\NP)/NP", "AUX": "(S\\NP)/(S\\NP)", "ADJ": "N/N", "ADV": "(S\\NP)\\(S\\NP)",
    "PRON": "NP", "DET": "NP/N", "ADP": "PP/NP", "PART": "(S\\NP)\\(S\\NP)", "SCONJ": "(S\\S)/S",
    "PUNCT": ".",
}  # fmt: skip
_CCG_OVERRIDES = {
    "lives": "(S\\NP)/PP", "works": "(S\\NP)/PP", "live": "(S[b]\\NP)/PP", "work": "(S[b]\\NP)/PP",
    "is": "(S[dcl]\\NP)/(S[adj]\\NP)", "was": "(S[dcl]\\NP)/(S[pss]\\NP)",
    "does": "(S[q]/(S[b]\\NP))/NP", "did": "(S[q]/(S[b]\\NP))/NP", "not": "(S\\NP)/(S\\NP)",
    "never": "(S\\NP)/(S\\NP)", "to|PART": "(S[to]\\NP)/(S[b]\\NP)", "who": "S[wq]/(S[dcl]\\NP)",
    "what": "S[wq]/(S[q]/NP)", "where": "S[wq]/S[q]", "when": "S[wq]/S[q]", "why": "S[wq]/S[q]",
    "how": "(S[wq]/S[q])/(S[adj]\\NP)", "which": "(S[wq]/(S[q]/NP))/N", "old": "S[adj]\\NP",
    "warm": "S[adj]\\NP", "very": "(S[adj]\\NP)/(S[adj]\\NP)", "really": "(S[adj]\\NP)/(S[adj]\\NP)",
    "then": "S/S", "because": "((S\\NP)\\(S\\NP))/S[dcl]", "before|S": "((S\\NP)\\(S\\NP))/(S[ng]\\NP)",
    "after|S": "((S\\NP)\\(S\\NP))/(S[ng]\\NP)", "moving": "(S[ng]\\NP)/PP", ",": ",",
}  # fmt: skip
_WORDS: dict[str, _Tok] = {
    key: _Tok(key.split("|")[0], upos, "O", _CCG_OVERRIDES.get(key, _CCG_DEFAULT[upos]), True)
    for upos, keys in _LEXICON.items() for key in keys.split()
}  # fmt: skip
_PUNCTUATION = frozenset(_LEXICON["PUNCT"].split())


@cache
def _parse(template: str) -> tuple[_Tok | str, ...]:
    """A template as word tokens and slot names (`{p}` -> "p")."""
    return tuple(part[1:-1] if part.startswith("{") else _WORDS[part] for part in template.split())


class _Ent(NamedTuple):
    name: str
    toks: tuple[_Tok, ...]


def _entity(name: str, kind: str) -> _Ent:
    words = name.split()
    return _Ent(name, tuple(
        _Tok(w, "PROPN", ("B-" if i == 0 else "I-") + kind, "NP" if i == len(words) - 1 else "N/N", False)
        for i, w in enumerate(words)))  # fmt: skip


@cache
def _number(value: int, slot: str) -> _Tok:
    return _Tok(str(value), "NUM", "O", "NP" if slot == "y" else "N/N", False)


def _fill(template: str, **values: _Ent | int | str) -> _Sent:
    """Render a template with its slots filled: entities, numbers, or vocabulary words (str)."""
    toks: list[_Tok] = []
    spans: dict[str, tuple[int, int]] = {}
    for part in _parse(template):
        if isinstance(part, _Tok):
            toks.append(part)
            continue
        value, start = values[part], len(toks)
        if isinstance(value, _Ent):
            toks.extend(value.toks)
        elif isinstance(value, int):
            toks.append(_number(value, part))
        else:
            toks.extend(_WORDS[w] for w in value.split())
        spans[part] = (start, len(toks))
    return _Sent(tuple(toks), spans)


# --- Languages: generated word forms --------------------------------------------------------------

# script -> (consonants, vowels); scripts without vowels here are written as plain letter strings.
_ALPHABETS: dict[str, tuple[str, str]] = {
    "latin": ("bcdfghklmnprstvz", "aeiou"),
    "cyrillic": ("бвгдзклмнпрстфхчш", "аеиоуыя"),
    "greek": ("βγδζθκλμνξπρστφχ", "αεηιουω"),
    "arabic": ("بتجدرزسشصطعفقكلمنهوي", ""),
    "hebrew": ("בגדהזחטכלמנסעפקרשת", ""),
    "devanagari": ("कखगचजटडतदनपबमयरलवसह", "ािीुूेैो"),
    "bengali": ("কখগচজটডতদনপবমরলসহ", "ািীুূে"),
    "tamil": ("கசடதநபமயரலவழள", "ாிீுூெேை"),
    "thai": ("กขคงจชซดตทนบปพมยรลวสห", "ะาิีุู"),
    "georgian": ("ბგდვზთკლმნპრსტფქღყშჩცძწჭხჯჰ", "აეიოუ"),
}
_SCRIPT_OF: dict[str, str] = {
    "ru": "cyrillic", "bg": "cyrillic", "kk": "cyrillic", "el": "greek", "ar": "arabic", "fa": "arabic",
    "ur": "arabic", "he": "hebrew", "hi": "devanagari", "mr": "devanagari", "bn": "bengali",
    "ta": "tamil", "th": "thai", "ka": "georgian", "ko": "hangul", "zh": "han", "ja": "kana",
}  # fmt: skip
_PUNCT_OF: dict[str, dict[str, str]] = {
    "han": {".": "。", "?": "？", ",": "，", "!": "！"},
    "kana": {".": "。", "?": "？", ",": "，", "!": "！"},
    "arabic": {"?": "؟", ",": "،"},
}
_NO_SPACE_BEFORE = _PUNCTUATION | {p for table in _PUNCT_OF.values() for p in table.values()}


def _form(script: str, key: str) -> str:
    """A word form in `script`, derived from a hash of `key`."""
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "big")

    def take(k: int) -> int:
        nonlocal h
        h, r = divmod(h, k)
        return r

    if script == "hangul":
        return "".join(chr(0xAC00 + take(11172)) for _ in range(1 + take(2)))
    if script == "han":
        return "".join(chr(0x4E00 + take(0x3000)) for _ in range(1 + take(2)))
    if script == "kana":
        return "".join(chr(0x30A2 + take(0x52)) for _ in range(2 + take(2)))
    consonants, vowels = _ALPHABETS[script]
    if not vowels:
        return "".join(consonants[take(len(consonants))] for _ in range(2 + take(4)))
    syllables = "".join(consonants[take(len(consonants))] + vowels[take(len(vowels))]
                        for _ in range(1 + take(3)))
    return syllables + (consonants[take(len(consonants))] if take(2) else "")


@cache
def _lexicon(lang: str) -> dict[str, str]:
    """English word -> its form in `lang` (a bijection; the identity for English)."""
    surfaces = sorted({t.text for t in _WORDS.values()})
    if lang == "en":
        return {s: s for s in surfaces}
    script = _SCRIPT_OF.get(lang, "latin")
    punct = _PUNCT_OF.get(script, {})
    lex: dict[str, str] = {}
    used: set[str] = set()
    for s in surfaces:
        if s in _PUNCTUATION:
            lex[s] = punct.get(s, s)
            continue
        attempt = 0
        while (form := _form(script, f"{lang}\0{s}\0{attempt}")) in used:
            attempt += 1
        used.add(form)
        lex[s] = form
    return lex


def _forms(sent: _Sent, lang: str, capitalise: bool = True) -> list[str]:
    lex = _lexicon(lang)
    forms = [lex[t.text] if t.word else t.text for t in sent.toks]
    if capitalise:
        forms[0] = forms[0][:1].title() + forms[0][1:]
    return forms


def _join(forms: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Tokens joined by spaces (none before punctuation), with each token's character span."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, form in enumerate(forms):
        if i and form not in _NO_SPACE_BEFORE:
            parts.append(" ")
            pos += 1
        parts.append(form)
        spans.append((pos, pos + len(form)))
        pos += len(form)
    return "".join(parts), spans


def _passage(sents: Sequence[_Sent], lang: str) -> tuple[str, list[list[tuple[int, int]]]]:
    """Sentences rendered in `lang` as one text, with the character span of every token."""
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    pos = 0
    for sent in sents:
        text, tok_spans = _join(_forms(sent, lang))
        spans.append([(a + pos, b + pos) for a, b in tok_spans])
        texts.append(text)
        pos += len(text) + 1
    return " ".join(texts), spans


def _text(sents: Sequence[_Sent], lang: str, capitalise: bool = True) -> str:
    return " ".join(_join(_forms(s, lang, capitalise))[0] for s in sents)


# --- Templates ------------------------------------------------------------------------------------

# relation -> (two affirmative templates, one negated template)
_FACTS: dict[str, tuple[tuple[str, str], str]] = {
    "lives": (("{p} lives in {c} .", "{p} has a home in {c} ."), "{p} does not live in {c} ."),
    "works": (("{p} works for {o} .", "{p} has a job at {o} ."), "{p} does not work for {o} ."),
    "age": (("{p} is {a} years old .", "the age of {p} is {a} ."), "{p} is not {a} years old ."),
    "owns": (("{p} owns {n} {things} .", "{p} has {n} {things} ."), "{p} does not own {n} {things} ."),
    "visited": (("{p} visited {c2} in {y} .", "in {y} , {p} visited {c2} ."), "{p} never visited {c2} ."),
    "met": (("{p} met {p2} in {c3} .", "in {c3} , {p} met {p2} ."), "{p} never met {p2} ."),
    "founded": (("{o} was founded in {y} .", "{o} started in {y} ."), "{o} was not founded in {y} ."),
    "based": (("{o} is based in {c} .", "the office of {o} is in {c} ."), "{o} is not based in {c} ."),
}
_PERSON_RELS = ("lives", "works", "age", "owns", "visited", "met")
_ORG_RELS = ("founded", "based")
# Wishes and plans: never entailed or contradicted by facts (NLI's cued neutral hypotheses).
_DESIRES = ("{p} wants to|PART visit {c2} .", "{p} plans to|PART work for {o} .",
            "{p} hopes to|PART buy {n} {things} .", "{p} would like to|PART meet {p2} .")
# relation -> (question template, slot holding the answer)
_QUESTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "lives": (("where does {p} live ?", "c"), ("in which city does {p} live ?", "c"),
              ("who lives in {c} ?", "p")),
    "works": (("where does {p} work ?", "o"), ("which company does {p} work for ?", "o"),
              ("who works for {o} ?", "p")),
    "age": (("how old is {p} ?", "a"), ("what is the age of {p} ?", "a")),
    "owns": (("how many {things} does {p} own ?", "n"), ("what|DET number of {things} does {p} have ?", "n")),
    "visited": (("when did {p} visit {c2} ?", "y"), ("in which year did {p} visit {c2} ?", "y"),
                ("which city did {p} visit in {y} ?", "c2")),
    "met": (("who did {p} meet in {c3} ?", "p2"), ("which person did {p} meet in {c3} ?", "p2")),
    "founded": (("when was {o} founded ?", "y"), ("in which year was {o} founded ?", "y")),
    "based": (("where is {o} based ?", "c"), ("in which city is {o} based ?", "c"),
              ("which company is based in {c} ?", "o")),
}


def _question_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """QQP duplicates: (subject slot, the templates asking for one slot of one relation), two or more."""
    groups = []
    for rel, questions in _QUESTIONS.items():
        for slot in dict.fromkeys(s for _, s in questions):
            templates = tuple(t for t, s in questions if s == slot)
            if len(templates) > 1:
                groups.append(("o" if rel in _ORG_RELS else "p", templates))
    return tuple(groups)


_QQP_GROUPS = _question_groups()


class _Paws(NamedTuple):
    same: tuple[str, str]  # two templates of one fact
    flipped: tuple[str, str] | None  # the same templates with one cue word inverted
    roles: tuple[str, str]  # slots whose swap changes the meaning
    weight: float


_PAWS: dict[str, _Paws] = {
    "trade": _Paws(("{p} sold the {thing} to {p2} .", "the {thing} was sold to {p2} by {p} ."),
                   ("{p} bought the {thing} from {p2} .", "the {thing} was bought from {p2} by {p} ."),
                   ("p", "p2"), 0.3),
    "order": _Paws(("{p} arrived in {c} before {p2} .", "before {p2} , {p} arrived in {c} ."),
                   ("{p} arrived in {c} after {p2} .", "after {p2} , {p} arrived in {c} ."),
                   ("p", "p2"), 0.3),
    "moving": _Paws(("{p} lived in {c} before|S moving to {c2} .",
                     "before|S moving to {c2} , {p} lived in {c} ."),
                    ("{p} lived in {c} after|S moving to {c2} .",
                     "after|S moving to {c2} , {p} lived in {c} ."),
                    ("c", "c2"), 0.3),
    "moved": _Paws(("{p} moved from {c} to {c2} in {y} .", "in {y} , {p} moved from {c} to {c2} ."), None,
                   ("c", "c2"), 0.1),
}  # fmt: skip

_POSITIVE = ("good", "great", "wonderful", "excellent", "pleasant", "lovely", "brilliant", "charming")
_NEGATIVE = ("bad", "terrible", "awful", "boring", "poor", "dreadful", "dull", "horrible")
_ITEMS = ("film", "book", "concert", "meal", "trip", "hotel", "show", "song", "game")
_SST = ("{p} said the {item} was {adj} .", "the {item} in {c} was {adj} .",
        "{p} thinks the {item} is {adj} .", "what|DET a {adj} {item} !", "the {item} was very {adj} .",
        "{p} found the {item} really {adj} .")
_SST_NEGATED = ("{p} said the {item} was not {adj} .", "the {item} in {c} was not {adj} .",
                "{p} thinks the {item} is not {adj} .")

_THINGS = ("cars", "books", "boats", "houses", "bikes", "dogs", "cats", "horses")
_THING = ("car", "house", "boat", "bike", "horse", "lamp")
_PURPOSES: dict[str, str] = {
    "read a story": "book", "write a letter": "pen", "cook dinner": "pan", "sleep": "bed",
    "open the door": "key", "cross the lake": "boat", "call a friend": "phone", "cut the bread": "knife",
    "tell the time": "clock", "take a photo": "camera", "play music": "guitar", "keep warm": "coat",
    "carry water": "bucket", "pay the bill": "money", "see at night": "lamp",
}  # fmt: skip
_CSQA_QUESTIONS = (("{p} wants to|PART {purpose} .", "what does {p} need ?"),
                   ("what does {p} use to|PART {purpose} ?",), ("to|PART {purpose} , what does {p} need ?",))
_REASONS = ("see a friend", "find a job", "buy a house", "visit a museum", "study at the university",
            "watch a concert", "meet the family", "sell a car", "learn a language", "open a shop",
            "rest by the sea", "play in a game")
_COSMOS_CONTEXT = ("{p} went to {c2} because {p} wanted to|PART {reason} .",
                   "{p} stayed there for {n} days .")
_COSMOS_QUESTIONS = (("why did {p} go to {c2} ?", "to|PART {reason} .", "reason"),
                     ("how long did {p} stay in {c2} ?", "for {n} days .", "n"))
_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "Cooking": ("takes a pan from the shelf .", "puts eggs in the pan .", "cooks the eggs on the stove .",
                "eats the eggs at the table ."),
    "Cleaning": ("fills a bucket with water .", "puts soap in the water .",
                 "washes the floor with the soap .", "dries the floor with a towel ."),
    "Gardening": ("digs a hole in the garden .", "puts a tree in the hole .", "fills the hole with soil .",
                  "waters the tree ."),
    "Painting": ("opens a can of paint .", "dips a brush in the paint .", "paints the wall with the brush .",
                 "washes the brush with water ."),
    "Cycling": ("puts on a helmet .", "gets on the bike .", "rides the bike to the park .",
                "locks the bike at the park ."),
    "Writing a letter": ("takes a sheet of paper .", "writes a letter to {p2} .",
                         "puts the letter in the envelope .", "sends the letter to {p2} ."),
}  # fmt: skip


# --- The world ------------------------------------------------------------------------------------

class _World(NamedTuple):
    people: tuple[_Ent, ...]
    cities: tuple[_Ent, ...]
    orgs: tuple[_Ent, ...]


_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ei")
_CODAS = ("", "", "", "n", "l", "r", "s", "k")
_CITY_PREFIXES = ("Port", "San", "New", "North", "Lake")
_ORG_SUFFIXES = ("Bank", "Group", "Labs", "Motors", "Foods", "Media", "Airways", "Systems")
_AGES = range(18, 90)
_COUNTS = range(2, 40)
_YEARS = range(1950, 2021)


def _make_world(seed: int) -> _World:
    """People (two-word names), cities (one or two words) and organisations (two or three words)."""
    rng = random.Random(f"{seed}/world")
    seen: set[str] = set()

    def stem() -> str:
        while True:
            syllables = rng.randint(1, 2)
            word = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) for _ in range(syllables))
            word = (word + rng.choice(_CODAS)).capitalize()
            if len(word) > 2 and word not in seen:
                seen.add(word)
                return word

    firsts, lasts = [stem() for _ in range(40)], [stem() for _ in range(40)]
    people = [_entity(f"{f} {s}", "PER") for f, s in rng.sample([(f, s) for f in firsts for s in lasts], 150)]
    cities = [_entity(stem() if rng.random() < 0.7 else f"{rng.choice(_CITY_PREFIXES)} {stem()}", "LOC")
              for _ in range(60)]
    orgs = [_entity(" ".join([*(stem() for _ in range(1 if rng.random() < 0.8 else 2)),
                              rng.choice(_ORG_SUFFIXES)]), "ORG") for _ in range(40)]
    return _World(tuple(people), tuple(cities), tuple(orgs))


def _pick(rng: random.Random, pool: Sequence[Any], taken: set[Any]) -> Any:
    """A random element of `pool` not in `taken` (then taken)."""
    while (value := rng.choice(pool)) in taken:
        pass
    taken.add(value)
    return value


def _profile(w: _World, rng: random.Random, person: _Ent, taken: set[Any]) -> dict[str, Any]:
    """Values for every template slot around one person, distinct from (and added to) `taken`."""
    taken.add(person)
    return {
        "p": person, "p2": _pick(rng, w.people, taken), "c": _pick(rng, w.cities, taken),
        "c2": _pick(rng, w.cities, taken), "c3": _pick(rng, w.cities, taken), "o": _pick(rng, w.orgs, taken),
        "a": _pick(rng, _AGES, taken), "n": _pick(rng, _COUNTS, taken), "y": _pick(rng, _YEARS, taken),
        "things": rng.choice(_THINGS), "thing": rng.choice(_THING), "item": rng.choice(_ITEMS),
        "adj": rng.choice(_POSITIVE + _NEGATIVE), "purpose": rng.choice(tuple(_PURPOSES)),
        "reason": rng.choice(_REASONS),
    }  # fmt: skip


def _balanced(rng: random.Random, n: int, k: int) -> list[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


def _uid(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


# Sentences of every kind, for tagging data and the MLM corpus: (weight, templates).
_SENTENCE_POOLS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (4.0, tuple(t for aff, _ in _FACTS.values() for t in aff)),
    (1.0, tuple(neg for _, neg in _FACTS.values())),
    (0.5, _DESIRES),
    (1.5, tuple(t for qs in _QUESTIONS.values() for t, _ in qs)),
    (0.8, tuple(t for p in _PAWS.values() for t in p.same + (p.flipped or ()))),
    (0.8, _SST + _SST_NEGATED),
    (0.8, tuple("{p} " + step for steps in _ACTIVITIES.values() for step in steps)),
    (0.6, (*_COSMOS_CONTEXT, _CSQA_QUESTIONS[0][0])),
)


def _any_sentence(w: _World, rng: random.Random) -> _Sent:
    weights = [weight for weight, _ in _SENTENCE_POOLS]
    templates = rng.choices([t for _, t in _SENTENCE_POOLS], weights)[0]
    return _fill(rng.choice(templates), **_profile(w, rng, rng.choice(w.people), set()))


# --- Examples -------------------------------------------------------------------------------------

class _Pair(NamedTuple):
    a: tuple[_Sent, ...]
    b: tuple[_Sent, ...]  # empty for single-sentence tasks
    label: int
    uid: str


class _QA(NamedTuple):
    uid: str
    title: str
    context: tuple[_Sent, ...]
    question: _Sent
    answer: tuple[int, str] | None  # (context sentence, slot), None: unanswerable


_SWAPPABLE = {"lives": "c", "works": "o", "age": "a", "owns": "n"}  # functional: another value contradicts


def _nli(w: _World, rng: random.Random, n: int, hard: bool) -> list[_Pair]:
    """Premise facts about one person; hypothesis entailed (a restatement), contradicted (negated, or
    another value) or neutral (a wish or plan, a fact the premise leaves open, or another person).
    `hard` (ANLI): longer premises with a distractor person, fewer negation cues."""
    p_negated, p_desire = (0.6, 0.6) if hard else (0.8, 0.7)
    pools: dict[str, Sequence[Any]] = {"c": w.cities, "o": w.orgs, "a": _AGES, "n": _COUNTS}
    out = []
    for label in _balanced(rng, n, 3):
        taken: set[Any] = set()
        args = _profile(w, rng, rng.choice(w.people), taken)
        rels = rng.sample(_PERSON_RELS, rng.randint(2, 3) if hard else rng.randint(1, 2))
        premise = [_fill(rng.choice(_FACTS[r][0]), **args) for r in rels]
        if hard:
            other = _profile(w, rng, _pick(rng, w.people, taken), taken)
            distractor = _fill(rng.choice(_FACTS[rng.choice(rels)][0]), **other)
            premise.insert(rng.randint(0, len(premise)), distractor)
        rel = rng.choice(rels)
        if label == 0:
            hyp = _fill(rng.choice(_FACTS[rel][0]), **args)
        elif label == 2 and rel in _SWAPPABLE and rng.random() >= p_negated:
            slot = _SWAPPABLE[rel]
            hyp = _fill(rng.choice(_FACTS[rel][0]), **(args | {slot: _pick(rng, pools[slot], taken)}))
        elif label == 2:
            hyp = _fill(_FACTS[rel][1], **args)
        elif rng.random() < p_desire:
            hyp = _fill(rng.choice(_DESIRES), **args)
        elif rng.random() < 0.5:
            open_rel = rng.choice([r for r in _PERSON_RELS if r not in rels])
            hyp = _fill(rng.choice(_FACTS[open_rel][0]), **args)
        else:
            stranger = _profile(w, rng, _pick(rng, w.people, taken), taken)
            hyp = _fill(rng.choice(_FACTS[rel][0]), **stranger)
        out.append(_Pair(tuple(premise), (hyp,), label, _uid(rng)))
    return out


def _pawsx(w: _World, rng: random.Random, n: int) -> list[_Pair]:
    """Two templates of one fact (1) against one template and a word-inverted or role-swapped other (0)."""
    names = list(_PAWS)
    weights = [_PAWS[r].weight for r in names]
    out = []
    for label in _balanced(rng, n, 2):
        paws = _PAWS[rng.choices(names, weights)[0]]
        args = _profile(w, rng, rng.choice(w.people), set())
        i = rng.randrange(2)
        first = _fill(paws.same[i], **args)
        if label:
            second = _fill(paws.same[1 - i], **args)
        elif paws.flipped and rng.random() < 0.9:
            second = _fill(paws.flipped[1 - i], **args)
        else:
            x, y = paws.roles
            second = _fill(paws.same[1 - i], **(args | {x: args[y], y: args[x]}))
        a, b = (first, second) if rng.random() < 0.5 else (second, first)
        out.append(_Pair((a,), (b,), label, _uid(rng)))
    return out


def _qqp(w: _World, rng: random.Random, n: int) -> list[_Pair]:
    """Two questions for the same slot of one fact (1) against questions about another relation of the
    same subject, or the same question about another subject (0)."""
    out = []
    for label in _balanced(rng, n, 2):
        args = _profile(w, rng, rng.choice(w.people), set())
        subject, templates = rng.choice(_QQP_GROUPS)
        first, other = rng.choice(templates), args
        if label:
            second = rng.choice([t for t in templates if t != first]) if rng.random() < 0.85 else first
        elif rng.random() < 0.7:
            second = rng.choice(rng.choice([g for s, g in _QQP_GROUPS if s == subject and g != templates]))
        else:
            second = rng.choice(templates)
            pool = w.orgs if subject == "o" else w.people
            other = args | {subject: _pick(rng, pool, {args[subject]})}
        a, b = _fill(first, **args), _fill(second, **other)
        a, b = (a, b) if rng.random() < 0.5 else (b, a)
        out.append(_Pair((a,), (b,), label, _uid(rng)))
    return out


def _sst(w: _World, rng: random.Random, n: int) -> list[_Pair]:
    """Positive or negative by the evaluative word, inverted by `not`."""
    out = []
    for label in _balanced(rng, n, 2):
        negated = rng.random() < 0.2
        adj = rng.choice(_POSITIVE if bool(label) != negated else _NEGATIVE)
        template = rng.choice(_SST_NEGATED if negated else _SST)
        sent = _fill(template, p=rng.choice(w.people), c=rng.choice(w.cities), item=rng.choice(_ITEMS),
                     adj=adj)
        out.append(_Pair((sent,), (), label, _uid(rng)))
    return out


def _qa(w: _World, rng: random.Random, n: int, unanswerable: bool) -> list[_QA]:
    """Paragraphs about 1-3 (or 6-8: long, several windows) people, every value distinct; a question
    about one fact, or (a third of them if `unanswerable`) about a fact the paragraph leaves out."""
    out = []
    for answerable in _balanced(rng, n, 3) if unanswerable else [1] * n:
        taken: set[Any] = set()
        people = [_pick(rng, w.people, taken) for _ in range(rng.randint(1, 3) if rng.random() < 0.85
                                                              else rng.randint(6, 8))]
        facts: list[tuple[str, dict[str, Any]]] = []
        untold: list[tuple[str, dict[str, Any]]] = []
        for person in people:
            args = _profile(w, rng, person, taken)
            rels = rng.sample(_PERSON_RELS, rng.randint(2, 3))
            facts += [(r, args) for r in rels]
            untold += [(r, args) for r in _PERSON_RELS if r not in rels]
            if "works" in rels and rng.random() < 0.4:
                org = {"o": args["o"], "c": _pick(rng, w.cities, taken), "y": _pick(rng, _YEARS, taken)}
                facts.append((rng.choice(_ORG_RELS), org))
        context = tuple(_fill(rng.choice(_FACTS[r][0]), **a) for r, a in facts)
        answer: tuple[int, str] | None = None
        if answerable:
            k = rng.randrange(len(facts))
            rel, args = facts[k]
            template, slot = rng.choice(_QUESTIONS[rel])
            answer = (k, slot)
        else:
            rel, args = rng.choice(untold) if rng.random() < 0.5 else (
                rng.choice(_PERSON_RELS), _profile(w, rng, _pick(rng, w.people, taken), taken))
            template, _ = rng.choice(_QUESTIONS[rel])
        title = people[0].name.replace(" ", "_")
        out.append(_QA(_uid(rng), title, context, _fill(template, **args), answer))
    return out


def _tagged(w: _World, rng: random.Random, n: int, entities: bool) -> list[_Sent]:
    """Sentences of every kind (with `entities`: only those naming a person, place or organisation)."""
    out: list[_Sent] = []
    while len(out) < n:
        sent = _any_sentence(w, rng)
        if not entities or any(t.ner != "O" for t in sent.toks):
            out.append(sent)
    return out


def _facts(w: _World, rng: random.Random, n: int) -> list[_Sent]:
    """Distinct fact sentences (for retrieval: each rendered in two languages)."""
    seen: set[tuple[str, ...]] = set()
    out: list[_Sent] = []
    while len(out) < n:
        args = _profile(w, rng, rng.choice(w.people), set())
        sent = _fill(rng.choice(_FACTS[rng.choice(tuple(_FACTS))][0]), **args)
        key = tuple(t.text for t in sent.toks)
        if key not in seen:
            seen.add(key)
            out.append(sent)
    return out


def _commonsenseqa(w: _World, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Which object serves a purpose, among five."""
    rows = []
    for k in _balanced(rng, n, 5):
        purpose = rng.choice(tuple(_PURPOSES))
        answer, person = _PURPOSES[purpose], rng.choice(w.people)
        question = _text([_fill(t, p=person, purpose=purpose) for t in rng.choice(_CSQA_QUESTIONS)], "en")
        wrong = rng.sample(sorted(set(_PURPOSES.values()) - {answer}), 4)
        rows.append({"id": _uid(rng), "question": question, "question_concept": purpose.split()[0],
                     "choices": {"label": list("ABCDE"), "text": [*wrong[:k], answer, *wrong[k:]]},
                     "answerKey": "ABCDE"[k]})
    return rows


def _cosmosqa(w: _World, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Why someone travelled, or for how long, as the short story says; four answers."""
    rows = []
    for k in _balanced(rng, n, 4):
        args = _profile(w, rng, rng.choice(w.people), set())
        story = [_fill(t, **args) for t in _COSMOS_CONTEXT]
        story.insert(rng.randint(0, 2), _fill(rng.choice(_FACTS[rng.choice(("lives", "works"))][0]), **args))
        question, answer, slot = rng.choice(_COSMOS_QUESTIONS)
        pool: Sequence[Any] = _REASONS if slot == "reason" else _COUNTS
        wrong = rng.sample([v for v in pool if v != args[slot]], 3)
        options = [_text([_fill(answer, **{slot: v})], "en") for v in [*wrong[:k], args[slot], *wrong[k:]]]
        rows.append({"id": _uid(rng), "context": _text(story, "en"),
                     "question": _text([_fill(question, **args)], "en"),
                     **{f"answer{i}": option for i, option in enumerate(options)}, "label": k})
    return rows


def _hellaswag(w: _World, rng: random.Random, n: int, split: str) -> list[dict[str, Any]]:
    """The next step of an activity, against steps out of order or from other activities."""
    rows = []
    for ind, k in enumerate(_balanced(rng, n, 4)):
        activity = rng.choice(tuple(_ACTIVITIES))
        steps = _ACTIVITIES[activity]
        i = rng.randrange(len(steps) - 1)
        args = _profile(w, rng, rng.choice(w.people), set())
        others = [s for a, ss in _ACTIVITIES.items() if a != activity for s in ss]
        wrong = [rng.choice([s for j, s in enumerate(steps) if j not in (i, i + 1)]), *rng.sample(others, 2)]
        rng.shuffle(wrong)
        endings = [_text([_fill(s, **args)], "en", capitalise=False)
                   for s in [*wrong[:k], steps[i + 1], *wrong[k:]]]
        ctx_a = _text([_fill("{p} " + steps[i], **args)], "en")
        ctx_b = _text([_fill("then {p}", **args)], "en")
        rows.append({"ind": ind, "activity_label": activity, "ctx_a": ctx_a, "ctx_b": ctx_b,
                     "ctx": f"{ctx_a} {ctx_b}", "endings": endings, "source_id": f"activitynet~v_{_uid(rng)}",
                     "split": "train" if split == "train" else "val", "split_type": "indomain",
                     "label": str(k)})
    return rows


class _Choice(NamedTuple):
    premise: _Sent
    choices: tuple[_Sent, ...]
    question: str  # COPA's "cause" or "effect"
    label: int
    uid: str


def _copa(w: _World, rng: random.Random, n: int) -> list[_Choice]:
    """COPA: an activity's step and the step after it (its effect) or before it (its cause), against a step of
    another activity."""
    out = []
    for k in _balanced(rng, n, 2):
        activity = rng.choice(tuple(_ACTIVITIES))
        steps = _ACTIVITIES[activity]
        i = rng.randrange(len(steps) - 1)
        args = _profile(w, rng, rng.choice(w.people), set())
        effect = rng.random() < 0.5
        premise, right = (steps[i], steps[i + 1]) if effect else (steps[i + 1], steps[i])
        wrong = rng.choice([s for a, ss in _ACTIVITIES.items() if a != activity for s in ss])
        options = [_fill("{p} " + s, **args) for s in ([wrong, right] if k else [right, wrong])]
        out.append(_Choice(_fill("{p} " + premise, **args), tuple(options), "effect" if effect else "cause", k,
                           _uid(rng)))
    return out


def _siqa(w: _World, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """SIQA: Cosmos QA's stories and questions with three answers, the label "1"-"3"."""
    rows = []
    for row in _cosmosqa(w, rng, n):
        answers = [row[f"answer{i}"] for i in range(4)]
        right = answers.pop(row["label"])
        answers = rng.sample(answers, 2)
        k = rng.randrange(3)
        answers.insert(k, right)
        rows.append({"context": row["context"], "question": row["question"],
                     **{f"answer{c}": a for c, a in zip("ABC", answers, strict=True)}, "label": str(k + 1)})
    return rows


def _mewslix(out: Path, world: _World, seed: int, sizes: DemoSizes, languages: Sequence[str]) -> None:
    """Mewsli-X as get-mewsli-x.sh writes it: the candidate entities (people, cities, organisations, each with an
    English fact about it as its description) and WikiNews mentions of them in every language, dev and test."""
    entities = [*world.people, *world.cities, *world.orgs]
    ids = {e.name: f"Q{i + 1}" for i, e in enumerate(entities)}
    rng = _rng(seed, "mewslix", "entities")
    lines = []
    for e in entities:
        text = f"{e.name} is a {'person' if e in world.people else 'city' if e in world.cities else 'company'} ."
        lines.append({"entity_id": ids[e.name], "title": e.name, "description": text, "sentence_spans": [
            {"start": 0, "end": len(text)}], "description_language": "en", "description_url": f"demo:{ids[e.name]}"})
    out.mkdir(parents=True, exist_ok=True)
    (out / "candidate_set_entities.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                                                       encoding="utf-8")
    for split, file_split in (("validation", "dev"), ("test", "test")):
        docs = []
        sents = _facts(world, _rng(seed, "mewslix", split), sizes.eval)
        for lang in languages:
            for i, sent in enumerate(sents):
                forms = _forms(sent, lang)
                text, spans = _join(forms)
                first = sent.toks[0]
                if first.word:  # a fact about an organisation or a person starts with its name
                    continue
                entity = next(e.name for e in entities if e.toks[0] == first and sent.toks[:len(e.toks)] == e.toks)
                end = spans[len(entity.split()) - 1][1]
                docs.append({"context": {"document_title": f"demo {i}", "document_url": f"demo:{lang}/{i}",
                                         "document_id": f"{lang}-{i}", "language": lang, "text": text,
                                         "sentence_spans": [{"start": 0, "end": len(text)}]},
                             "mentions": [{"example_id": f"{lang}-{split}-{i}", "mention_span": {
                                 "start": 0, "end": end, "text": text[:end]}, "entity_id": ids[entity]}]})
        rng.shuffle(docs)
        (out / f"wikinews_mentions-{file_split}.jsonl").write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in docs), encoding="utf-8")


# --- Rows in the hub schemas ----------------------------------------------------------------------

_S = pa.string()
_I64 = pa.int64()
_STRS = pa.list_(_S)
_SQUAD_ANSWERS = pa.struct([("text", _STRS), ("answer_start", pa.list_(pa.int32()))])
_XTREME_ANSWERS = pa.struct([("answer_start", pa.list_(pa.int32())), ("text", _STRS)])
_SCHEMAS: dict[str, pa.Schema] = {
    "anli": pa.schema([("uid", _S), ("premise", _S), ("hypothesis", _S), ("label", _I64), ("reason", _S)]),
    "commonsenseqa": pa.schema([("id", _S), ("question", _S), ("question_concept", _S),
                                ("choices", pa.struct([("label", _STRS), ("text", _STRS)])),
                                ("answerKey", _S)]),
    "cosmosqa": pa.schema([("id", _S), ("context", _S), ("question", _S),
                           *[(f"answer{i}", _S) for i in range(4)], ("label", _I64)]),
    "hellaswag": pa.schema([("ind", _I64), ("activity_label", _S), ("ctx_a", _S), ("ctx_b", _S), ("ctx", _S),
                            ("endings", _STRS), ("source_id", _S), ("split", _S), ("split_type", _S),
                            ("label", _S)]),
    "mnli": pa.schema([("premise", _S), ("hypothesis", _S), ("label", _I64), ("idx", pa.int32())]),
    "qqp": pa.schema([("question1", _S), ("question2", _S), ("label", _I64), ("idx", pa.int32())]),
    "sst2": pa.schema([("sentence", _S), ("label", _I64), ("idx", pa.int32())]),
    "squad": pa.schema([("id", _S), ("title", _S), ("context", _S), ("question", _S),
                        ("answers", _SQUAD_ANSWERS)]),
    "xnli": pa.schema([("language", _S), ("sentence1", _S), ("sentence2", _S), ("gold_label", _S)]),
    "pawsx": pa.schema([("sentence1", _S), ("sentence2", _S), ("label", _S)]),
    "udpos": pa.schema([("tokens", _STRS), ("pos_tags", pa.list_(_I64))]),
    "panx": pa.schema([("tokens", _STRS), ("ner_tags", pa.list_(_I64)), ("langs", _STRS)]),
    "xquad": pa.schema([("id", _S), ("context", _S), ("question", _S), ("answers", _XTREME_ANSWERS)]),
    "mlqa": pa.schema([("id", _S), ("title", _S), ("context", _S), ("question", _S),
                       ("answers", _XTREME_ANSWERS)]),
    "bitext": pa.schema([("source_sentence", _S), ("target_sentence", _S), ("source_lang", _S),
                         ("target_lang", _S)]),
    "ccg": pa.schema([("tokens", _STRS), ("tags", _STRS)]),
    "siqa": pa.schema([("context", _S), ("question", _S), ("answerA", _S), ("answerB", _S), ("answerC", _S),
                       ("label", _S)]),
    "copa": pa.schema([("premise", _S), ("choice1", _S), ("choice2", _S), ("question", _S), ("idx", pa.int32()),
                       ("label", _I64)]),
    "xcopa": pa.schema([("premise", _S), ("choice1", _S), ("choice2", _S), ("question", _S), ("label", pa.int32()),
                        ("idx", pa.int32()), ("changed", pa.bool_())]),
    "toxicity": pa.schema([("text", _S), ("toxic", _I64)]),
    "masakhaner": pa.schema([("id", _S), ("tokens", _STRS), ("ner_tags", pa.list_(_I64))]),
    "americasnli": pa.schema([("premise", _S), ("hypothesis", _S), ("label", _I64)]),
    "xquad_r": pa.schema([("id", _S), ("context", _S), ("question", _S), ("answers", _SQUAD_ANSWERS)]),
}  # fmt: skip
_UPOS_INDEX = {tag: i for i, tag in enumerate(UPOS_TAGS)}
_NER_INDEX = {tag: i for i, tag in enumerate(NER_TAGS)}


def _answers(ex: _QA, lang: str) -> tuple[str, str, list[str], list[int]]:
    """Context, question, answer texts and their character offsets in the context, in `lang`."""
    context, spans = _passage(ex.context, lang)
    question = _text([ex.question], lang)
    if ex.answer is None:
        return context, question, [], []
    k, slot = ex.answer
    first, last = ex.context[k].spans[slot]
    start, end = spans[k][first][0], spans[k][last - 1][1]
    return context, question, [context[start:end]], [start]


def _squad_row(ex: _QA, lang: str, i: int) -> dict[str, Any]:
    context, question, texts, starts = _answers(ex, lang)
    return {"id": ex.uid, "title": ex.title, "context": context, "question": question,
            "answers": {"text": texts, "answer_start": starts}}


def _xtreme_qa_row(ex: _QA, lang: str, uid: str, title: bool) -> dict[str, Any]:
    context, question, texts, starts = _answers(ex, lang)
    return {"id": uid, **({"title": ex.title} if title else {}), "context": context, "question": question,
            "answers": {"answer_start": starts, "text": texts}}


def _tag_row(column: str, tags: Callable[[_Tok], Any]) -> Callable[[_Sent, str, int], dict[str, Any]]:
    return lambda s, lang, i: {"tokens": _forms(s, lang), column: [tags(t) for t in s.toks]}


def _pair_row(a: str, b: str | None, label: Callable[[int], Any] = int, label_column: str = "label",
              **extra: Callable[[_Pair, str, int], Any]) -> Callable[[_Pair, str, int], dict[str, Any]]:
    """Rows with text columns `a` (and `b`), the label, and `extra` columns computed per row."""
    def row(ex: _Pair, lang: str, i: int) -> dict[str, Any]:
        texts = {a: _text(ex.a, lang), **({b: _text(ex.b, lang)} if b else {})}
        return {**texts, label_column: label(ex.label), **{k: f(ex, lang, i) for k, f in extra.items()}}
    return row


def _bitext_row(code: Callable[[str], str], english: str) -> Callable[[_Sent, str, int], dict[str, Any]]:
    return lambda s, lang, i: {"source_sentence": _text([s], lang), "target_sentence": _text([s], "en"),
                               "source_lang": code(lang), "target_lang": english}


class _Kind(NamedTuple):
    schema: str
    examples: Callable[[_World, random.Random, int, str], list[Any]]  # (world, rng, n, "train"/"dev"/split)
    row: Callable[[Any, str, int], dict[str, Any]]  # (example, language, index) -> hub row


def _as_is(ex: dict[str, Any], lang: str, i: int) -> dict[str, Any]:
    return ex


_NLI_ROW = _pair_row("premise", "hypothesis", idx=lambda ex, lang, i: i)
_DATE = len(NER_TAGS)  # MasakhaNER's B-DATE: a year


def _copa_row(changed: bool) -> Callable[[_Choice, str, int], dict[str, Any]]:
    def row(ex: _Choice, lang: str, i: int) -> dict[str, Any]:
        texts = {"premise": _text([ex.premise], lang), "choice1": _text([ex.choices[0]], lang),
                 "choice2": _text([ex.choices[1]], lang)}
        extra = {"changed": False} if changed else {}
        return {**texts, "question": ex.question, "idx": i, "label": ex.label, **extra}
    return row


def _masakhaner_row(s: _Sent, lang: str, i: int) -> dict[str, Any]:
    tags = [_DATE if t.upos == "NUM" and len(t.text) == 4 else _NER_INDEX[t.ner] for t in s.toks]
    return {"id": str(i), "tokens": _forms(s, lang), "ner_tags": tags}


_KINDS: dict[str, _Kind] = {
    "anli": _Kind("anli", lambda w, r, n, s: _nli(w, r, n, hard=True),
                  _pair_row("premise", "hypothesis", uid=lambda ex, lang, i: ex.uid,
                            reason=lambda ex, lang, i: "")),
    "mnli": _Kind("mnli", lambda w, r, n, s: _nli(w, r, n, hard=False), _NLI_ROW),
    "xnli": _Kind("xnli", lambda w, r, n, s: _nli(w, r, n, hard=False),
                  _pair_row("sentence1", "sentence2", NLI_LABELS.__getitem__, "gold_label",
                            language=lambda ex, lang, i: lang)),
    "qqp": _Kind("qqp", lambda w, r, n, s: _qqp(w, r, n),
                 _pair_row("question1", "question2", idx=lambda ex, lang, i: i)),
    "sst2": _Kind("sst2", lambda w, r, n, s: _sst(w, r, n),
                  _pair_row("sentence", None, idx=lambda ex, lang, i: i)),
    "pawsx": _Kind("pawsx", lambda w, r, n, s: _pawsx(w, r, n), _pair_row("sentence1", "sentence2", str)),
    "commonsenseqa": _Kind("commonsenseqa", lambda w, r, n, s: _commonsenseqa(w, r, n), _as_is),
    "cosmosqa": _Kind("cosmosqa", lambda w, r, n, s: _cosmosqa(w, r, n), _as_is),
    "hellaswag": _Kind("hellaswag", _hellaswag, _as_is),
    "squad_v2": _Kind("squad", lambda w, r, n, s: _qa(w, r, n, unanswerable=True), _squad_row),
    "squad": _Kind("squad", lambda w, r, n, s: _qa(w, r, n, unanswerable=False), _squad_row),
    "xquad": _Kind("xquad", lambda w, r, n, s: _qa(w, r, n, unanswerable=False),
                   lambda ex, lang, i: _xtreme_qa_row(ex, lang, ex.uid, title=False)),
    "mlqa": _Kind("mlqa", lambda w, r, n, s: _qa(w, r, n, unanswerable=False),
                  lambda ex, lang, i: _xtreme_qa_row(ex, lang, ex.uid, title=True)),
    "tydiqa": _Kind("mlqa", lambda w, r, n, s: _qa(w, r, n, unanswerable=False),
                    lambda ex, lang, i: _xtreme_qa_row(ex, lang, f"{TYDIQA_PREFIXES[lang]}-{ex.uid}",
                                                       title=True)),
    "udpos": _Kind("udpos", lambda w, r, n, s: _tagged(w, r, n, entities=False),
                   _tag_row("pos_tags", lambda t: _UPOS_INDEX[t.upos])),
    "panx": _Kind("panx", lambda w, r, n, s: _tagged(w, r, n, entities=True),
                  lambda s, lang, i: {"tokens": _forms(s, lang),
                                      "ner_tags": [_NER_INDEX[t.ner] for t in s.toks],
                                      "langs": [lang] * len(s.toks)}),
    "ccg": _Kind("ccg", lambda w, r, n, s: _tagged(w, r, n, entities=False),
                 _tag_row("tags", lambda t: t.ccg)),
    "bucc": _Kind("bitext", lambda w, r, n, s: _facts(w, r, n), _bitext_row(lambda lang: lang, "en")),
    "tatoeba": _Kind("bitext", lambda w, r, n, s: _facts(w, r, n),
                     _bitext_row(lambda lang: TATOEBA_CODES[lang], "eng")),
    "siqa": _Kind("siqa", lambda w, r, n, s: _siqa(w, r, n), _as_is),
    "copa": _Kind("copa", lambda w, r, n, s: _copa(w, r, n), _copa_row(changed=False)),
    "xcopa": _Kind("xcopa", lambda w, r, n, s: _copa(w, r, n), _copa_row(changed=True)),
    "toxicity": _Kind("toxicity", lambda w, r, n, s: _sst(w, r, n),
                      lambda ex, lang, i: {"text": _text(ex.a, lang), "toxic": 1 - ex.label}),
    "masakhaner": _Kind("masakhaner", lambda w, r, n, s: _tagged(w, r, n, entities=True), _masakhaner_row),
    "americasnli": _Kind("americasnli", lambda w, r, n, s: _nli(w, r, n, hard=False),
                         _pair_row("premise", "hypothesis")),
    "lareqa": _Kind("xquad_r", lambda w, r, n, s: _qa(w, r, n, unanswerable=False),
                    _squad_row),
}  # fmt: skip


# --- The mirror -----------------------------------------------------------------------------------

class _Files:
    """Rows collected per output file and language (several languages can share one hub file)."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[str, dict[str, list[dict[str, Any]]]]] = {}

    def has(self, path: Path, lang: str) -> bool:
        return path in self.files and lang in self.files[path][1]

    def put(self, path: Path, schema: str, lang: str, rows: list[dict[str, Any]]) -> None:
        self.files.setdefault(path, (schema, {}))[1][lang] = rows

    def write(self) -> None:
        for path, (schema, chunks) in self.files.items():
            rows = [row for chunk in chunks.values() for row in chunk]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(pa.Table.from_pylist(rows, schema=_SCHEMAS[schema]), tmp)
            os.replace(tmp, path)


def _rng(seed: int, *stream: str) -> random.Random:
    return random.Random("/".join([str(seed), *stream]))


def _check(languages: Mapping[str, Sequence[str]]) -> None:
    for name, langs in languages.items():
        if name not in TARGETS:
            raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        unknown = [lang for lang in langs if lang not in TARGETS[name].configs]
        if unknown:
            raise ValueError(f"target {name!r} has no language(s) {', '.join(map(repr, unknown))}; "
                             f"known: {' '.join(TARGETS[name].languages)}")


def generate_hub_mirror(out_dir: Path, languages: Mapping[str, Sequence[str]], *, seed: int = 0,
                        sizes: DemoSizes = DemoSizes(),
                        translations: Mapping[str, Sequence[str]] | None = None) -> None:
    """Write the demo's data under `out_dir`, deterministically for `seed` (layout: module docstring).

    languages: target name -> ISO 639-1 codes to generate for that target (e.g. {"xnli": ["en", "de"]}).
    translations: dataset -> languages into which its English training split is "machine-translated"
    (rendered through the language's lexicon), written as `translations/<dataset>/<lang>/train.parquet`.
    """
    _check(languages)
    out_dir = Path(out_dir)
    world = _make_world(seed)
    files = _Files()

    def hub_path(hub: HubSplit) -> Path:
        return out_dir / hub.path / (hub.config or "default") / f"{hub.split}.parquet"

    for ds in DATASETS.values():
        kind = _KINDS[ds.name]
        for role, hubs, n in (("train", ds.train, sizes.train), ("dev", ds.dev, sizes.dev)):
            for hub in hubs:
                # a task with no hub copy (CCGbank) is a local source: `local/<its sources key>/`
                path = out_dir / "local" / ds.local_path_key / f"{role}.parquet" if not ds.on_hub else hub_path(hub)
                if hub.part is not None:  # seeded parts of one split (TextDetox's English): the split, once
                    if files.has(path, "en"):
                        continue
                    n = sizes.train + sizes.dev + sizes.eval
                examples = kind.examples(world, _rng(seed, ds.name, hub.split), n, role)
                files.put(path, kind.schema, "en", [kind.row(ex, "en", i) for i, ex in enumerate(examples)])
                for lang in (translations or {}).get(ds.name, []) if role == "train" else []:
                    files.put(out_dir / "translations" / ds.name / lang / "train.parquet", kind.schema, lang,
                              [kind.row(ex, lang, i) for i, ex in enumerate(examples)])
    for name, langs in languages.items():
        if not TARGETS[name].on_hub:  # Mewsli-X: a local source
            _mewslix(out_dir / "local" / name, world, seed, sizes, langs)
            continue
        target, kind = TARGETS[name], _KINDS[name]
        for split in target.splits:
            examples: list[Any] | None = None
            for lang in (lang for lang in langs if split in target.splits_for(lang)):  # as on the hub
                path = hub_path(target.source(lang, split))
                if files.has(path, lang):  # English dev data of the training set (PAWS-X, TyDiQA, ...)
                    continue
                if examples is None:
                    examples = kind.examples(world, _rng(seed, "target", name, split), sizes.eval, split)
                files.put(path, kind.schema, lang, [kind.row(ex, lang, i) for i, ex in enumerate(examples)])
    files.write()
    if "udpos" in languages:
        _write_ud_release(out_dir / "local" / UD_FOLDER, world, seed, sizes, languages["udpos"])
    _write_corpus(out_dir / "corpus", world, seed, sizes.corpus,
                  sorted({lang for langs in languages.values() for lang in langs} - {"en"}))
    _write_lexicons(out_dir / LEXICON_FOLDER, {lang for langs in languages.values() for lang in langs})


def _ud_sentence(sent: _Sent, lang: str, index: int) -> list[dict[str, Any]]:
    """One sentence as CoNLL-U tokens: a flat tree (every word attached to the first); outside English an
    ADP followed by a DET is one multiword token of both forms, and every fifth sentence ends in an empty node."""
    forms = _forms(sent, lang)
    tokens: list[dict[str, Any]] = []
    for i, (tok, form) in enumerate(zip(sent.toks, forms, strict=True), 1):
        nxt = sent.toks[i] if i < len(sent.toks) else None
        if lang != "en" and tok.upos == "ADP" and nxt is not None and nxt.upos == "DET":
            tokens.append({"id": (i, "-", i + 1), "form": form + forms[i]})
        tokens.append({"id": i, "form": form, "upos": tok.upos, "head": 0 if i == 1 else 1,
                       "deprel": "root" if i == 1 else "dep"})
    if index % 5 == 4:
        tokens.append({"id": (len(forms), ".", 1), "form": "_", "deps": [("dep", 1)]})
    return tokens


def _write_ud_release(folder: Path, world: _World, seed: int, sizes: DemoSizes, languages: Sequence[str]) -> None:
    """The UD-POS sentences of the hub mirror (the same draws) as a UD release (module docstring)."""
    def write(path: Path, sents: Sequence[_Sent], lang: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(conllu_text(_ud_sentence(s, lang, i) for i, s in enumerate(sents)), encoding="utf-8")
        os.replace(tmp, path)

    kind, target, english = _KINDS["udpos"], TARGETS["udpos"], DATASETS["udpos"]
    drawn: dict[tuple[str, str], list[_Sent]] = {}
    for role, hubs, n in (("train", english.train, sizes.train), ("dev", english.dev, sizes.dev)):
        drawn[("en", hubs[0].split)] = kind.examples(world, _rng(seed, "udpos", hubs[0].split), n, role)
    for split in target.splits:
        sents = kind.examples(world, _rng(seed, "target", "udpos", split), sizes.eval, split)
        for lang in (lang for lang in languages if split in target.splits_for(lang)):
            drawn.setdefault((lang, split), sents)  # English dev data: the training set's, as on the hub
    for (lang, split), sents in drawn.items():
        write(folder / f"UD_{NAMES[lang]}-Demo" / f"{lang}_demo-ud-{UD_SPLITS[split]}.conllu", sents, lang)
        if lang != "en" and split == "test":
            write(folder / f"UD_Old_{NAMES[lang]}-Demo" / f"q{lang}_demo-ud-test.conllu", sents, f"old-{lang}")


def _write_corpus(folder: Path, world: _World, seed: int, n: int, languages: list[str]) -> None:
    """English lines, and per language: the even lines translate English's, the odd ones are its own."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed, "corpus", "en")
    english = [_any_sentence(world, rng) for _ in range(n)]
    for lang in ["en", *languages]:
        rng = _rng(seed, "corpus", lang)
        sents = english if lang == "en" else [s if i % 2 == 0 else _any_sentence(world, rng)
                                              for i, s in enumerate(english)]
        tmp = folder / f"{lang}.txt.tmp"
        tmp.write_text("".join(_text([s], lang) + "\n" for s in sents), encoding="utf-8")
        os.replace(tmp, folder / f"{lang}.txt")


def _write_lexicons(folder: Path, languages: set[str]) -> None:
    """Every vocabulary word of the world (punctuation left out) in one language and its form in another: the
    exact translations, since the languages substitute word for word (`lexicons.demo_pairs`)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({t.text for t in _WORDS.values()} - _PUNCTUATION)
    for source, target in sorted(demo_pairs(languages)):
        forms, translations = _lexicon(source), _lexicon(target)
        tmp = folder / (file_name(source, target) + ".tmp")
        tmp.write_text(render({forms[w]: (translations[w],) for w in words}), encoding="utf-8")
        os.replace(tmp, folder / file_name(source, target))
