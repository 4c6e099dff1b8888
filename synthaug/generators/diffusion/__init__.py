"""Diffusion parts kept apart, diffusers style: the noise schedule, the UNet, and one file per solver."""

import warnings

from synthaug.generators.diffusion.schedule import NoiseSchedule
from synthaug.generators.diffusion.solvers import SOLVERS, Solver
from synthaug.generators.diffusion.unet import ConditionalUNet

__all__ = ["SOLVERS", "ConditionalUNet", "NoiseSchedule", "Solver"]

_RENAMED = {"SAMPLERS": "SOLVERS", "Sampler": "Solver"}


def __getattr__(name: str):  # the names before 0.2, kept for one release
    if name in _RENAMED:
        warnings.warn(f"synthaug.generators.diffusion.{name} is deprecated; use {_RENAMED[name]}", FutureWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
