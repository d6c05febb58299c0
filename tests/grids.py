"""Small grids on the paper's config.yaml, for tests that lay out a results tree by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from xstilts.config import load_config
from xstilts.grid import Grid

ROOT = Path(__file__).resolve().parents[1]


def overrides(results: Path, rows: Sequence[str], targets: Sequence[str], seeds: Sequence[int] = (1,),
              variants: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"results": str(results), "rows": list(rows), "targets": list(targets), "seeds": list(seeds),
            "variants": dict(variants or {})}


def make_grid(results: Path, rows: Sequence[str], targets: Sequence[str], seeds: Sequence[int] = (1,),
              variants: Mapping[str, Any] | None = None) -> Grid:
    """config.yaml with these rows, targets, seeds and variants, its results in `results`."""
    return Grid(load_config([ROOT / "config.yaml"], overrides=overrides(results, rows, targets, seeds, variants)))


def overlay(path: Path, results: Path, rows: Sequence[str], targets: Sequence[str], seeds: Sequence[int] = (1,),
            variants: Mapping[str, Any] | None = None) -> list[str]:
    """The same as config files for the CLI: config.yaml and an overlay written to `path`."""
    path.write_text(yaml.safe_dump(overrides(results, rows, targets, seeds, variants)))
    return [str(ROOT / "config.yaml"), str(path)]
