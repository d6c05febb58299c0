"""UD-POS as XTREME reads a Universal Dependencies release (`sources.udpos`: its `ud-treebanks-v2.5` folder).

XTREME's `scripts/download_data.sh` (download_udpos) takes, for each language, every file
`UD_*/<iso>_*-ud-{train,dev,test}.conllu` (the ISO prefix of the file name; `grc_`, `orv_`, `lzh_`, `fro_`
and `gsw_` are other languages), converts it with `third_party/ud-conversion-tools/conllu_to_conll.py
--replace_subtokens_with_fused_forms`, and `utils_preprocess.py` (udpos_preprocess) reads the result:
- empty nodes (ids like 8.1) are dropped;
- a multiword token (ids like 3-4) becomes one word: its own form, with the tag of the span's head word, the
  word with the fewest ancestors in the graph of basic and enhanced dependencies, ties broken by a POS
  precedence list (`lib/conll.py` _keep_fused_form, _choose_spanhead_from_heuristics);
- a sentence whose forms are all (or all but one) "_" is dropped: treebanks distributed without their text;
- forms are stripped, and lose every space and zero-width non-joiner (remove_empty_space).
The files of one split are read in file-name order. CoNLL-U is parsed with the `conllu` package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import conllu
import pandas as pd

from xstilts.catalogue import UPOS_TAGS
from xstilts.errors import DataError

UD_SPLITS = {"train": "train", "validation": "dev", "test": "test"}  # hub split -> UD file split
# conllu_to_conll.py's POS precedence among tied span heads (POSRANKPRECEDENCEDICT), per --lang.
_PRECEDENCE = {
    "default": "VERB NOUN PROPN PRON ADJ NUM ADV INTJ AUX ADP DET PART CCONJ SCONJ X PUNCT".split(),
    "es": "VERB AUX PRON ADP DET".split(),
    "fr": "VERB AUX PRON NOUN ADJ ADV ADP DET PART SCONJ CONJ".split(),
    "it": "VERB AUX ADV PRON ADP DET INTJ".split(),
}
LAYOUT = "a UD v2.5 release folder (ud-treebanks-v2.5) holding UD_*/<iso>_*-ud-{train,dev,test}.conllu"


def treebank_files(root: Path, language: str, split: str) -> list[Path]:
    """The files XTREME reads for one language and split (hub split name), in file-name order."""
    return sorted(root.glob(f"UD_*/{language}_*-ud-{UD_SPLITS[split]}.conllu"), key=lambda p: p.name)


def _ancestors(word: int, parents: dict[int, set[int]]) -> int:
    """How many nodes reach `word` through dependency edges (networkx's ancestors, as XTREME counts)."""
    seen: set[int] = set()
    todo = list(parents.get(word, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(parents.get(node, ()))
    return len(seen - {word})


def _span_head(span: Sequence[int], parents: dict[int, set[int]], upos: dict[int, str],
               precedence: Sequence[str]) -> int:
    """The word of a multiword token whose tag the fused form takes: the single highest word of the span,
    else the first of the highest ones with the best-ranked POS (a POS outside the list ranks last: the
    list XTREME uses covers every tie in UD v2.5, where an unlisted one would have stopped its script)."""
    depth = {w: _ancestors(w, parents) for w in span}
    highest = [w for w in span if depth[w] == min(depth.values())]
    rank = {w: precedence.index(upos[w]) if upos[w] in precedence else len(precedence) for w in highest}
    return min(highest, key=lambda w: (rank[w], span.index(w)))


def _sentence(tokens: conllu.TokenList, precedence: Sequence[str]) -> tuple[list[str], list[str]]:
    """One sentence's (forms, tags) after XTREME's multiword-token fusion; empty nodes dropped."""
    words = [t for t in tokens if isinstance(t["id"], int)]
    upos = {t["id"]: t["upos"] for t in words}
    parents: dict[int, set[int]] = {}
    for t in words:
        heads = [t["head"]] + [h for _, h in (t["deps"] or []) if isinstance(h, int)]
        parents[t["id"]] = {h for h in heads if isinstance(h, int)}
    fused: dict[int, str] = {}  # span head -> the multiword token's form
    dropped: set[int] = set()
    for t in tokens:
        if isinstance(t["id"], tuple) and t["id"][1] == "-":
            span = list(range(t["id"][0], t["id"][2] + 1))
            head = _span_head(span, parents, upos, precedence)
            fused[head] = t["form"]
            dropped |= set(span) - {head}
    kept = [t for t in words if t["id"] not in dropped]
    return [fused.get(t["id"], t["form"]) for t in kept], [t["upos"] for t in kept]


def read_file(file: Path, language: str) -> list[tuple[list[str], list[str]]]:
    """The sentences of one CoNLL-U file as XTREME keeps them: (forms, UPOS tags)."""
    precedence = _PRECEDENCE.get(language, _PRECEDENCE["default"])
    out = []
    with file.open(encoding="utf-8") as fh:
        for tokens in conllu.parse_incr(fh):
            forms, tags = _sentence(tokens, precedence)
            forms = [f.strip() for f in forms]
            empty = sum(f == "_" for f in forms)
            if empty and empty >= len(forms) - 1:  # no text (or one word of it): a treebank without forms
                continue
            unknown = sorted(set(tags) - set(UPOS_TAGS))
            if unknown:
                raise DataError(f"{file}: sentence {tokens.metadata.get('sent_id', '?')} has tags {unknown}, "
                                f"which are not UPOS tags ({' '.join(UPOS_TAGS)})")
            out.append(([f.replace("\u200c", "").replace(" ", "") for f in forms], tags))
    return out


def read_split(root: Path, language: str, split: str) -> tuple[pd.DataFrame, list[Path]]:
    """One language's split in the hub's udpos schema (tokens, pos_tags as tag names), and the files read."""
    files = treebank_files(root, language, split)
    if not files:
        raise DataError(f"target 'udpos': `sources.udpos` is {root}, which holds no UD_*/{language}_*-ud-"
                        f"{UD_SPLITS[split]}.conllu: point it at {LAYOUT}")
    sentences = [s for file in files for s in read_file(file, language)]
    return pd.DataFrame(sentences, columns=["tokens", "pos_tags"]), files


def conllu_text(sentences: Iterable[Sequence[dict[str, Any]]]) -> str:
    """CoNLL-U text of sentences given as token dicts (id, form, upos, head; optional deps), e.g. for the
    demo's generated treebanks; ids are ints, (a, "-", b) for a multiword token, (a, ".", b) for an empty node."""
    lists = []
    for i, tokens in enumerate(sentences, 1):
        rows = [conllu.Token({"id": t["id"], "form": t["form"], "lemma": "_", "upos": t.get("upos", "_"),
                              "xpos": "_", "feats": None, "head": t.get("head"),
                              "deprel": t.get("deprel", "dep" if isinstance(t["id"], int) else "_"),
                              "deps": t.get("deps"), "misc": None}) for t in tokens]
        lists.append(conllu.TokenList(rows, {"sent_id": str(i)}).serialize())
    return "".join(lists)
