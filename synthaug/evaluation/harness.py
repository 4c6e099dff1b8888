"""Deprecated module: the downstream harness is now split by job (:mod:`~synthaug.evaluation.arms`,
:mod:`~synthaug.evaluation.classic`, :mod:`~synthaug.evaluation.stats`,
:mod:`~synthaug.evaluation.downstream_report`, :mod:`~synthaug.evaluation.runner`); import from
:mod:`synthaug.evaluation`. The names below still work for one release."""

import warnings

from synthaug.classifier import predict, train_classifier
from synthaug.curation import keep_confident
from synthaug.evaluation.arms import Arm, ArmSource, standard_arms
from synthaug.evaluation.classic import classic_augmentation
from synthaug.evaluation.downstream_report import DownstreamReport
from synthaug.evaluation.runner import downstream
from synthaug.evaluation.stats import mean_interval

warnings.warn(
    "synthaug.evaluation.harness is deprecated and will be removed in synthaug 0.3; import from synthaug.evaluation",
    FutureWarning,
    stacklevel=2,
)

__all__ = ["Arm", "ArmSource", "DownstreamReport", "classic_augmentation", "downstream", "keep_confident",
           "mean_interval", "predict", "standard_arms", "train_classifier"]  # fmt: skip
