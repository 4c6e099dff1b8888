"""Losses of the yardstick classifier, usable in any training loop.

* :func:`cross_entropy` reads every target synthaug produces: class indices, ``(B, K)``
  probabilities (teacher labels, mixup), per-item weights (``synthetic_weight``), per-class weights
  (re-weighting) and a logit adjustment.
* :func:`logit_adjustment` (Menon et al. 2021, https://arxiv.org/abs/2007.07314): add
  ``tau * log(prior)`` to the logits during training only, so that the argmax of the raw logits
  at test time targets balanced error.
* :func:`class_balanced_weights` (Cui et al. 2019, https://arxiv.org/abs/1901.05555): weights
  proportional to ``(1 - beta) / (1 - beta ** n_c)``, the inverse "effective number" of a class's
  samples. Switched on late in training they are deferred re-weighting (DRW, Cao et al. 2019,
  https://arxiv.org/abs/1906.07413).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    class_weights: Tensor | None = None,
    adjustment: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Mean cross-entropy over a batch.

    Args:
        logits: ``(B, K)``.
        target: ``(B,)`` class indices or ``(B, K)`` probabilities.
        weight: ``(B,)`` per-item loss weights (1 for a plain item); the mean is still over ``B``, so an
            item of weight 1 counts as much as without weights.
        class_weights: ``(K,)`` per-class weights; the mean is then normalised by the items' class
            weights, as ``F.cross_entropy(weight=...)`` does.
        adjustment: ``(K,)`` added to the logits before the loss (see :func:`logit_adjustment`).
        label_smoothing: as in ``F.cross_entropy``.
    """
    if adjustment is not None:
        logits = logits + adjustment.to(logits)
    per_item = F.cross_entropy(logits, target, weight=class_weights, reduction="none", label_smoothing=label_smoothing)
    if weight is not None:
        per_item = per_item * weight.to(per_item)
    if class_weights is None:
        return per_item.mean()
    class_weights = class_weights.to(logits)
    norm = class_weights[target].sum() if not target.is_floating_point() else (target @ class_weights).sum()
    return per_item.sum() / norm.clamp(min=torch.finfo(per_item.dtype).tiny)


def _counts(class_counts: Sequence[int] | Tensor) -> Tensor:
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.ndim != 1 or (counts <= 0).any():
        raise ValueError(f"class_counts must be positive, one per class, got {counts.tolist()}")
    return counts


def logit_adjustment(class_counts: Sequence[int] | Tensor, tau: float = 1.0) -> Tensor:
    """``tau * log(prior)`` per class, from the training set's class counts."""
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    counts = _counts(class_counts)
    return (tau * torch.log(counts / counts.sum())).float()


def class_balanced_weights(class_counts: Sequence[int] | Tensor, beta: float = 0.9999) -> Tensor:
    """Per-class weights ``(1 - beta) / (1 - beta ** n_c)``, scaled to average 1."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")
    counts = _counts(class_counts)
    weights = (1 - beta) / (1 - beta**counts)
    return (weights / weights.mean()).float()
