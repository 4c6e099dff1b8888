"""KID as a torchmetrics ``Metric`` over :func:`synthaug.metrics.functional.kid`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from synthaug.metrics._base import StoredFeatureMetric
from synthaug.metrics.functional.kid import kid


class KID(StoredFeatureMetric):
    """Kernel distance between real and synthetic features; ``compute`` returns ``(mean, std)``.

    KID needs the features themselves (subsets are drawn at ``compute``, from ``seed``).
    """

    higher_is_better = False

    def __init__(
        self,
        feature_extractor: nn.Module | None = None,
        *,
        subsets: int = 100,
        subset_size: int = 1000,
        degree: int = 3,
        gamma: float | None = None,
        coef: float = 1.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature_extractor, **kwargs)
        self.options = {"subsets": subsets, "subset_size": subset_size, "degree": degree, "gamma": gamma, "coef": coef, "seed": seed}

    def compute(self) -> tuple[Tensor, Tensor]:
        return kid(*self._sets(), **self.options)
