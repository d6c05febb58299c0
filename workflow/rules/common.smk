# Helpers shared by the rules: the grid (xstilts.grid), paths, wildcard constraints, CLI arguments.
import json

from xstilts.catalogue import TARGETS
from xstilts.grid import Grid, check_config

check_config(config)
GRID = Grid(config)
R = str(GRID.results)
TABLES = [f"{R}/tables/transfer.md", f"{R}/tables/delta.md"]


def alternatives(names):
    """A wildcard pattern matching exactly these names (all checked against the catalogue)."""
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


wildcard_constraints:
    row=alternatives(GRID.rows),
    target=alternatives(GRID.targets),
    trainset=alternatives(GRID.trainsets),
    dataset=alternatives(GRID.datasets),
    seed=r"\d+",


def demo_inputs():
    """The demo's generated hub mirror, which every data-preparing rule reads in demo runs."""
    return [f"{R}/demo/hub"] if GRID.demo else []


def row_data(wildcards):
    return [GRID.dataset_meta(t) for t in GRID.row_tasks(wildcards.row)]


def target_encoder(wildcards):
    return GRID.encoder(wildcards.row, wildcards.seed)


def cell_inputs(wildcards):
    return {
        "model": GRID.cell_model(wildcards.row, wildcards.target, wildcards.seed),
        "data": GRID.target_meta(wildcards.target),
    }


def eval_hparams(wildcards):
    trainset = TARGETS[wildcards.target].trainset
    return json.dumps(GRID.hparams(trainset) if trainset else {}, sort_keys=True)
