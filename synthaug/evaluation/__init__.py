"""Measuring synthetic data: the yardstick classifier (metrics and the downstream benchmark build on it)."""

from synthaug.evaluation.classifier import ClassifierModule, SmallCNN, accuracy, train_classifier

__all__ = ["ClassifierModule", "SmallCNN", "accuracy", "train_classifier"]
