"""Fidelity, diversity and memorization metrics: pure functions in :mod:`synthaug.metrics.functional`,
torchmetrics ``Metric`` classes here, and the feature extractors they run on."""

from synthaug.metrics.features import FeatureExtractor, domain_classifier
from synthaug.metrics.fid import FID
from synthaug.metrics.kid import KID
from synthaug.metrics.prdc import DensityCoverage, PrecisionRecall

__all__ = ["FID", "KID", "DensityCoverage", "FeatureExtractor", "PrecisionRecall", "domain_classifier"]
