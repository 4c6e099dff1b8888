"""Ancestral sampling from the DDPM posterior q(x_s | x_t, x0) (Ho et al. 2020, https://arxiv.org/abs/2006.11239)."""

from __future__ import annotations

from torch import Tensor

from synthaug.generators.base import Randomness, randn
from synthaug.generators.diffusion.solvers.base import Solver


class DDPMSolver(Solver):
    """Stochastic; needs many steps (hundreds) for good samples, with skipped steps it uses the
    posterior between the two timesteps it visits."""

    def step(self, x0: Tensor, eps: Tensor, t: int, s: int, x: Tensor, generator: Randomness) -> Tensor:
        if s < 0:
            return x0
        bar_t = self.schedule.alpha_bar[t].item()
        bar_s = self.schedule.alpha_bar[s].item()
        alpha_ts = bar_t / bar_s
        beta_ts = 1 - alpha_ts
        mean = (bar_s**0.5 * beta_ts / (1 - bar_t)) * x0 + (alpha_ts**0.5 * (1 - bar_s) / (1 - bar_t)) * x
        variance = beta_ts * (1 - bar_s) / (1 - bar_t)
        return mean + variance**0.5 * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
