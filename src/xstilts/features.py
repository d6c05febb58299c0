"""Model inputs shared by every family: a `Features` table, padding, and length-grouped batches.

A `Features` holds one list per column (`input_ids` always; `labels`; QA's and tagging's bookkeeping) and
the length of every row, which the length-grouped sampler and the dynamic-padding collators use. Each
family makes its own (`xstilts.families`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import torch

IGNORE = -100
FEATURES_VERSION = 3  # bump on any change to what the tokenisers produce: it keys the tokenised cache


@dataclass
class Features:
    columns: dict[str, list[Any]]
    lengths: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lengths)


def padded(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` right-padded with `value` to the longest, as one (rows, width) tensor, and the real-token mask."""
    lengths = torch.tensor([len(r) for r in rows])
    mask = torch.arange(int(lengths.max())) < lengths[:, None]
    out = torch.full(mask.shape, value, dtype=torch.long)
    out[mask] = torch.tensor(list(chain.from_iterable(rows)), dtype=torch.long)  # row-major: prefix of each row
    return out, mask.long()


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator, *,
                           shuffle: bool = True, mega: int = 256, min_real: float = 0.95) -> list[list[int]]:
    """Batches of rows of similar length, to pad little.

    Training (`shuffle`): shuffle, sort by length within mega-batches of `mega` batches, cut into batches of
    `batch_size` rows, shuffle the batches (all draws from `generator`). Evaluation: all rows sorted by
    length, a batch ending at `batch_size` rows or where its real-token fraction would fall below `min_real`.
    """
    n = len(lengths)
    if not shuffle:
        batches, batch, real = [], [], 0
        for i in sorted(range(n), key=lengths.__getitem__):
            if batch and (len(batch) == batch_size or real + lengths[i] < min_real * (len(batch) + 1) * lengths[i]):
                batches.append(batch)
                batch, real = [], 0
            batch.append(i)
            real += lengths[i]
        return [*batches, batch] if batch else batches
    perm = torch.randperm(n, generator=generator).tolist()
    chunk = batch_size * mega
    batches = []
    for s in range(0, n, chunk):
        group = sorted(perm[s:s + chunk], key=lambda i: -lengths[i])
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]
