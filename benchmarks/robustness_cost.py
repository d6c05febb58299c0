"""The evaluation cost of the robustness conditions against clean-only evaluation, on a demo grid.

Every evaluation job of the grid is run in this process (`jobs.evaluate`, the model loaded each time, as a job
does) three ways, interleaved over the rounds after one warm-up pass, medians reported: clean only; clean and
the default robustness set (`settings.DEFAULT_CONDITIONS`), its perturbed tables made once per target and
language into a fresh cache each round, as a run makes them; clean and `adversarial` alone. Prints `name:
value` lines: the seconds of each, the ratios to clean-only (goal: the default set within 2x), and the
attack's forward passes per attacked example and success rate. Each job's process start (3-4 s of importing
torch and transformers on the demo) is not counted: it is the same in all three.

    python benchmarks/robustness_cost.py --configfile config.yaml profiles/demo/demo-config.yaml [overlay.yaml]

The results folder of the config must hold a finished demo grid (`make demo`, or a reduced one with an
overlay of rows and targets); the outputs go to a temporary folder, the grid's own files are not touched.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
import transformers

from xstilts.conditions import ADVERSARIAL
from xstilts.config import load_config
from xstilts.grid import Grid
from xstilts.jobs import evaluate
from xstilts.settings import DEFAULT_CONDITIONS


def run(config: dict, conditions: tuple[str, ...], out: Path) -> tuple[float, pd.DataFrame]:
    """Seconds to evaluate every cell of the grid with `robustness.conditions` set to `conditions` (none: clean
    only), each cell's spec as the grid builds it for a run, its outputs under `out`; and the scores."""
    section = {**(config.get("robustness") or {}), "conditions": list(conditions), "targets": None}
    grid = Grid({**config, "robustness": section if conditions else None})
    total, frames = 0.0, []
    for spec in grid.evaluate_jobs():
        cell = replace(spec, out=out / "/".join(spec.key) / "scores.parquet",
                       predictions=out / "/".join(spec.key) / "predictions.parquet",
                       perturbed=spec.perturbed and out / "cache" / spec.target)
        start = time.perf_counter()
        frames.append(evaluate(cell).assign(intermediate=spec.row, target=spec.target))
        total += time.perf_counter() - start
    return total, pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    config = load_config(args.configfile)
    grid = Grid(config)
    if grid.lexicons is None:
        raise SystemExit("the config names no `sources.lexicons` (the demo's: {demo}/lexicons)")
    seconds: dict[str, list[float]] = {"clean": [], "default": [], "attack": []}
    with tempfile.TemporaryDirectory() as tmp:
        run(config, (), Path(tmp) / "warm-up")
        for r in range(args.rounds):
            for name, conditions in (("clean", ()), ("default", DEFAULT_CONDITIONS), ("attack", (ADVERSARIAL,))):
                took, scores = run(config, conditions, Path(tmp) / f"{name}-{r}")
                seconds[name].append(took)
    clean, default, attack = (statistics.median(seconds[k]) for k in ("clean", "default", "attack"))
    passes = scores[(scores["condition"] == ADVERSARIAL) & (scores["metric"] == "forward_passes")]["value"]
    success = scores[(scores["condition"] == ADVERSARIAL) & (scores["metric"] == "attack_success_rate")]["value"]
    print(f"evaluation_jobs: {len(grid.evaluate_jobs())}")
    print(f"clean_only_seconds: {clean:.1f}")
    print(f"default_set_seconds: {default:.1f}")
    print(f"default_set_ratio: {default / clean:.2f}")  # goal: <= 2
    print(f"adversarial_seconds: {attack:.1f}")
    print(f"adversarial_ratio: {attack / clean:.2f}")
    print(f"attack_forward_passes_per_attacked_example: {passes.mean():.1f}")
    print(f"attack_success_rate: {success.mean():.1f}")


if __name__ == "__main__":
    main()
