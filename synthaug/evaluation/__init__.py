"""Measuring synthetic data: the yardstick classifier and the :func:`evaluate` report."""

from synthaug.classifier import ClassifierModule, SmallCNN, accuracy, train_classifier
from synthaug.evaluation.report import EvaluationReport, evaluate, feature_metrics

__all__ = ["ClassifierModule", "EvaluationReport", "SmallCNN", "accuracy", "evaluate", "feature_metrics", "train_classifier"]
