"""EDM's noise levels and preconditioning (Karras et al. 2022, https://arxiv.org/abs/2206.00364).

A noisy image is ``x = y + sigma * n`` (no signal scaling); the denoiser is
``D(x, sigma) = c_skip * x + c_out * F(c_in * x, c_noise)`` with the scalings of the paper's Table 1,
so that the network ``F`` sees inputs and targets of unit variance at every ``sigma``. Training draws
``ln(sigma) ~ N(P_mean, P_std^2)`` and weights the squared error by ``(sigma^2 + sd^2) / (sigma * sd)^2``,
which makes the loss on ``F`` unit-weighted. Sampling walks down ``karras_sigmas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: The UNet's sinusoidal embedding was laid out for timesteps in [0, 1000); ``c_noise = ln(sigma) / 4`` spans
#: about [-1.6, 1.1], where all but its fastest frequencies are constant. Scaling it by 250 gives the
#: embedding the same range of angles as the discrete timesteps (a fixed affine map of EDM's c_noise).
TIME_SCALE = 250.0


@dataclass(frozen=True)
class EDMPreconditioning:
    """The scalings of EDM's denoiser for data of standard deviation ``sigma_data`` (0.5 for images in [-1, 1])."""

    sigma_data: float = 0.5

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(c_skip, c_out, c_in, c_noise)`` for noise levels ``sigma`` (any shape, float)."""
        sd2, s2 = self.sigma_data**2, sigma.square()
        c_skip = sd2 / (s2 + sd2)
        c_out = sigma * self.sigma_data / (s2 + sd2).sqrt()
        c_in = 1 / (s2 + sd2).sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """``lambda(sigma) = (sigma^2 + sd^2) / (sigma * sd)^2``, the inverse of ``c_out^2``."""
        return (sigma.square() + self.sigma_data**2) / (sigma * self.sigma_data).square()


def training_sigmas(batch: int, p_mean: float, p_std: float, *, generator: torch.Generator | None,
                    device: torch.device) -> Tensor:  # fmt: skip
    """``(batch,)`` noise levels with ``ln(sigma) ~ N(p_mean, p_std^2)``, drawn on the generator's device."""
    source = generator.device if generator is not None else device
    n = torch.randn(batch, generator=generator, device=source, dtype=torch.float32).to(device)
    return (p_mean + p_std * n).exp()


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> list[float]:
    """``steps`` noise levels from ``sigma_max`` down to ``sigma_min``, evenly spaced in ``sigma^(1/rho)``, then 0.

    EDM's eq. 5: ``rho = 7`` takes shorter steps near the data, where the error of a step matters most.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    if steps == 1:
        return [float(sigma_max), 0.0]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + i / (steps - 1) * (lo - hi)) ** rho for i in range(steps)] + [0.0]


def check_edm(sigma_data: float, p_std: float, sigma_min: float, sigma_max: float, rho: float) -> None:
    """Refuse EDM settings that cannot work, one line each."""
    if not sigma_data > 0 or math.isnan(sigma_data):
        raise ValueError(f"sigma_data must be > 0 (0.5 for images in [-1, 1]), got {sigma_data}")
    if not p_std > 0:
        raise ValueError(f"p_std must be > 0, got {p_std}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max (EDM: 0.002 and 80), got {sigma_min} and {sigma_max}")
    if not rho > 0:
        raise ValueError(f"rho must be > 0 (EDM: 7), got {rho}")
