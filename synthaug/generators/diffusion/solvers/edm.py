"""Solvers on EDM's noise levels (Karras et al. 2022, https://arxiv.org/abs/2206.00364), for ``parameterization="edm"``.

Here ``x = y + sigma * n`` and a denoiser ``D(x, sigma)`` estimates ``y``; the probability-flow ODE is
``dx/dsigma = (x - D(x, sigma)) / sigma``. Each solver walks a list of noise levels ending in 0:

* ``heun``: EDM's Algorithm 2 (Algorithm 1 when ``churn=0``, the default): Euler steps corrected by a
  second evaluation at the step's end (trapezoidal rule), except the last step to ``sigma=0``;
  ``2 * steps - 1`` network evaluations.
* ``dpm++2m``: DPM-Solver++(2M) (Lu et al. 2022, https://arxiv.org/abs/2211.01095) in ``lambda = -ln sigma``,
  one evaluation a step.
* ``ddim``: the Euler step, which is deterministic DDIM in these coordinates (EDM, section 3); ``eta > 0``
  moves part of the way with fresh noise, as DDIM's ``eta`` does (``eta=1``: ancestral sampling).
* ``ddpm``: ``ddim`` with ``eta=1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor

from synthaug.generators.base import Randomness, randn

#: ``D(x, sigma) -> y``: the (guided) denoiser at one noise level
Denoiser = Callable[[Tensor, float], Tensor]

EDM_SOLVERS = ("ddim", "ddpm", "dpm++2m", "heun")


def _noise(x: Tensor, generator: Randomness) -> Tensor:
    return randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def solve_edm(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Sequence[float],
    sampler: str,
    *,
    eta: float = 0.0,
    churn: float = 0.0,
    generator: Randomness = None,
    record: Sequence[float] = (),
) -> Tensor | tuple[Tensor, dict[float, Tensor]]:
    """Run ``sampler`` from ``x`` (noise at ``sigmas[0]``) down ``sigmas`` (ending in 0) to the clean image.

    ``churn`` is EDM's ``S_churn`` (heun only: noise added before each step, ``gamma = min(churn / steps, sqrt(2) - 1)``).
    With ``record``, also returns the states reached at those noise levels (step distillation's targets).
    """
    if sampler not in EDM_SOLVERS:
        raise ValueError(f"unknown sampler {sampler!r}; known samplers: {sorted(EDM_SOLVERS)}")
    if eta < 0 or churn < 0:
        raise ValueError(f"eta and churn must be >= 0, got {eta} and {churn}")
    if sampler == "ddpm":
        sampler, eta = "ddim", 1.0
    kept: dict[float, Tensor] = {}
    previous: tuple[Tensor, float] | None = None  # dpm++2m: (D, lambda) at the previous level
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        if sigma in record:
            kept[sigma] = x
        if sampler == "heun":
            gamma = min(churn / steps, math.sqrt(2) - 1) if churn > 0 else 0.0
            sigma_hat = sigma * (1 + gamma)
            if gamma > 0:  # Algorithm 2: raise the noise level to sigma_hat with fresh noise first
                x = x + math.sqrt(sigma_hat**2 - sigma**2) * _noise(x, generator)
            d = (x - denoise(x, sigma_hat)) / sigma_hat
            x_next = x + (sigma_next - sigma_hat) * d
            if sigma_next > 0:  # second order: average the slopes at both ends
                d_next = (x_next - denoise(x_next, sigma_next)) / sigma_next
                x_next = x + (sigma_next - sigma_hat) * 0.5 * (d + d_next)
            x = x_next
        elif sampler == "dpm++2m":
            y = denoise(x, sigma)
            if sigma_next == 0:  # the last step lands on the clean image: first order there is D itself
                x = y
                continue
            lam, lam_next = -math.log(sigma), -math.log(sigma_next)
            h = lam_next - lam
            estimate = y
            if previous is not None:  # second order: extrapolate the D estimates linearly in lambda
                y_previous, lam_previous = previous
                r = (lam - lam_previous) / h
                estimate = (1 + 1 / (2 * r)) * y - (1 / (2 * r)) * y_previous
            previous = (y, lam)
            x = (sigma_next / sigma) * x - math.expm1(-h) * estimate
        else:  # ddim: Euler to sigma_down, then fresh noise of sigma_up (sigma_down^2 + sigma_up^2 = sigma_next^2)
            y = denoise(x, sigma)
            sigma_up = min(sigma_next, eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2), 0.0)) / sigma)
            sigma_down = math.sqrt(sigma_next**2 - sigma_up**2)
            x = y + (sigma_down / sigma) * (x - y)
            if sigma_up > 0:
                x = x + sigma_up * _noise(x, generator)
    return (x, kept) if record else x
