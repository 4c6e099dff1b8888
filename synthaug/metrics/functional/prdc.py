"""Improved precision and recall (Kynkäänniemi et al. 2019, https://arxiv.org/abs/1904.06991) and
density and coverage (Naeem et al. 2020, https://arxiv.org/abs/2002.09797) from k-NN balls.

Distances are computed in row blocks, so memory is ``chunk_size x N`` instead of the three
``N x N`` matrices of the reference implementation. A sample lies in a ball when its distance is
``<=`` the radius, so identical sets have precision, recall and coverage 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _check(real: Tensor, fake: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if real.ndim != 2 or fake.ndim != 2:
        raise ValueError(f"features must be (N, d), got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real {real.shape[1]}, synthetic {fake.shape[1]}")
    if k < 1 or min(len(real), len(fake)) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples per set, got {len(real)} and {len(fake)}")
    return real.detach().double(), fake.detach().double()


def _blocks(rows: Tensor, cols: Tensor, chunk_size: int, reduce: Callable[[Tensor, slice], None]) -> None:
    """Call ``reduce(distances, row_slice)`` for every block of rows of the ``rows x cols`` distance matrix."""
    for start in range(0, len(rows), chunk_size):
        rows_slice = slice(start, start + chunk_size)
        reduce(torch.cdist(rows[rows_slice], cols), rows_slice)


def knn_radii(features: Tensor, k: int, *, chunk_size: int = 1024) -> Tensor:
    """Distance from each sample to its ``k``-th nearest other sample."""
    radii = torch.empty(len(features), dtype=features.dtype)

    def reduce(distances: Tensor, rows: slice) -> None:
        # k + 1 smallest: the first is the sample itself at distance 0.
        radii[rows] = distances.topk(k + 1, dim=1, largest=False).values[:, k]

    _blocks(features, features, chunk_size, reduce)
    return radii


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Share of synthetic samples inside some real k-NN ball (precision), and of real samples inside
    some synthetic k-NN ball (recall)."""
    real, fake = _check(real, fake, k)
    real_radii, fake_radii = knn_radii(real, k, chunk_size=chunk_size), knn_radii(fake, k, chunk_size=chunk_size)
    fake_covered = torch.zeros(len(fake), dtype=torch.bool)
    real_covered = torch.zeros(len(real), dtype=torch.bool)

    def reduce(distances: Tensor, rows: slice) -> None:  # distances: (real block, all fake)
        fake_covered.logical_or_((distances <= real_radii[rows, None]).any(0))
        real_covered[rows] = (distances <= fake_radii[None, :]).any(1)

    _blocks(real, fake, chunk_size, reduce)
    return fake_covered.double().mean(), real_covered.double().mean()


def density_coverage(real: Tensor, fake: Tensor, *, k: int = 5, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Density: real k-NN balls containing each synthetic sample, averaged and divided by ``k``.
    Coverage: share of real samples whose k-NN ball contains at least one synthetic sample."""
    real, fake = _check(real, fake, k)
    real_radii = knn_radii(real, k, chunk_size=chunk_size)
    balls_per_fake = torch.zeros(len(fake), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)

    def reduce(distances: Tensor, rows: slice) -> None:  # distances: (real block, all fake)
        inside = distances <= real_radii[rows, None]
        balls_per_fake.add_(inside.sum(0))
        covered[rows] = inside.any(1)

    _blocks(real, fake, chunk_size, reduce)
    return balls_per_fake.mean() / k, covered.double().mean()
