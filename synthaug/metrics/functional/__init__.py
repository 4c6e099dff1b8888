"""Pure-function metrics on feature matrices; the modular classes in :mod:`synthaug.metrics` call these."""

from synthaug.metrics.functional.distances import knn_radii
from synthaug.metrics.functional.fid import fid
from synthaug.metrics.functional.kid import kid
from synthaug.metrics.functional.memorization import NEAR_COPY_THRESHOLD, memorization_ratios, near_copy_share
from synthaug.metrics.functional.prdc import density_coverage, prdc, precision_recall

__all__ = [
    "NEAR_COPY_THRESHOLD",
    "density_coverage",
    "fid",
    "kid",
    "knn_radii",
    "memorization_ratios",
    "near_copy_share",
    "prdc",
    "precision_recall",
]
