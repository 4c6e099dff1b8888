"""Memorization: how much closer a synthetic sample is to its nearest training image than training
images are to each other.

For a synthetic sample ``s`` with nearest training image ``x``, the ratio is
``d(s, x) / d(x, nearest other training image)``. A ratio well below 1 (default threshold 1/3)
means ``s`` is a near-copy of ``x``: no other real image comes anywhere as close to ``x``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthaug.metrics.functional.distances import blocked_distances, knn_radii

NEAR_COPY_THRESHOLD = 1.0 / 3.0


def memorization_ratios(train: Tensor, synthetic: Tensor, *, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Per synthetic sample: the ratio above and the index of its nearest training sample."""
    if train.ndim != 2 or synthetic.ndim != 2 or train.shape[1] != synthetic.shape[1]:
        raise ValueError(f"features must be (N, d) with the same d, got {tuple(train.shape)} and {tuple(synthetic.shape)}")
    if len(train) < 2:
        raise ValueError(f"memorization needs at least 2 training samples, got {len(train)}")
    train, synthetic = train.detach().double(), synthetic.detach().double()
    spacing = knn_radii(train, 1, chunk_size=chunk_size)
    nearest = torch.empty(len(synthetic), dtype=torch.int64)
    distance = torch.empty(len(synthetic), dtype=torch.float64)

    def reduce(distances: Tensor, rows: slice) -> None:  # (synthetic block, all train)
        distance[rows], nearest[rows] = distances.min(1)

    blocked_distances(synthetic, train, chunk_size, reduce)
    # Duplicate training images have spacing 0: an exact copy of one still gets ratio 0.
    ratios = distance / spacing[nearest].clamp(min=torch.finfo(torch.float64).tiny)
    return ratios, nearest


def near_copy_share(ratios: Tensor, threshold: float = NEAR_COPY_THRESHOLD) -> Tensor:
    """Share of synthetic samples whose memorization ratio is below ``threshold``."""
    return (ratios < threshold).double().mean()
