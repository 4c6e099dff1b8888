"""FID as a torchmetrics ``Metric`` over the functional core in :mod:`synthaug.metrics.functional.fid`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from synthaug.metrics._base import FeatureMetric
from synthaug.metrics.functional.fid import _fid_compute, _fid_update


class FID(FeatureMetric):
    """Fréchet distance between real and synthetic features; state is float64 sufficient statistics
    (fixed memory, summed across processes).

    Example:
        >>> metric = FID(num_features=64)
        >>> metric.update(real_features, real=True)  # doctest: +SKIP
        >>> metric.update(fake_features, real=False)  # doctest: +SKIP
        >>> metric.compute()  # doctest: +SKIP
    """

    higher_is_better = False

    def __init__(self, num_features: int, feature_extractor: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(feature_extractor, **kwargs)
        self.num_features = num_features
        for prefix in ("real", "fake"):
            self.add_state(f"{prefix}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{prefix}_outer", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{prefix}_n", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, x: Tensor, real: bool) -> None:
        features = self._features(x)
        if features.shape[1] != self.num_features:
            raise ValueError(f"features have dimension {features.shape[1]}, the metric was built for {self.num_features}")
        total, outer, n = _fid_update(features)
        prefix = "real" if real else "fake"
        setattr(self, f"{prefix}_sum", getattr(self, f"{prefix}_sum") + total)
        setattr(self, f"{prefix}_outer", getattr(self, f"{prefix}_outer") + outer)
        setattr(self, f"{prefix}_n", getattr(self, f"{prefix}_n") + n)

    def compute(self) -> Tensor:
        return _fid_compute(self.real_sum, self.real_outer, self.real_n, self.fake_sum, self.fake_outer, self.fake_n)
