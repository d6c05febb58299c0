"""DAG build time of the paper grid (config.yaml, slurm profile), against DESIGN.md's 5 s goal.

Prints `name: value` lines; run with `python benchmarks/dag_build.py [repeats]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 5.0


def main(repeats: int = 5) -> None:
    times = []
    with tempfile.TemporaryDirectory() as results:
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm", "--config",
                            f"results={results}"], cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"dag_build_seconds_median: {median:.2f}")
    print(f"dag_build_goal_ratio: {GOAL_SECONDS / median:.2f}")  # > 1 meets the goal


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
