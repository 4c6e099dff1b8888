"""Measuring synthetic data: the :func:`evaluate` report (fidelity, diversity, CAS, memorization) and
the :func:`downstream` accuracy benchmark with its arms, statistics and report."""

from synthaug.classifier import ClassifierModule, SmallCNN, SmallResNet, accuracy, predict, train_classifier
from synthaug.curation import filter_samples, keep_confident
from synthaug.evaluation.arms import (
    Arm,
    baseline_arms,
    long_tail_arms,
    long_tail_baselines,
    mixed_arm,
    policy_arm,
    real_copies,
    resolve_source,
    standard_arms,
    synthetic_arms,
    technique_arms,
)
from synthaug.evaluation.classic import classic_augmentation
from synthaug.evaluation.downstream_report import DownstreamReport
from synthaug.evaluation.report import EvaluationReport, evaluate, feature_metrics
from synthaug.evaluation.runner import downstream, rarest, stratified
from synthaug.evaluation.stats import mean_interval, scores

__all__ = [
    "Arm",
    "ClassifierModule",
    "DownstreamReport",
    "EvaluationReport",
    "SmallCNN",
    "SmallResNet",
    "accuracy",
    "baseline_arms",
    "classic_augmentation",
    "downstream",
    "evaluate",
    "feature_metrics",
    "filter_samples",
    "keep_confident",
    "long_tail_arms",
    "long_tail_baselines",
    "mean_interval",
    "mixed_arm",
    "policy_arm",
    "predict",
    "rarest",
    "real_copies",
    "resolve_source",
    "scores",
    "standard_arms",
    "stratified",
    "synthetic_arms",
    "technique_arms",
    "train_classifier",
]
