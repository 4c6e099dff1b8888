"""Deprecated module: the index samplers moved to :mod:`synthaug.data.samplers` (diffusion solvers and
index samplers no longer share a module name). Importing from here still works and warns."""

import warnings

from synthaug.data.samplers import EpochShuffleSampler, EpochTaggedSampler

warnings.warn(
    "synthaug.sampling is deprecated and will be removed in synthaug 0.3; import from synthaug.data.samplers",
    FutureWarning,
    stacklevel=2,
)

__all__ = ["EpochShuffleSampler", "EpochTaggedSampler"]
