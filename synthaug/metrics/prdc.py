"""Precision/recall and density/coverage as torchmetrics ``Metric`` classes over :mod:`synthaug.metrics.functional.prdc`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from synthaug.metrics._base import StoredFeatureMetric
from synthaug.metrics.functional.prdc import density_coverage, precision_recall


class _KNNMetric(StoredFeatureMetric):
    higher_is_better = True

    def __init__(self, feature_extractor: nn.Module | None = None, *, k: int, chunk_size: int = 1024, **kwargs: Any) -> None:
        super().__init__(feature_extractor, **kwargs)
        self.k, self.chunk_size = k, chunk_size


class PrecisionRecall(_KNNMetric):
    """Improved precision and recall with ``k``-NN balls (default ``k=3``); ``compute`` returns both."""

    def __init__(self, feature_extractor: nn.Module | None = None, *, k: int = 3, **kwargs: Any) -> None:
        super().__init__(feature_extractor, k=k, **kwargs)

    def compute(self) -> tuple[Tensor, Tensor]:
        return precision_recall(*self._sets(), k=self.k, chunk_size=self.chunk_size)


class DensityCoverage(_KNNMetric):
    """Density and coverage with ``k``-NN balls (default ``k=5``); ``compute`` returns both."""

    def __init__(self, feature_extractor: nn.Module | None = None, *, k: int = 5, **kwargs: Any) -> None:
        super().__init__(feature_extractor, k=k, **kwargs)

    def compute(self) -> tuple[Tensor, Tensor]:
        return density_coverage(*self._sets(), k=self.k, chunk_size=self.chunk_size)
