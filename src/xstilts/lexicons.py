"""Bilingual lexicons in the MUSE format (facebookresearch/MUSE): a folder (config `sources.lexicons`) of
`<src>-<tgt>.txt` files, one "word translation" pair per line (a space or a tab between them; a word with
several translations on several lines). `code_switch` and `adversarial` (`xstilts.conditions`) replace words
by their translations; the demo's generated world writes exact lexicons for every pair of its languages.

Pairs whose translation is the word itself are skipped (as PolyGloss builds its dictionaries from MUSE's),
and so are multi-word entries: a replacement is one word, so that a tagged word keeps its one tag.
No pandas or torch here: the config check reads which pairs exist when the DAG is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from itertools import permutations
from pathlib import Path

FOLDER = "lexicons"  # the demo world's lexicons, under its hub mirror (`{demo}/lexicons`)
Lexicon = dict[str, tuple[str, ...]]  # word -> its translations, in file order
# word -> [(language, its translations into that language)], the languages in the order asked for
Switches = dict[str, tuple[tuple[str, tuple[str, ...]], ...]]


def file_name(source: str, target: str) -> str:
    return f"{source}-{target}.txt"


def pairs_in(folder: Path) -> set[tuple[str, str]]:
    """The (source, target) pairs that have a lexicon file in `folder` (none if it does not exist)."""
    files = Path(folder).glob("*-*.txt") if Path(folder).is_dir() else ()
    return {tuple(f.stem.split("-", 1)) for f in files}  # type: ignore[misc]


def demo_pairs(languages: Iterable[str]) -> set[tuple[str, str]]:
    """The pairs the demo's world writes: every ordered pair of its languages and English."""
    return set(permutations(sorted({*languages, "en"}), 2))


def parse(text: str) -> Lexicon:
    """A MUSE file's text as {word: translations}; identical and multi-word pairs skipped."""
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] == parts[1]:
            continue
        translations = entries.setdefault(parts[0], [])
        if parts[1] not in translations:
            translations.append(parts[1])
    return {word: tuple(t) for word, t in entries.items()}


def render(lexicon: Lexicon) -> str:
    """A lexicon in the MUSE format (the inverse of `parse`)."""
    return "".join(f"{word} {t}\n" for word, translations in lexicon.items() for t in translations)


@cache
def _read(path: Path, mtime_ns: int) -> tuple[Lexicon, str]:
    """A lexicon file and its sha256, read once per version of the file."""
    data = path.read_bytes()
    return parse(data.decode("utf-8")), hashlib.sha256(data).hexdigest()


def switches(folder: Path, language: str, into: Iterable[str]) -> tuple[Switches, str]:
    """The translations of `language`'s words into each language of `into`, and a digest of the files read
    (what a cached perturbation is keyed by). A missing file is a FileNotFoundError naming it."""
    found: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    digest = hashlib.sha256()
    for target in into:
        path = Path(folder) / file_name(language, target)
        if not path.is_file():
            raise FileNotFoundError(f"no lexicon {path.name} in {folder} (sources.lexicons)")
        lexicon, sha = _read(path.resolve(), path.stat().st_mtime_ns)
        digest.update(f"{path.name}:{sha}\n".encode())
        for word, translations in lexicon.items():
            found.setdefault(word, []).append((target, translations))
    return {word: tuple(options) for word, options in found.items()}, digest.hexdigest()
