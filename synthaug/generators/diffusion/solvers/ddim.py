"""DDIM (Song et al. 2021, https://arxiv.org/abs/2010.02502): deterministic with ``eta=0``, DDPM-like with ``eta=1``."""

from __future__ import annotations

from torch import Tensor

from synthaug.generators.base import Randomness, randn
from synthaug.generators.diffusion.schedule import NoiseSchedule
from synthaug.generators.diffusion.solvers.base import Solver


class DDIMSolver(Solver):
    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0) -> None:
        super().__init__(schedule)
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = eta

    def step(self, x0: Tensor, eps: Tensor, t: int, s: int, x: Tensor, generator: Randomness) -> Tensor:
        if s < 0:
            return x0
        bar_t = self.schedule.alpha_bar[t].item()
        bar_s = self.schedule.alpha_bar[s].item()
        noise_scale = self.eta * ((1 - bar_s) / (1 - bar_t) * (1 - bar_t / bar_s)) ** 0.5
        out = bar_s**0.5 * x0 + max(1 - bar_s - noise_scale**2, 0.0) ** 0.5 * eps
        if noise_scale > 0:
            out = out + noise_scale * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return out
