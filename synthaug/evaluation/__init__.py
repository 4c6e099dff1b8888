"""Measuring synthetic data: the yardstick classifier, the :func:`evaluate` report and the
:func:`downstream` accuracy benchmark."""

from synthaug.classifier import ClassifierModule, SmallCNN, accuracy, predict, train_classifier
from synthaug.evaluation.harness import (
    Arm,
    DownstreamReport,
    classic_augmentation,
    downstream,
    keep_confident,
    mean_interval,
    standard_arms,
)
from synthaug.evaluation.report import EvaluationReport, evaluate, feature_metrics

__all__ = [
    "Arm",
    "ClassifierModule",
    "DownstreamReport",
    "EvaluationReport",
    "SmallCNN",
    "accuracy",
    "classic_augmentation",
    "downstream",
    "evaluate",
    "feature_metrics",
    "keep_confident",
    "mean_interval",
    "predict",
    "standard_arms",
    "train_classifier",
]
