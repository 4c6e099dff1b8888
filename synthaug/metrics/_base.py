"""What the modular metrics share: an optional feature extractor in front of ``update``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class FeatureMetric(Metric):
    """A torchmetrics ``Metric`` fed with ``update(x, real=True | False)``.

    ``x`` is a ``(N, d)`` feature matrix, or images when a ``feature_extractor`` is given (any
    module mapping images to ``(N, d)``). The extractor is frozen and kept out of the metric's state.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, feature_extractor: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Stored outside nn.Module registration: not part of state_dict, not moved by .to().
        object.__setattr__(self, "_extractor", feature_extractor.eval().requires_grad_(False) if feature_extractor else None)

    def _features(self, x: Tensor) -> Tensor:
        if self._extractor is not None:
            with torch.no_grad():
                x = self._extractor(x)
        if x.ndim != 2:
            raise ValueError(
                f"expected (N, d) features, got shape {tuple(x.shape)}; pass images with feature_extractor= set"
            )
        return x.detach()


class StoredFeatureMetric(FeatureMetric):
    """A metric that needs the features themselves (k-NN balls, kernel subsets): it keeps both sets,
    concatenated across processes."""

    def __init__(self, feature_extractor: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(feature_extractor, **kwargs)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, x: Tensor, real: bool) -> None:
        (self.real_features if real else self.fake_features).append(self._features(x).double())

    def _sets(self) -> tuple[Tensor, Tensor]:
        return dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)
