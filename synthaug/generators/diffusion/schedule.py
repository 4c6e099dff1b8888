"""The noise schedule: how much signal survives at each of ``T`` discrete timesteps.

Cosine schedule of Nichol & Dhariwal 2021 (https://arxiv.org/abs/2102.09672):
``alpha_bar(t) = f(t) / f(0)`` with ``f(t) = cos(((t / T) + s) / (1 + s) * pi / 2) ** 2``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Prediction = Literal["epsilon", "v"]


class NoiseSchedule:
    """``alpha_bar[t]`` for ``t = 0 .. T-1`` and the conversions every sampler needs.

    A noisy image is ``x_t = alpha_t * x0 + sigma_t * eps`` with ``alpha_t = sqrt(alpha_bar[t])``
    and ``sigma_t = sqrt(1 - alpha_bar[t])``.
    """

    def __init__(self, timesteps: int = 1000, offset: float = 0.008) -> None:
        if timesteps < 2:
            raise ValueError(f"timesteps must be >= 2, got {timesteps}")
        self.timesteps = timesteps
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)  # clipped as in the paper, so the last step stays finite
        self.alpha_bar = torch.cumprod(1 - betas, 0)  # (T,) float64

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``alpha_t`` and ``sigma_t`` for integer timesteps ``t`` (``-1`` means the clean image)."""
        bar = torch.where(t >= 0, self.alpha_bar.to(t.device)[t.clamp(min=0)], torch.ones((), dtype=torch.float64, device=t.device))
        return bar.sqrt(), (1 - bar).sqrt()

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = (v.to(x0.dtype).view(-1, 1, 1, 1) for v in self.alpha_sigma(t))
        return alpha * x0 + sigma * noise

    def target(self, x0: Tensor, noise: Tensor, t: Tensor, prediction: Prediction) -> Tensor:
        """What the network learns to output: the noise, or ``v = alpha_t * eps - sigma_t * x0`` (Salimans & Ho 2022)."""
        if prediction == "epsilon":
            return noise
        alpha, sigma = (v.to(x0.dtype).view(-1, 1, 1, 1) for v in self.alpha_sigma(t))
        return alpha * noise - sigma * x0

    def to_x0_eps(
        self, output: Tensor, x: Tensor, t: Tensor, prediction: Prediction, *, clip: bool = False
    ) -> tuple[Tensor, Tensor]:
        """The clean-image and noise estimates implied by the network's ``output`` at ``x_t``.

        ``clip`` clamps the clean-image estimate to ``[-1, 1]`` and derives the noise estimate from
        the clamped value, so that the two stay consistent.
        """
        alpha, sigma = (v.to(x.dtype).view(-1, 1, 1, 1) for v in self.alpha_sigma(t))
        if prediction == "epsilon":
            x0, eps = (x - sigma * output) / alpha, output
        else:
            x0, eps = alpha * x - sigma * output, sigma * x + alpha * output
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x - alpha * x0) / sigma
        return x0, eps

    def spaced(self, steps: int, spacing: Literal["linear", "logsnr"] = "linear") -> list[int]:
        """Up to ``steps`` distinct timesteps from ``T - 1`` down to 0.

        ``"linear"`` spaces them evenly in ``t``; ``"logsnr"`` evenly in ``lambda = log(alpha / sigma)``
        (rounded to the nearest timestep, so close ones can merge), which suits few-step solvers
        working in ``lambda`` (Lu et al. 2022).
        """
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must lie in [1, {self.timesteps}], got {steps}")
        if spacing == "linear":
            return torch.linspace(self.timesteps - 1, 0, steps).round().long().unique_consecutive().tolist()
        if spacing != "logsnr":
            raise ValueError(f"spacing must be 'linear' or 'logsnr', got {spacing!r}")
        lam = 0.5 * torch.log(self.alpha_bar / (1 - self.alpha_bar))  # decreasing in t
        targets = torch.linspace(float(lam[-1]), float(lam[0]), steps, dtype=torch.float64)
        nearest = (lam[None, :] - targets[:, None]).abs().argmin(dim=1)  # (steps,) decreasing t
        return nearest.unique_consecutive().tolist()
