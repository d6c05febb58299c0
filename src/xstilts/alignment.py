"""Alignment probes per layer: how close an encoder puts a sentence and its translation, at every layer, on the
parallel data the grid already holds (`Target.parallel`: Tatoeba, BUCC's gold pairs, XNLI's dev set, XQuAD's
and MLQA's questions), for every phase-(ii) encoder (and `none`, `untrained`): one job per encoder (`AlignSpec`).

Per language L (English paired with L's sentences, at most `max_pairs`, a seeded sample of the pairs whose two
sides are each unique) and per `hidden_states` index (0: the embeddings), sentence vectors pooled as the
retrieval targets pool them (`AlignmentSettings.pooling`), the measures:
- `retrieval_en_xx`, `retrieval_xx_en`: the accuracy (%) of cosine nearest-neighbour search, Tatoeba-style,
  from the English side to L's and back;
- `cka`: linear CKA (Kornblith et al. 2019) between the English and L vectors of the pairs: 1 for
  representations equal up to a rotation and a scale, near 0 for unrelated ones;
- `isotropy`: the mean cosine of random pairs of L's vectors (language `en`: of the English sentences):
  near 0 when they spread in every direction, near 1 in one narrow cone, which inflates every cosine.
Written to `results/alignment/intermediate=I/seed=S/alignment.parquet`, one row per language x layer x measure.

The aggregate job then plots each measure by layer (one line per row, the mean over languages and seeds) and
joins each row's alignment gain over `none` at one layer (`AlignmentSettings.layer`, by default the retrieval
layer) with its transfer gain, per target and language, with their correlation across rows and languages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xstilts.catalogue import BASELINE_ROW, CONTROL_ROWS, TARGETS
from xstilts.settings import AlignmentSettings, retrieval_layer

if TYPE_CHECKING:
    from xstilts.layout import Layout
    from xstilts.specs import AlignSpec

MEASURES = ("retrieval_en_xx", "retrieval_xx_en", "cka", "isotropy")
RETRIEVAL = "retrieval"  # the join's retrieval gain: the mean of both directions
ALIGNMENT_COLUMNS = ["language", "layer", "measure", "value", "n"]


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same n examples ([n, d1], [n, d2]): ||Y'X||² / (||X'X|| ||Y'Y||)
    over column-centred X and Y (Frobenius norms); 0 when either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same examples on both sides, got {len(x)} and {len(y)}")
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / norm) if norm > 0 else 0.0


def isotropy(vectors: np.ndarray, pairs: int, rng: np.random.Generator) -> float:
    """The mean cosine of `pairs` random pairs of distinct rows (NaN with fewer than two rows)."""
    n = len(vectors)
    if n < 2:
        return np.nan
    first = rng.integers(0, n, pairs)
    second = (first + rng.integers(1, n, pairs)) % n  # never the same row
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(unit[first] * unit[second], axis=1)))


def retrieval_accuracy(queries: np.ndarray, candidates: np.ndarray) -> float:
    """The share (%) of queries whose cosine-nearest candidate is their own translation (row i <-> row i)."""
    from xstilts.retrieval import nearest

    return 100.0 * float(np.mean(nearest(queries, candidates) == np.arange(len(queries))))


# --------------------------------------------------------------------------------------------------
# Parallel sentences


def _table(folder: Path, split: str, language: str) -> pd.DataFrame | None:
    path = folder / split / f"{language}.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def target_pairs(target: str, folder: Path, language: str) -> list[tuple[str, str]]:
    """(English, `language`) sentence pairs of one target's first split, as its data pair them (`Target.parallel`);
    none where a side is not prepared."""
    kind, split = TARGETS[target].parallel, TARGETS[target].splits[0]
    ours = _table(folder, split, language)
    if ours is None:
        return []
    if kind == "pairs":  # rows with both sides; `target` is the English one
        both = ours.dropna(subset=["source", "target"])
        return list(zip(both["target"], both["source"], strict=True))
    english = _table(folder, split, "en")
    if english is None:
        return []
    if kind == "rows":  # the same row in every language: premises and hypotheses
        if len(english) != len(ours):
            raise ValueError(f"{target} {split}: {len(english)} English rows but {len(ours)} {language} rows; its "
                             "rows should be translations row by row")
        return [*zip(english["text_a"], ours["text_a"], strict=True),
                *zip(english["text_b"], ours["text_b"], strict=True)]
    questions = dict(zip(english["id"].astype(str), english["question"], strict=True))  # `ids`: questions
    return [(questions[i], q) for i, q in zip(ours["id"].astype(str), ours["question"], strict=True) if i in questions]


def parallel_pairs(data: dict[str, Path], language: str, max_pairs: int, seed: int) -> list[tuple[str, str]]:
    """`language`'s pairs over every parallel target of the grid, each side unique (a repeated English or foreign
    sentence would have several right answers), at most `max_pairs`: a seeded sample."""
    seen_en, seen_xx, pairs = set(), set(), []
    for target, folder in data.items():
        for en, xx in target_pairs(target, folder, language):
            if en and xx and en not in seen_en and xx not in seen_xx:
                seen_en.add(en)
                seen_xx.add(xx)
                pairs.append((en, xx))
    return random.Random(f"{seed}/{language}").sample(pairs, max_pairs) if len(pairs) > max_pairs else pairs


def probe_languages(data: dict[str, Path]) -> list[str]:
    """Every language other than English that a parallel target's data hold (meta.json)."""
    from xstilts.data import read_meta

    return sorted({lang for folder in data.values() for lang in read_meta(folder)["languages"]} - {"en"})


# --------------------------------------------------------------------------------------------------
# The job


def probe_rows(english: np.ndarray, foreign: np.ndarray, language: str, settings: AlignmentSettings
               ) -> list[dict[str, object]]:
    """Every measure at every layer of one language's pairs ([layers, n, hidden] each side)."""
    rng = np.random.default_rng([settings.seed, *map(ord, language)])
    rows = []
    for layer, (en, xx) in enumerate(zip(english, foreign, strict=True)):
        found = {"retrieval_en_xx": retrieval_accuracy(en, xx), "retrieval_xx_en": retrieval_accuracy(xx, en),
                 "cka": linear_cka(en, xx), "isotropy": isotropy(xx, settings.isotropy_pairs, rng)}
        rows += [{"language": language, "layer": layer, "measure": m, "value": v, "n": len(en)}
                 for m, v in found.items()]
    return rows


def align(spec: AlignSpec) -> pd.DataFrame:
    """One encoder's probes (module docstring), written to the spec's `alignment.parquet`."""
    from xstilts import runtime
    from xstilts.models import load_encoder
    from xstilts.results_io import write_parquet
    from xstilts.retrieval import embed_layers

    settings = spec.settings
    dev = runtime.device(spec.deterministic)
    encoder, tokenizer = load_encoder(spec.encoder)
    encoder.to(dev).eval()
    layers = list(range(encoder.config.num_hidden_layers + 1))

    def vectors(sentences: Sequence[str]) -> np.ndarray:
        return embed_layers(encoder, tokenizer, sentences, layers=layers, pooling=settings.pooling,
                            batch_size=settings.batch_size, max_length=settings.max_length, device=dev)

    rows, english = [], set()
    for language in probe_languages(spec.data):
        pairs = parallel_pairs(spec.data, language, settings.max_pairs, settings.seed)
        if len(pairs) < 2:
            continue
        english.update(en for en, _ in pairs)
        rows += probe_rows(vectors([en for en, _ in pairs]), vectors([xx for _, xx in pairs]), language, settings)
    sample = random.Random(f"{settings.seed}/en").sample(sorted(english), min(len(english), settings.max_pairs))
    rng = np.random.default_rng([settings.seed, *map(ord, "en")])
    for layer, en in enumerate(vectors(sample) if len(sample) > 1 else []):
        rows.append({"language": "en", "layer": layer, "measure": "isotropy",
                     "value": isotropy(en, settings.isotropy_pairs, rng), "n": len(en)})
    frame = pd.DataFrame(rows, columns=ALIGNMENT_COLUMNS)
    spec.write(spec.out.parent)
    write_parquet(frame, spec.out)
    return frame


# --------------------------------------------------------------------------------------------------
# Tables and plots (the aggregate job)


def layer_means(alignment: pd.DataFrame, rows: Sequence[str]) -> pd.DataFrame:
    """Per row, measure and layer: the mean over languages (English only in `isotropy`), then over seeds."""
    per_seed = alignment.groupby(["intermediate", "seed", "measure", "layer"])["value"].mean()
    means = per_seed.groupby(["intermediate", "measure", "layer"]).mean().reset_index()
    return means[means["intermediate"].isin(list(rows))]


def join_layer(alignment: pd.DataFrame, layer: int | None) -> int:
    """The layer whose gains are joined with transfer gains: the configured one, else the retrieval layer."""
    return retrieval_layer(int(alignment["layer"].max())) if layer is None else layer


def alignment_gains(alignment: pd.DataFrame, rows: Sequence[str], layer: int) -> pd.DataFrame:
    """Per row (not a control) and language (not English): each measure's mean over seeds at `layer`, minus
    `none`'s; `retrieval` the mean of both directions."""
    at = alignment[(alignment["layer"] == layer) & (alignment["language"] != "en")]
    means = at.groupby(["intermediate", "language", "measure"])["value"].mean().unstack("measure")
    means = means.reindex(columns=list(MEASURES))
    means[RETRIEVAL] = means[["retrieval_en_xx", "retrieval_xx_en"]].mean(axis=1)
    if BASELINE_ROW not in means.index.get_level_values(0):
        return pd.DataFrame(columns=["intermediate", "language", RETRIEVAL, "cka", "isotropy"])
    gains = means.sub(means.loc[BASELINE_ROW], level="language")[[RETRIEVAL, "cka", "isotropy"]].reset_index()
    return gains[gains["intermediate"].isin([r for r in rows if r not in CONTROL_ROWS])]


def transfer_gains(cells: pd.DataFrame, rows: Sequence[str]) -> pd.DataFrame:
    """Per row (not a control), target and language (not English): the clean headline's mean over seeds minus
    `none`'s (`aggregate.cell_scores` rows)."""
    means = cells.groupby(["intermediate", "target", "language"])["value"].mean().unstack("intermediate")
    others = [r for r in rows if r not in CONTROL_ROWS and r in means.columns]
    if BASELINE_ROW not in means.columns or not others:
        return pd.DataFrame(columns=["intermediate", "target", "language", "transfer_gain"])
    gains = means[others].sub(means[BASELINE_ROW], axis=0).stack().rename("transfer_gain").reset_index()
    return gains[gains["language"] != "en"]


def alignment_transfer(alignment: pd.DataFrame, cells: pd.DataFrame, rows: Sequence[str], layer: int) -> pd.DataFrame:
    """Each row's transfer gain per target and language beside its alignment gains there (one line each)."""
    joined = transfer_gains(cells, rows).merge(alignment_gains(alignment, rows, layer), on=["intermediate", "language"])
    return joined.dropna(subset=["transfer_gain"]).reset_index(drop=True)


def correlations(joined: pd.DataFrame) -> pd.DataFrame:
    """Per target (and `all`) and alignment measure: how many (row, language) points, and the Pearson and
    Spearman correlations of the alignment gains with the transfer gains (NaN below three points)."""
    records = []
    for target, part in [*joined.groupby("target", sort=False), ("all", joined)]:
        for measure in (RETRIEVAL, "cka", "isotropy"):
            both = part[["transfer_gain", measure]].dropna()
            enough = len(both) >= 3 and both.nunique().min() > 1
            records.append({"target": target, "measure": measure, "n": len(both),
                            "pearson": both.corr().iat[0, 1] if enough else np.nan,
                            "spearman": both.corr(method="spearman").iat[0, 1] if enough else np.nan})
    return pd.DataFrame(records, columns=["target", "measure", "n", "pearson", "spearman"])


def layer_plot(means: pd.DataFrame, measure: str, rows: Sequence[str], path: Path) -> None:
    """One measure by layer, one line per row."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from xstilts.results_io import atomic_path

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    colours = colormaps["tab20"]
    for i, row in enumerate(rows):
        line = means[(means["intermediate"] == row) & (means["measure"] == measure)].sort_values("layer")
        if len(line):
            ax.plot(line["layer"], line["value"], marker="o", markersize=3, color=colours(i % 20), label=row)
    ax.set_xlabel("layer (hidden_states index; 0: embeddings)")
    ax.set_ylabel({"cka": "linear CKA, English vs the language", "isotropy": "mean cosine of random pairs"}.get(
        measure, "accuracy (%)"))
    ax.set_title(f"{measure} by layer (mean over languages and seeds)")
    if len(means[means["measure"] == measure]):
        ax.legend(fontsize=7, ncols=2)
    else:
        ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


@dataclass(frozen=True)
class Probes:
    """The alignment tables of one grid: measures by layer, the join with transfer gains at `layer`, and its
    correlations."""

    means: pd.DataFrame
    joined: pd.DataFrame
    correlations: pd.DataFrame
    layer: int


def compute_probes(alignment: pd.DataFrame, cells: pd.DataFrame, rows: Sequence[str], layer: int | None
                   ) -> Probes | None:
    """The alignment tables from every encoder's probes (`results_io.read_alignment`) and the clean cell
    scores (`aggregate.cell_scores`); None without probes."""
    if not len(alignment):
        return None
    at = join_layer(alignment, layer)
    joined = alignment_transfer(alignment, cells, rows, at)
    return Probes(layer_means(alignment, rows), joined, correlations(joined), at)


def write_probes(probes: Probes, layout: Layout, rows: Sequence[str]) -> list[Path]:
    """`alignment_layers`, `alignment_transfer`, `alignment_correlation` (parquet, CSV, Markdown, LaTeX) and one
    plot per measure, `alignment_<measure>.png`."""
    from xstilts.aggregate import write_formats

    wide = probes.means.pivot_table(index=["intermediate", "measure"], columns="layer", values="value")
    wide.columns = [f"layer {layer}" for layer in wide.columns]
    paths = write_formats(wide.reset_index().set_index("intermediate"), layout.tables / "alignment_layers")
    paths += write_formats(probes.joined.set_index("intermediate"), layout.tables / "alignment_transfer")
    paths += write_formats(probes.correlations.set_index("target"), layout.tables / "alignment_correlation")
    for measure in MEASURES:
        layer_plot(probes.means, measure, rows, layout.plot(f"alignment_{measure}"))
        paths.append(layout.plot(f"alignment_{measure}"))
    return paths
