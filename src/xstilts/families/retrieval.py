"""Retrieval (Tatoeba, BUCC, Mewsli-X, LAReQA): no head and no training; sentence vectors pooled from one layer
of the encoder (`retrieval.embed`), then a search: each sentence's nearest translation (`nearest`: accuracy),
bitext mining with a ratio margin and a threshold chosen on the dev pairs (`mining`: F1), or each query's
candidates ranked in one pool of every language's candidates (`pool`: mAP@20)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from xstilts import retrieval
from xstilts.data import bitext_sides
from xstilts.families import Family

ScoreRow = dict[str, Any]
PredictionRow = dict[str, Any]
Vectors = Callable[[list[str]], np.ndarray]
POOL_K = 20  # XTREME-R's mAP@20 (LAReQA's `mean_avg_prec_at_k(k=20)`, Mewsli-X's TOP_K)


class Retrieval(Family):
    """A table of `source` and `target` sentences (a row with both: a gold pair); the search is the
    target's (`Target.search`)."""

    name = "retrieval"

    def evaluate(self, search: str, tables: dict[str, pd.DataFrame], vectors: Vectors, settings: Any
                 ) -> tuple[list[ScoreRow], list[PredictionRow]]:
        """Score rows (split, metric, value, n_examples) and prediction rows (split, id, prediction, gold,
        score) of one language's tables (split -> table)."""
        return (self._nearest if search == "nearest" else self._mining)(tables, vectors, settings)

    def _nearest(self, tables: dict[str, pd.DataFrame], vectors: Vectors, settings: Any
                 ) -> tuple[list[ScoreRow], list[PredictionRow]]:
        """Tatoeba: XTREME queries with the English side (`target`) among the other language's sentences."""
        rows, predictions = [], []
        for split, df in tables.items():
            english, foreign = vectors(df["target"].tolist()), vectors(df["source"].tolist())
            found = retrieval.nearest(english, foreign)
            right = found == np.arange(len(df))
            hits = (100.0 * right).tolist()
            rows.append({"split": split, "metric": "accuracy", "value": 100.0 * float(right.mean()),
                         "n_examples": len(df)})
            predictions += [{"split": split, "id": str(i), "prediction": str(int(j)), "gold": str(i), "score": hit}
                            for i, (j, hit) in enumerate(zip(found, hits, strict=True))]
        return rows, predictions

    def _mining(self, tables: dict[str, pd.DataFrame], vectors: Vectors, settings: Any
                ) -> tuple[list[ScoreRow], list[PredictionRow]]:
        """BUCC: pairs mined over every sentence (the original files add sentences without translation);
        the F1-optimal threshold on the dev pairs (the first split) is applied to every split."""
        rows, predictions, threshold = [], [], None
        for split, df in tables.items():
            bitext = bitext_sides(df, settings.duplicates)
            mined = retrieval.mine_pairs(vectors(bitext.sources), vectors(bitext.targets), k=settings.k)
            candidates = bitext.keyed(mined)
            if threshold is None:
                threshold = retrieval.best_threshold(candidates, bitext.gold)
            rows += [{"split": split, "metric": m, "value": v, "n_examples": len(bitext.gold)}
                     for m, v in retrieval.bucc_f1(candidates, bitext.gold, threshold).items()]
            gold = dict(bitext.gold)
            found = {s for s, _ in candidates}
            mined = [{"target": str(t), "margin": margin, "kept": margin >= threshold}
                     for (_, t), margin in sorted(candidates.items())]
            predictions += [{"split": split, "id": str(s), "prediction": json.dumps(pair), "gold": str(gold.get(s, "")),
                             "score": None} for (s, _), pair in zip(sorted(candidates), mined, strict=True)]
            predictions += [{"split": split, "id": str(s), "prediction": "", "gold": str(t), "score": None}
                            for s, t in sorted(bitext.gold) if s not in found]
        return rows, predictions

    def pool(self, tables: dict[str, dict[str, pd.DataFrame]], vectors: Vectors
             ) -> tuple[list[ScoreRow], list[PredictionRow]]:
        """Per language and split (language -> split -> table), the mAP@20 of its queries, each ranked against
        the candidates of every language's table of that split (one pool: LAReQA's answers in every language,
        Mewsli-X's entities). Score rows and prediction rows carry their `language`; a prediction is the ids of
        the top 20 candidates (`<language>:<id>`), its score the query's AP@20 (0-100). A pool the same as the
        previous split's (Mewsli-X's entities serve dev and test) is encoded once."""
        rows, predictions = [], []
        encoded: tuple[list[str], list[str], np.ndarray] | None = None  # the last pool: texts, ids, vectors
        for split in dict.fromkeys(s for by_split in tables.values() for s in by_split):
            candidates = pd.concat([by_split[split][by_split[split]["candidate"].notna()].assign(language=lang)
                                    for lang, by_split in tables.items() if split in by_split], ignore_index=True)
            # ids as "<language>:<id>": LAReQA's sentence ids repeat from language to language
            texts, ids = candidates["candidate"].tolist(), (candidates["language"] + ":" + candidates["id"]).tolist()
            if encoded is None or encoded[:2] != (texts, ids):
                encoded = (texts, ids, vectors(texts))
            pool = encoded[2]
            holders: dict[str, set[int]] = {}
            for i, keys in enumerate(candidates["keys"]):
                for key in keys:
                    holders.setdefault(str(key), set()).add(i)
            for lang, by_split in tables.items():
                queries = by_split[split][by_split[split]["query"].notna()] if split in by_split else None
                if queries is None or queries.empty:
                    continue
                ranked = retrieval.top_k(vectors(queries["query"].tolist()), pool, POOL_K)
                scores = [100 * retrieval.average_precision_at_k(holders.get(str(keys[0]), set()), list(found), POOL_K)
                          for keys, found in zip(queries["keys"], ranked, strict=True)]
                rows.append({"language": lang, "split": split, "metric": "map20", "value": float(np.mean(scores)),
                             "n_examples": len(queries)})
                predictions += [{"language": lang, "split": split, "id": str(qid),
                                 "prediction": json.dumps([ids[j] for j in found]),
                                 "gold": str(keys[0]), "score": score}
                                for qid, keys, found, score in zip(queries["id"], queries["keys"], ranked, scores,
                                                                   strict=True)]
        return rows, predictions
