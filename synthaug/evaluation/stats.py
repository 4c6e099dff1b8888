"""The numbers a downstream run reports, and their intervals over seeds.

A run's test predictions are kept as a confusion matrix; accuracy, balanced accuracy, macro-F1,
per-class accuracy and the accuracy of a named group of classes all derive from it. Intervals are
Student's t intervals over seeds; differences between arms are paired by seed (same subset, same
initialisation, same batch order), which removes most of the seed-to-seed spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

#: the summary metrics of a run, in table order
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def confusion(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[list[int]]:
    """``matrix[true][predicted]`` counts."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes).tolist()


def scores(matrix: Sequence[Sequence[int]], groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, object]:
    """Accuracy, balanced accuracy, macro-F1, per-class accuracy (recall) and per-group accuracy from a confusion matrix.

    A group's accuracy is the share of its classes' test images classified correctly. Macro-F1 counts
    a class that is never predicted (and never right) as F1 = 0, as scikit-learn does.
    """
    m = np.asarray(matrix, dtype=np.float64)
    support, predicted, correct = m.sum(1), m.sum(0), np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, correct / support, np.nan)
        precision = np.where(predicted > 0, correct / predicted, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    out: dict[str, object] = {
        "accuracy": float(correct.sum() / m.sum()),
        "balanced_accuracy": float(np.mean(recall[present])),
        "macro_f1": float(np.mean(f1[present])),
        "per_class": [float(v) for v in recall],
    }
    for name, classes in (groups or {}).items():
        rows = m[list(classes)]
        out[f"group:{name}"] = float(np.trace(rows[:, list(classes)]) / rows.sum()) if rows.sum() else math.nan
    return out


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t interval for the mean of ``values`` (NaN bounds for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half
