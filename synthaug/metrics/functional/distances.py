"""Pairwise distances in row blocks, and k-nearest-neighbour radii: what the k-NN metrics share.

Distances are computed ``chunk_size`` rows at a time, so memory is ``chunk_size x N`` rather than
``N x N``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def blocked_distances(rows: Tensor, cols: Tensor, chunk_size: int, reduce: Callable[[Tensor, slice], None]) -> None:
    """Call ``reduce(distances, row_slice)`` for every block of rows of the ``rows x cols`` distance matrix."""
    for start in range(0, len(rows), chunk_size):
        rows_slice = slice(start, start + chunk_size)
        reduce(torch.cdist(rows[rows_slice], cols), rows_slice)


def knn_radii(features: Tensor, k: int | Sequence[int], *, chunk_size: int = 1024) -> Tensor:
    """Distance from each sample to its ``k``-th nearest other sample; for several ``k``, one row per ``k``
    from a single pass over the distances."""
    ks = [k] if isinstance(k, int) else list(k)
    radii = torch.empty(len(ks), len(features), dtype=features.dtype)

    def reduce(distances: Tensor, rows: slice) -> None:
        # max(k) + 1 smallest: the first is the sample itself at distance 0.
        nearest = distances.topk(max(ks) + 1, dim=1, largest=False).values
        radii[:, rows] = nearest[:, ks].T

    blocked_distances(features, features, chunk_size, reduce)
    return radii[0] if isinstance(k, int) else radii
