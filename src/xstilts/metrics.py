"""Evaluation metrics on a 0-100 scale, faithful to the official scripts XTREME reports with.

- classification: accuracy (XTREME `evaluate.py`); F1 of the positive class (the toxicity target);
- tagging: entity F1 as XTREME computed it: seqeval 1.2.2 for PAN-X (`seqeval_f1`), seqeval 0.0.12's
  reading of tags for UD-POS (`seqeval_0012_f1`); token accuracy for CCG supertags;
- QA: SQuAD v1.1 (`evaluate-v1.1.py`, XQuAD and TyDiQA-GoldP), MLQA (`mlqa_evaluation_v1.py`) and
  SQuAD 2.0 (`evaluate-v2.0.py`) F1 / exact match.

Every QA scorer averages over the questions of `references`; a question without a prediction scores 0
(as in the v1.1 and MLQA scripts; the v2.0 script instead leaves it out of the mean, which would
reward missing predictions). Predictions for unknown question ids are ignored.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Percentage of predictions equal to their reference."""
    _check_lengths(predictions, references)
    return 100.0 * sum(int(p == r) for p, r in zip(predictions, references, strict=True)) / len(references)


def positive_f1(predictions: Sequence[int], references: Sequence[int], positive: int) -> float:
    """F1 (0-100) of the `positive` class (the toxicity target's toxic class); 0 when nothing is right."""
    _check_lengths(predictions, references)
    tp = sum(p == r == positive for p, r in zip(predictions, references, strict=True))
    predicted, actual = sum(p == positive for p in predictions), sum(r == positive for r in references)
    return 0.0 if tp == 0 else 100.0 * 2 * tp / (predicted + actual)


def token_accuracy(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Percentage of tokens, over all sentences, whose predicted tag equals the reference tag."""
    _check_lengths(predictions, references)
    correct = total = 0
    for pred, ref in zip(predictions, references, strict=True):
        if len(pred) != len(ref):
            raise ValueError(f"a sentence has {len(pred)} predicted tags for {len(ref)} reference tags")
        correct += sum(p == r for p, r in zip(pred, ref, strict=True))
        total += len(ref)
    if total == 0:
        raise ValueError("no tokens to score")
    return 100.0 * correct / total


def seqeval_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Micro entity F1 of `seqeval.metrics.f1_score(references, predictions)` (1.2.2) with its defaults:
    XTREME's call for PAN-X, whose BIO tags every seqeval version reads alike.

    On tags without a BIO prefix 1.2.2 reads the first letter as the chunk tag and the rest as the type
    ("NOUN": tag "N", type "OUN"; "X": type "_"), unlike the 0.0.12 that scored XTREME's UD-POS numbers:
    use `seqeval_0012_f1` there.
    """
    _check_lengths(predictions, references)
    with warnings.catch_warnings():
        # seqeval warns once per non-BIO tag ("NOUN seems not to be NE tag")
        warnings.filterwarnings("ignore", message=".* seems not to be NE tag", category=UserWarning)
        from seqeval.metrics import f1_score  # imports scikit-learn: only where it is needed

        f1 = f1_score([list(r) for r in references], [list(p) for p in predictions])
    return 100.0 * float(f1)


def _chunks_0012(sentences: Sequence[Sequence[str]]) -> set[tuple[str, int, int]]:
    """seqeval 0.0.12's `get_entities`: (type, first, last) over the sentences joined by "O"; a tag's
    first letter is its chunk tag and the text after its last "-" its type ("SCONJ": tag "S", type
    "SCONJ", a chunk of its own; runs of "NOUN" one chunk)."""
    chunks = set()
    prev_tag, prev_type, begin = "O", "", 0
    labels = [label for sentence in sentences for label in (*sentence, "O")]
    for i, label in enumerate([*labels, "O"]):
        tag, type_ = label[0], label.split("-")[-1]
        typed, prev_typed = tag not in ("O", "."), prev_tag not in ("O", ".")
        if (prev_tag in ("E", "S") or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
                or (prev_typed and prev_type != type_)):
            chunks.add((prev_type, begin, i - 1))
        if (tag in ("B", "S") or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
                or (typed and prev_type != type_)):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def seqeval_0012_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Micro entity F1 of seqeval 0.0.12's `f1_score(references, predictions)`, which scored XTREME's
    UD-POS results and `evaluate_test.py`. Written here because 0.0.12 needs Keras."""
    _check_lengths(predictions, references)
    if any(len(p) != len(r) for p, r in zip(predictions, references, strict=True)):
        raise ValueError("every sentence needs as many predicted tags as reference tags")
    gold, predicted = _chunks_0012(references), _chunks_0012(predictions)
    correct = len(gold & predicted)
    precision = correct / len(predicted) if predicted else 0
    recall = correct / len(gold) if gold else 0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0
    return 100.0 * f1


TAG_F1 = {"1.2.2": seqeval_f1, "0.0.12": seqeval_0012_f1}  # by the seqeval version a task is scored as


def tag_counts(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
               seqeval: str) -> list[tuple[int, int, int]]:
    """Each sentence's (correct, predicted, gold) entity counts as the named seqeval version reads tags: summed
    over sentences they give `TAG_F1[seqeval]` (micro F1 = 2 correct / (predicted + gold)) for the tags the
    targets use, BIO tags and 0.0.12's reading of plain tags, whose entities never cross the "O" that seqeval
    puts between sentences. The paired bootstrap resamples sentences by these."""
    _check_lengths(predictions, references)
    if seqeval == "0.0.12":
        def chunks(sentence: Sequence[str]) -> set[tuple[str, int, int]]:
            return _chunks_0012([sentence])
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* seems not to be NE tag", category=UserWarning)
            from seqeval.metrics.sequence_labeling import get_entities

        def chunks(sentence: Sequence[str]) -> set[tuple[str, int, int]]:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".* seems not to be NE tag", category=UserWarning)
                return set(get_entities(list(sentence)))
    counts = []
    for pred, ref in zip(predictions, references, strict=True):
        predicted, gold = chunks(pred), chunks(ref)
        counts.append((len(predicted & gold), len(predicted), len(gold)))
    return counts


# --- SQuAD v1.1 -----------------------------------------------------------------------------------

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _squad_normalise(text: str) -> str:
    """SQuAD's normalisation: lower case, drop ASCII punctuation, then English articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return " ".join(_EN_ARTICLES.sub(" ", text).split())


def _token_f1(prediction: list[str], reference: list[str]) -> float:
    common = Counter(prediction) & Counter(reference)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(prediction), same / len(reference)
    return 2 * precision * recall / (precision + recall)


def _qa_examples(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                 normalise: Callable[[str], str]) -> list[tuple[float, float]]:
    """v1.1 / MLQA scoring per question of `references`: (F1, exact match) as fractions, the max over the
    gold answers; (0, 0) for a question without a prediction."""
    if not references:
        raise ValueError("no questions to score")
    scores = []
    for qid, golds in references.items():
        if len(golds) == 0:
            raise ValueError(f"question {qid!r} has no gold answer (unanswerable: use squad_v2_scores)")
        if qid not in predictions:
            scores.append((0.0, 0.0))
            continue
        pred = normalise(predictions[qid])
        gold = [normalise(g) for g in golds]
        scores.append((max(_token_f1(pred.split(), g.split()) for g in gold), max(float(pred == g) for g in gold)))
    return scores


def qa_totals(examples: Sequence[tuple[float, float]]) -> dict[str, float]:
    """F1 and exact match (0-100) over the questions: the means of their per-question values."""
    return {"f1": 100.0 * sum(f1 for f1, _ in examples) / len(examples),
            "exact_match": 100.0 * sum(em for _, em in examples) / len(examples)}


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """SQuAD v1.1 F1 and exact match (XQuAD, TyDiQA-GoldP), keys `f1` and `exact_match`."""
    return qa_totals(_qa_examples(predictions, references, _squad_normalise))


# --- MLQA -----------------------------------------------------------------------------------------


@cache
def _mlqa_punctuation() -> frozenset[str]:
    """Every character of a Unicode category P*, plus `string.punctuation` (which adds ASCII symbols)."""
    unicode_p = (chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P"))
    return frozenset(unicode_p) | _ASCII_PUNCT


def _article_remover(pattern: str) -> Callable[[str], str]:
    regex = re.compile(pattern)
    return lambda text: regex.sub(" ", text)


def _keep(text: str) -> str:
    return text


_MLQA_ARTICLES: dict[str, Callable[[str], str]] = {
    "en": _article_remover(r"\b(a|an|the)\b"),
    "es": _article_remover(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": _article_remover(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": _article_remover(r"\b(của|là|cái|chiếc|những)\b"),
    # The official pattern is '\sال^|ال': its first branch can never match ('^' after a character), so
    # it replaces *every* 'ال' with a space, in the middle of words too. Reproduced as is.
    "ar": lambda text: text.replace("ال", " "),
    "hi": _keep,
    "zh": _keep,
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")  # the official script's range, not all of CJK


def _mixed_segmentation(text: str) -> list[str]:
    """Each CJK character is a token; the runs between them are split on whitespace.

    (The official script also makes each punctuation character a token, but punctuation is gone by the
    time it segments.)
    """
    tokens: list[str] = []
    run_start = 0
    for i, ch in enumerate(text):
        if _CJK.match(ch):
            tokens.extend(text[run_start:i].split())
            tokens.append(ch)
            run_start = i + 1
    tokens.extend(text[run_start:].split())
    return tokens


def _mlqa_normaliser(language: str) -> Callable[[str], str]:
    if language not in _MLQA_ARTICLES:
        raise ValueError(f"MLQA scoring knows {sorted(_MLQA_ARTICLES)}, not {language!r}")
    remove_articles = _MLQA_ARTICLES[language]
    segment = _mixed_segmentation if language == "zh" else str.split
    punct = _mlqa_punctuation()

    def normalise(text: str) -> str:
        text = "".join(ch for ch in text.lower() if ch not in punct)
        return " ".join(segment(remove_articles(text)))

    return normalise


def mlqa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                language: str) -> dict[str, float]:
    """MLQA's official F1 and exact match for answers in `language` (en es de ar hi vi zh).

    Normalisation: lower case, remove Unicode punctuation, remove the language's articles, then
    whitespace tokens (zh: mixed segmentation, one token per CJK character).
    """
    return qa_totals(_qa_examples(predictions, references, _mlqa_normaliser(language)))


# --- SQuAD 2.0 ------------------------------------------------------------------------------------


def squad_v2_scores(predictions: Mapping[str, str],
                    references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """SQuAD 2.0 F1 and exact match; an empty reference list marks an unanswerable question.

    The prediction "" means "no answer". As in `evaluate-v2.0.py`, gold answers that normalise to
    nothing are dropped (a question left with none is unanswerable), and when either side has no tokens
    F1 is 100 if both have none, else 0: a prediction that normalises to nothing ("the", ".") counts as
    "no answer".
    """
    return qa_totals(_squad_v2_examples(predictions, references))


def _squad_v2_examples(predictions: Mapping[str, str],
                       references: Mapping[str, Sequence[str]]) -> list[tuple[float, float]]:
    if not references:
        raise ValueError("no questions to score")
    scores = []
    for qid, golds in references.items():
        if qid not in predictions:
            scores.append((0.0, 0.0))
            continue
        pred = _squad_normalise(predictions[qid])
        gold = [g for g in map(_squad_normalise, golds) if g] or [""]
        scores.append((max(float(pred == g) if not pred or not g else _token_f1(pred.split(), g.split())
                           for g in gold), max(float(pred == g) for g in gold)))
    return scores


def qa_examples(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], scorer: str,
                language: str = "en") -> list[tuple[float, float]]:
    """(F1, exact match) per question, as fractions, by the named official scorer: `squad` (v1.1),
    `mlqa` (in `language`) or `squad_v2`."""
    if scorer == "squad_v2":
        return _squad_v2_examples(predictions, references)
    normalise = _mlqa_normaliser(language) if scorer == "mlqa" else _squad_normalise
    return _qa_examples(predictions, references, normalise)


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if len(references) == 0:
        raise ValueError("nothing to score")
