"""Improved precision and recall (Kynkäänniemi et al. 2019, https://arxiv.org/abs/1904.06991) and
density and coverage (Naeem et al. 2020, https://arxiv.org/abs/2002.09797) from k-NN balls.

Distances are computed in row blocks, so memory is ``chunk_size x N`` instead of the three
``N x N`` matrices of the reference implementation, in float32 with an exact float64 recheck of
every comparison that rounding could decide (see :mod:`~synthaug.metrics.functional.distances`).
A sample lies in a ball when its distance is ``<=`` the radius, so identical sets have precision,
recall and coverage 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthaug.metrics.functional.distances import Blocks, knn_radii, within


def _check(real: Tensor, fake: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if real.ndim != 2 or fake.ndim != 2:
        raise ValueError(f"features must be (N, d), got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real {real.shape[1]}, synthetic {fake.shape[1]}")
    if k < 1 or min(len(real), len(fake)) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples per set, got {len(real)} and {len(fake)}")
    return real.detach().double(), fake.detach().double()


def prdc(
    real: Tensor, fake: Tensor, *, k_precision_recall: int = 3, k_density_coverage: int = 5, chunk_size: int = 1024
) -> dict[str, Tensor]:
    """Precision, recall, density and coverage from one pass over each block of distances.

    Precision: share of synthetic samples inside some real k-NN ball; recall: share of real samples
    inside some synthetic k-NN ball (both with ``k_precision_recall``). Density: real k-NN balls
    containing each synthetic sample, averaged and divided by ``k``; coverage: share of real
    samples whose k-NN ball contains a synthetic sample (both with ``k_density_coverage``).
    """
    k_pr, k_dc = k_precision_recall, k_density_coverage
    real, fake = _check(real, fake, max(k_pr, k_dc))
    real_pr, real_dc = knn_radii(real, [k_pr, k_dc], chunk_size=chunk_size)
    fake_pr = knn_radii(fake, k_pr, chunk_size=chunk_size)
    fake_in_real_ball = torch.zeros(len(fake), dtype=torch.bool)
    real_in_fake_ball = torch.zeros(len(real), dtype=torch.bool)
    balls_per_fake = torch.zeros(len(fake), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    blocks = Blocks(real, fake, chunk_size)
    for rows, d2, tol in blocks:  # float32 squared distances: (real block, all fake)
        fake_in_real_ball.logical_or_(within(blocks, rows, d2, tol, real_pr[rows, None]).any(0))
        real_in_fake_ball[rows] = within(blocks, rows, d2, tol, fake_pr[None, :]).any(1)
        inside = within(blocks, rows, d2, tol, real_dc[rows, None])
        balls_per_fake.add_(inside.sum(0))
        covered[rows] = inside.any(1)
    return {
        "precision": fake_in_real_ball.double().mean(),
        "recall": real_in_fake_ball.double().mean(),
        "density": balls_per_fake.mean() / k_dc,
        "coverage": covered.double().mean(),
    }


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Improved precision and recall with ``k``-NN balls (see :func:`prdc`)."""
    values = prdc(real, fake, k_precision_recall=k, k_density_coverage=k, chunk_size=chunk_size)
    return values["precision"], values["recall"]


def density_coverage(real: Tensor, fake: Tensor, *, k: int = 5, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Density and coverage with ``k``-NN balls (see :func:`prdc`)."""
    values = prdc(real, fake, k_precision_recall=k, k_density_coverage=k, chunk_size=chunk_size)
    return values["density"], values["coverage"]
