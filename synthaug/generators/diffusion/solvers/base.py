"""The interface of a diffusion solver: turn a sequence of network estimates into a denoised image."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from synthaug.generators.base import Randomness
from synthaug.generators.diffusion.schedule import NoiseSchedule


class Solver(ABC):
    """Steps from timestep ``t`` to the next, smaller one ``s`` (``-1``: the clean image).

    The pipeline calls :meth:`step` once per timestep with the network's clean-image and noise
    estimates at ``x_t``; a sampler keeps whatever history it needs (multistep solvers) itself, so
    each sampling run uses a new sampler.
    """

    #: how the sampling timesteps are spaced (see :meth:`NoiseSchedule.spaced`)
    spacing: str = "linear"

    def __init__(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule

    @abstractmethod
    def step(self, x0: Tensor, eps: Tensor, t: int, s: int, x: Tensor, generator: Randomness) -> Tensor:
        """``x_s`` from ``x_t`` and the estimates ``x0`` and ``eps`` at ``t``."""

    def _alpha_sigma(self, t: int, device: torch.device) -> tuple[float, float]:
        alpha, sigma = self.schedule.alpha_sigma(torch.tensor([t], device=device))
        return float(alpha), float(sigma)
