"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, https://arxiv.org/abs/1706.08500).

State is sufficient statistics in float64: the count, the sum and the sum of outer products, so
memory is fixed, updates stream, and states from several processes merge by addition.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def _fid_update(features: Tensor) -> tuple[Tensor, Tensor, int]:
    """``(sum, sum of outer products, count)`` of ``(N, d)`` features, in float64."""
    if features.ndim != 2:
        raise ValueError(f"features must be (N, d), got shape {tuple(features.shape)}")
    x = features.detach().to(torch.float64)
    return x.sum(0), x.T @ x, x.shape[0]


def _mean_cov(total: Tensor, outer: Tensor, n: int | Tensor) -> tuple[Tensor, Tensor]:
    n = int(n)
    mean = total / n
    cov = (outer - n * torch.outer(mean, mean)) / (n - 1)
    return mean, cov


def _fid_compute(
    real_sum: Tensor, real_outer: Tensor, real_n: int | Tensor, fake_sum: Tensor, fake_outer: Tensor, fake_n: int | Tensor
) -> Tensor:
    """FID from the two sets' sufficient statistics (a float64 scalar)."""
    for name, n in (("real", int(real_n)), ("synthetic", int(fake_n))):
        if n < 2:
            raise ValueError(f"FID needs at least 2 {name} samples, got {n}")
    d = real_sum.shape[0]
    if fake_sum.shape[0] != d:
        raise ValueError(f"feature dimensions differ: real {d}, synthetic {fake_sum.shape[0]}")
    if min(int(real_n), int(fake_n)) < d:
        warnings.warn(
            f"FID with fewer samples ({min(int(real_n), int(fake_n))}) than feature dimensions ({d}): the covariance "
            "estimates are singular and the value is biased upwards; compare it only with FIDs of the same sizes",
            stacklevel=3,
        )
    mu1, sigma1 = _mean_cov(real_sum, real_outer, real_n)
    mu2, sigma2 = _mean_cov(fake_sum, fake_outer, fake_n)
    # tr(sqrt(S1 S2)) is the sum of the square roots of the eigenvalues of S1 S2, which are real and
    # non-negative in exact arithmetic; tiny negative or imaginary parts are rounding.
    eigenvalues = torch.linalg.eigvals(sigma1 @ sigma2).real.clamp(min=0)
    return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eigenvalues.sqrt().sum()


def fid(real: Tensor, fake: Tensor) -> Tensor:
    """FID between ``(N, d)`` real and ``(M, d)`` synthetic features.

    Example:
        >>> x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
        >>> float(fid(x, x)) < 1e-8
        True
    """
    return _fid_compute(*_fid_update(real), *_fid_update(fake))
