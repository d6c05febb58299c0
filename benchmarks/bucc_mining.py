"""BUCC mining at real corpus sizes: `retrieval.mine_pairs` (ratio margin, k=4, both ways) on N random sentence
vectors a side (XLM-R Large's 1024 dimensions; half of the sentences have a noisy translation on the other side),
each size in a fresh process, so its peak resident memory is its own. BUCC 2018's test corpora hold about 400k
sentences a side: the last lines extrapolate to it (time grows with N^2; the vectors with N, and the search holds
only blocks of `retrieval._BLOCK_ELEMENTS` similarities at a time). Prints `name: value` lines; run with
`python benchmarks/bucc_mining.py [--sizes 10000 50000 100000] [--dim 1024]` (minutes at 100k on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from xstilts import retrieval


def mine(n: int, dim: int) -> dict[str, float]:
    """Mine N x N sentences; seconds, pairs found, peak memory, and the vectors' own size."""
    rng = np.random.default_rng(0)
    source = rng.standard_normal((n, dim), dtype=np.float32)
    target = rng.standard_normal((n, dim), dtype=np.float32)
    half = n // 2
    target[:half] = source[:half] + 0.5 * rng.standard_normal((half, dim), dtype=np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    start = time.perf_counter()
    pairs = retrieval.mine_pairs(source, target, k=4)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    return {"seconds": seconds, "pairs": len(pairs), "peak_gb": peak, "before_gb": before,
            "vectors_gb": (source.nbytes + target.nbytes) / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a size, in this process
    a = parser.parse_args()
    if a.one:
        print(json.dumps(mine(a.one, a.dim)))
        return
    block_gb = retrieval._BLOCK_ELEMENTS * 4 / 1e9
    print(f"dim: {a.dim}")
    print(f"block_gb: {block_gb:.3f}")
    results = {}
    for n in a.sizes:
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--dim", str(a.dim)], check=True,
                              capture_output=True, text=True)
        r = results[n] = json.loads(done.stdout.splitlines()[-1])
        print(f"mine_{n}_seconds: {r['seconds']:.1f}")
        print(f"mine_{n}_pairs: {r['pairs']}")
        print(f"mine_{n}_peak_memory_gb: {r['peak_gb']:.2f}")
        # what mining added beyond the process and its vectors: bounded by blocks, not by N^2
        print(f"mine_{n}_memory_beyond_vectors_gb: {r['peak_gb'] - r['before_gb']:.2f}")
        print(f"mine_{n}_similarity_matrix_would_be_gb: {n * n * 4 / 1e9:.1f}")
    largest = max(results)
    r, scale = results[largest], 400_000 / largest
    print(f"mine_400000_seconds_extrapolated: {r['seconds'] * scale ** 2:.0f}")
    print(f"mine_400000_peak_memory_gb_extrapolated: {r['before_gb'] + (r['peak_gb'] - r['before_gb']) * scale:.1f}")


if __name__ == "__main__":
    main()
