"""DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE in data-prediction form
(Lu et al. 2022, https://arxiv.org/abs/2211.01095, Algorithm 2). Good samples in 10-20 steps."""

from __future__ import annotations

import math

from torch import Tensor

from synthaug.generators.base import Randomness
from synthaug.generators.diffusion.schedule import NoiseSchedule
from synthaug.generators.diffusion.solvers.base import Solver


class DPMSolverPP2M(Solver):
    # Even steps in lambda: with the cosine schedule, even steps in t leave one huge first step in
    # lambda, and the 10-step error on a Gaussian with known answer drops from 29% to 1.3%.
    spacing = "logsnr"

    def __init__(self, schedule: NoiseSchedule) -> None:
        super().__init__(schedule)
        self._previous: tuple[Tensor, float] | None = None  # (x0 estimate, lambda) at the previous timestep

    def step(self, x0: Tensor, eps: Tensor, t: int, s: int, x: Tensor, generator: Randomness) -> Tensor:
        if s < 0:  # the last step lands on the clean image: first order there is the x0 estimate itself
            self._previous = None
            return x0
        alpha_t, sigma_t = self._alpha_sigma(t, x.device)
        alpha_s, sigma_s = self._alpha_sigma(s, x.device)
        lambda_t, lambda_s = math.log(alpha_t / sigma_t), math.log(alpha_s / sigma_s)
        h = lambda_s - lambda_t
        estimate = x0
        if self._previous is not None:  # second order: extrapolate the x0 estimates linearly in lambda
            x0_previous, lambda_previous = self._previous
            r = (lambda_t - lambda_previous) / h
            estimate = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_previous
        self._previous = (x0, lambda_t)
        return (sigma_s / sigma_t) * x - alpha_s * math.expm1(-h) * estimate
