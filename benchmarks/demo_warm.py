"""The demo grid started cold and warm (`xstilts.warm`), in one run: wall and CPU seconds of each, their
ratios, whether the scores agree, and where the warm run's time went, rule by rule.

Prints `name: value` lines; run with `python benchmarks/demo_warm.py` (two whole demos: 15-30 minutes on
2 cores). Each run is `snakemake --profile profiles/demo` in a temporary folder of its own; CPU seconds are
those of every process the run started (the resident process and its jobs included).
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["intermediate", "target", "seed", "language", "split", "condition", "metric"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def demo(folder: Path, warm: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one whole demo run in `folder`."""
    cpu, start = children_cpu(), time.perf_counter()
    (folder / "start.yaml").write_text(f"warm_start: {str(warm).lower()}\n")
    configs = [str(ROOT / "config.yaml"), str(ROOT / "profiles/demo/demo-config.yaml"), str(folder / "start.yaml")]
    subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/demo", "--directory", str(folder),
                    "--configfile", *configs], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start, children_cpu() - cpu


def rule_seconds(folder: Path) -> dict[str, tuple[int, float]]:
    """Per rule: jobs and their summed wall seconds, from Snakemake's run log (start and finish times)."""
    log = sorted((folder / ".snakemake" / "log").glob("*.snakemake.log"))[-1].read_text()
    started: dict[str, datetime] = {}
    totals: dict[str, list[float]] = defaultdict(list)
    when = None
    for line in log.splitlines():
        if stamp := re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line.strip()):
            when = datetime.strptime(stamp[1], "%a %b %d %H:%M:%S %Y")
        elif job := re.fullmatch(r"jobid: (\d+)", line.strip()):
            started[job[1]] = when
        elif done := re.fullmatch(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line.strip()):
            totals[done[2]].append((when - started[done[1]]).total_seconds())
    return {rule: (len(s), sum(s)) for rule, s in sorted(totals.items())}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, warm in (("cold", False), ("warm", True)):
            folder = Path(tmp) / name
            folder.mkdir()
            runs[name] = demo(folder, warm)
            print(f"demo_{name}_wall_s: {runs[name][0]:.0f}", flush=True)
            print(f"demo_{name}_cpu_s: {runs[name][1]:.0f}", flush=True)
        print(f"warm_speedup_wall: {runs['cold'][0] / runs['warm'][0]:.2f}")
        print(f"warm_speedup_cpu: {runs['cold'][1] / runs['warm'][1]:.2f}")
        cold, warm = (pd.read_parquet(Path(tmp) / n / "results" / "scores").set_index(KEYS)["value"].sort_index()
                      for n in ("cold", "warm"))
        print(f"scores_identical: {cold.equals(warm)} ({len(cold)} values)")
        for rule, (jobs, seconds) in rule_seconds(Path(tmp) / "warm").items():
            print(f"warm_job_seconds_{rule}: {seconds:.0f} ({jobs} jobs, {seconds / jobs:.1f} s each)")


if __name__ == "__main__":
    main()
