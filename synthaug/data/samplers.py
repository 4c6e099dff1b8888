"""Seeded, epoch-aware index samplers that shard by rank, shared by training and SyntheticAugment."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from synthaug.seeding import torch_generator


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation drawn from ``(seed, epoch)`` (or keeps the order) and keeps this rank's share.

    Like ``DistributedSampler`` (pads by wrapping around so every rank gets the same count), plus
    ``resume_from(epoch, skip)``: the next pass over ``epoch`` leaves out the first ``skip`` indices.
    """

    def __init__(self, size: int, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if size < 1:
            raise ValueError(f"cannot sample from an empty dataset (size {size})")
        self.size, self.seed, self.rank, self.world_size, self.shuffle = size, seed, rank, world_size, shuffle
        self.num_samples = -(-size // world_size)  # ceil
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_from(self, epoch: int, skip: int) -> None:
        self.epoch, self._resume = epoch, (epoch, skip)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch_generator(self.seed, self.epoch))
        else:
            order = torch.arange(self.size)
        padded = order.repeat(-(-self.num_samples * self.world_size // self.size))[: self.num_samples * self.world_size]
        mine = padded[self.rank :: self.world_size]
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if epoch == self.epoch:
                mine = mine[skip:]
        return iter(mine.tolist())


class EpochTaggedSampler(EpochShuffleSampler):
    """Yields ``(epoch, index)`` pairs, so a dataset learns the epoch even inside persistent workers.

    :class:`~synthaug.augment.SyntheticAugment` accepts such pairs as indices; get one from its
    :meth:`~synthaug.augment.SyntheticAugment.sampler` method.
    """

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, i) for i in super().__iter__())
