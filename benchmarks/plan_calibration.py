"""How well `xstilts plan` estimates job times, on a finished grid (by default the demo's: run `make demo` first).

The plan's per-job hours against each finished job's measured time (`plan.measured`), as a ratio per rule
(estimate / measured): first at the configured rates (`plan` settings), then calibrated from the first half of
each rule's finished jobs (in the order they finished) and held against the other half; per rule the median
ratio, the worst factor either way, the share within 2x, and the ratio of the summed hours. Prints `name: value`
lines; run with `python benchmarks/plan_calibration.py [RESULTS] [--configfile FILE ...]` (it writes nothing).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.config import load_config
from xstilts.grid import Grid
from xstilts.plan import RULES, plan
from xstilts.status import output

ROOT = Path(__file__).resolve().parents[1]


def ratios(frame: pd.DataFrame, keys: set[tuple[str, ...]]) -> pd.DataFrame:
    """Estimate over measured hours of the finished jobs among `keys`."""
    done = frame[frame["measured_hours"].notna() & frame["key"].isin(keys)]
    return done.assign(ratio=done["hours"] / done["measured_hours"])


def report(name: str, frame: pd.DataFrame) -> None:
    for rule in RULES:
        r = frame.loc[frame["rule"] == rule, "ratio"]
        if r.empty:
            continue
        worst = float(np.max(np.maximum(r, 1 / r)))
        print(f"{name}_{rule}_jobs: {len(r)}")
        print(f"{name}_{rule}_median_ratio: {r.median():.2f}")
        print(f"{name}_{rule}_worst_factor: {worst:.2f}")
        print(f"{name}_{rule}_within_2x: {float(((r <= 2) & (r >= 0.5)).mean()):.2f}")
        rows = frame[frame["rule"] == rule]
        print(f"{name}_{rule}_total_ratio: {rows['hours'].sum() / rows['measured_hours'].sum():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "results")
    parser.add_argument("--configfile", nargs="+", type=Path,
                        default=[ROOT / "config.yaml", ROOT / "profiles/demo/demo-config.yaml"])
    a = parser.parse_args()
    grid = Grid(load_config(a.configfile, overrides={"results": str(a.results.resolve())}))
    configured = plan(grid, calibrate_from=[])
    finished = configured[configured["measured_hours"].notna()]
    first, rest = set(), set()
    for rule in RULES:  # each rule's finished jobs in the order they finished: the first half calibrates
        jobs = finished[finished["rule"] == rule]
        spec = {s.key: s for s in grid.jobs() if hasattr(s, "size")}
        order = sorted(jobs["key"], key=lambda k: output(spec[k]).stat().st_mtime)
        half = math.ceil(len(order) / 2)
        first |= set(order[:half])
        rest |= set(order[half:])
    print(f"finished_jobs: {len(finished)}")
    report("configured", ratios(configured, first | rest))
    calibrated = plan(grid, calibrate_from=sorted(first))
    report("calibrated_held_out", ratios(calibrated, rest))
    for rule in RULES:
        rows = calibrated[calibrated["rule"] == rule]
        if len(rows):
            print(f"calibrated_{rule}_overhead_s: {rows['overhead_s'].iat[0]:.2f}")
            print(f"calibrated_{rule}_mfu: {rows['mfu'].iat[0]:.4f}")


if __name__ == "__main__":
    main()
