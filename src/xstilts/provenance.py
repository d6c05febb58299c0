"""Run facts: what an output was made with, stored beside every score and checkpoint.

Results are reproducible bit for bit on one machine with the same settings, not across CPU or GPU types
or thread counts (README, "Reproducibility"); the facts say which settings: the seed, the thread
settings, the library versions, whether deterministic kernels were forced, and the run's device.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

LIBRARIES = ("torch", "transformers", "tokenizers", "datasets", "numpy", "safetensors", "xstilts")
# cuBLAS needs a fixed workspace to be deterministic (PyTorch's "Reproducibility" notes).
CUBLAS_WORKSPACE = ":4096:8"


def library_versions() -> dict[str, str]:
    """Python's and each library's version (read from the installed metadata: nothing is imported)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def thread_settings() -> dict[str, Any]:
    """The threads torch computes with (a reduction's result can depend on them) and OMP_NUM_THREADS."""
    import torch

    return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}


def use_deterministic_kernels() -> None:
    """Force deterministic kernels (config `deterministic: true`): torch refuses an op that has none, and
    cuDNN autotuning is off. Costs speed on GPUs; on the CPU the results are deterministic anyway."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def run_facts(*, seed: int, deterministic: bool, device: str, **extra: Any) -> dict[str, Any]:
    """The facts of the run in this process, plus `extra` (e.g. the data an output came from)."""
    return {"seed": seed, "deterministic": deterministic, "device": device, "threads": thread_settings(),
            "versions": library_versions(), **extra}
