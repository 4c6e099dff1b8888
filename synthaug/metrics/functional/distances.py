"""Pairwise distances in row blocks, and k-nearest-neighbour radii: what the k-NN metrics share.

Distances are computed ``chunk_size`` rows at a time, so memory is ``chunk_size x N`` rather than
``N x N``. The k-NN metrics need exact comparisons (is this sample inside that ball?), but the bulk
of the work can run in float32: squared distances come from a float32 matrix product, which is
several times faster than float64 on a CPU, and every decision that float32 rounding could flip
(a distance within the worst-case rounding bound of the radius it is compared with, or a neighbour
that could swap ranks with the k-th) is recomputed exactly in float64. The results equal a float64
computation's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

#: float32 unit roundoff: a length-d dot product is off by at most d * UNIT * |x| |y| (worst case, any summation order)
UNIT = 2.0**-24
#: extra neighbours kept as candidates beyond the k-th, before the exact recheck
MARGIN = 8


def blocked_distances(rows: Tensor, cols: Tensor, chunk_size: int, reduce: Callable[[Tensor, slice], None]) -> None:
    """Call ``reduce(distances, row_slice)`` for every block of rows of the exact ``rows x cols`` distance matrix."""
    for start in range(0, len(rows), chunk_size):
        rows_slice = slice(start, start + chunk_size)
        reduce(torch.cdist(rows[rows_slice], cols), rows_slice)


class Blocks:
    """Float32 squared distances between ``rows`` and ``cols`` (float64 features), a block of rows at a time,
    with the exact float64 values on demand."""

    def __init__(self, rows: Tensor, cols: Tensor, chunk_size: int) -> None:
        self.rows, self.cols, self.chunk_size = rows, cols, chunk_size
        self.rows32, self.cols32 = rows.float(), cols.float()
        self.row_norms, self.col_norms = rows.square().sum(1), cols.square().sum(1)  # float64
        # |x|^2 + |y|^2 - 2 x.y: the product's worst-case error, d * UNIT * |x| |y| <= d * UNIT * (|x|^2 + |y|^2) / 2,
        # plus the norms' and the sum's own rounding; doubled for safety
        self.tolerance = 2 * (rows.shape[1] + 4) * UNIT
    def __iter__(self):
        row_norms32, col_norms32 = self.row_norms.float(), self.col_norms.float()
        for start in range(0, len(self.rows), self.chunk_size):
            block = slice(start, start + self.chunk_size)
            base = row_norms32[block][:, None] + col_norms32[None, :]
            d2 = base.addmm(self.rows32[block], self.cols32.T, alpha=-2)
            yield block, d2, base.mul_(self.tolerance).add_(1e-30)  # (B, N) float32 estimate, (B, N) bound on its error

    def exact(self, row_index: Tensor, col_index: Tensor) -> Tensor:
        """Exact float64 squared distances between ``rows[row_index]`` and ``cols[col_index]`` (matching shapes)."""
        return (self.rows[row_index] - self.cols[col_index]).square().sum(-1)


def within(blocks: Blocks, block: slice, d2: Tensor, tol: Tensor, radii: Tensor) -> Tensor:
    """``exact distance <= radii`` for one block (``radii`` broadcasts against ``(B, N)``), decided in float32
    where rounding cannot change the answer and recomputed exactly where it could."""
    radii2 = radii.square().float()  # float32 rounding (~1e-7 relative) is far inside the tolerance band
    inside = d2 <= radii2
    unsure = (d2 - radii2).abs() <= tol
    if unsure.any():
        r, c = unsure.nonzero(as_tuple=True)
        # Distances, not squares, as the radii are: a duplicate of a ball's k-th neighbour then lies exactly on it.
        inside[r, c] = blocks.exact(r + block.start, c).sqrt() <= radii.expand_as(unsure)[r, c]
    return inside


def knn_radii(features: Tensor, k: int | Sequence[int], *, chunk_size: int = 1024) -> Tensor:
    """Distance from each sample to its ``k``-th nearest other sample; for several ``k``, one row per ``k``
    from a single pass over the distances. Exact (float64) whatever the float32 shortcut."""
    ks = [k] if isinstance(k, int) else list(k)
    features = features.double()
    n = len(features)
    count = min(max(ks) + 1 + MARGIN, n)
    radii = torch.empty(len(ks), n, dtype=torch.float64)
    blocks = Blocks(features, features, chunk_size)
    for block, d2, tol in blocks:
        candidates = d2.topk(count, dim=1, largest=False)  # float32 estimate: the nearest, the sample itself first
        rows = torch.arange(block.start, block.start + len(d2))[:, None].expand_as(candidates.indices)
        exact, order = blocks.exact(rows, candidates.indices).sort(dim=1)
        # Any sample outside the candidates lies at least (last candidate's estimate - tolerance) away.
        last = candidates.values[:, -1].double() - tol.max(1).values.double()
        safe = (exact[:, max(ks)] <= last) | (count == n)
        for bad in (~safe).nonzero().flatten().tolist():  # rare: recompute the whole row exactly
            row = block.start + bad
            exact[bad] = (features[row] - features).square().sum(1).sort().values[:count]
        radii[:, block] = exact[:, ks].T.sqrt()
    return radii[0] if isinstance(k, int) else radii
