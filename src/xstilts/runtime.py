"""Where a job computes: its device (a GPU when there is one) and the process group of data-parallel runs."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import torch
import torch.distributed as dist

from xstilts import provenance


def device(deterministic: bool = False) -> torch.device:
    """This process's GPU when there is one (TF32 matmuls on), else the CPU; with `deterministic`,
    deterministic kernels only (`provenance.use_deterministic_kernels`)."""
    if deterministic:
        provenance.use_deterministic_kernels()
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


@contextlib.contextmanager
def process_group(always: bool = False) -> Iterator[int]:
    """Joins the processes torchrun started (NCCL on GPUs, gloo on the CPU); yields this one's rank. A single
    process joins a group of its own only when `always` (sharding needs one)."""
    if world_size() == 1 and not always:
        yield 0
        return
    alone = {}
    if "MASTER_ADDR" not in os.environ:  # one process, not started by torchrun: a group of one, on a free port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            alone = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(s.getsockname()[1]), "RANK": "0",
                     "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
        os.environ.update(alone)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()
        for name in alone:
            del os.environ[name]


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
