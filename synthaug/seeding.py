"""Every seed synthaug derives, from one place.

A random stream is named by a base ``seed`` and a tuple of keys (a shard index, an epoch, a
training step, a rank, a DataLoader worker, a purpose such as ``"noise"``). :func:`derive_seed`
turns the name into a 63-bit integer through numpy's ``SeedSequence``, which mixes its inputs so
that neighbouring names give unrelated streams; Python's ``hash`` is never used (it is salted
for strings and ties streams to one interpreter). The global RNGs of torch and numpy are never
touched.

Example:
    >>> from synthaug.seeding import derive_seed, torch_generator
    >>> derive_seed(0, 3) == derive_seed(0, 3) != derive_seed(0, 4)
    True
    >>> torch.rand(2, generator=torch_generator(0, "noise", 1)).shape
    torch.Size([2])
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import get_worker_info

Key = int | str


def _entropy(key: Key) -> int:
    """A non-negative integer for ``key``: itself for a non-negative int, a stable hash for anything else."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    if not isinstance(key, (int, np.integer, str)):
        raise TypeError(f"seed keys must be ints or strings, got {type(key).__name__} {key!r}")
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


def _sequence(seed: int, keys: tuple[Key, ...]) -> np.random.SeedSequence:
    return np.random.SeedSequence([_entropy(seed), *(_entropy(k) for k in keys)])


def derive_seed(seed: int, *keys: Key) -> int:
    """A seed in ``[0, 2**63)`` determined by ``seed`` and ``keys`` alone."""
    return int(_sequence(seed, keys).generate_state(1, np.uint64)[0] >> 1)


def torch_generator(seed: int, *keys: Key, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``derive_seed(seed, *keys)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))


def numpy_generator(seed: int, *keys: Key) -> np.random.Generator:
    """A numpy ``Generator`` on the ``SeedSequence`` of ``(seed, *keys)``."""
    return np.random.default_rng(_sequence(seed, keys))


def worker_key() -> int:
    """The current DataLoader worker's seed (``torch`` gives each worker of each epoch its own, drawn from
    the DataLoader's generator), or 0 in the main process."""
    info = get_worker_info()
    return 0 if info is None else int(info.seed) + 1


class WorkerGenerator:
    """A ``torch.Generator`` for ``(seed, *keys)`` that re-seeds itself once in each DataLoader worker,
    so that workers draw different streams and a run with the same seeds repeats exactly."""

    def __init__(self, seed: int, *keys: Key) -> None:
        self.seed, self.keys = seed, keys
        self._generator: torch.Generator | None = None
        self._worker: int | None = None

    def get(self) -> torch.Generator:
        worker = worker_key()
        if self._generator is None or worker != self._worker:
            self._generator, self._worker = torch_generator(self.seed, *self.keys, worker), worker
        return self._generator

    def __getstate__(self) -> dict:
        return {"seed": self.seed, "keys": self.keys, "_generator": None, "_worker": None}
