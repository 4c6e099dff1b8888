"""Mixup (Zhang et al. 2018, https://arxiv.org/abs/1710.09412): blend images and their targets.

Shared by :class:`~synthaug.transforms.SyntheticMix` (real with synthetic samples) and the yardstick
classifier's recipe (any two items of a batch); it needs nothing but torch and a seed.
"""

from __future__ import annotations

import torch

from synthaug.seeding import numpy_generator


def mixup(
    images: torch.Tensor, targets: torch.Tensor, other_images: torch.Tensor, other_targets: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * (images, targets) + (1 - lam) * (other_images, other_targets)``, one ``lam`` per row;
    targets are ``(B, num_classes)`` probabilities. Images blend in float32 and come back in their own dtype
    (rounded for integer images, so uint8 stays uint8)."""
    shape = (-1,) + (1,) * (images.ndim - 1)
    weight = lam.view(shape).to(device=images.device, dtype=torch.float32)
    mixed = weight * images.float() + (1 - weight) * other_images.float()
    if not images.is_floating_point():
        mixed = mixed.round().clamp(torch.iinfo(images.dtype).min, torch.iinfo(images.dtype).max)
    lam = lam.to(targets)
    return mixed.to(images.dtype), lam[:, None] * targets + (1 - lam[:, None]) * other_targets


def beta_weights(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of ``Beta(alpha, alpha)``, mixup's blend weights, determined by ``generator``
    (torch's ``Beta`` distribution would draw from the global RNG)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    seed = int(torch.randint(2**62, (), generator=generator))
    return torch.from_numpy(numpy_generator(seed).beta(alpha, alpha, n)).float()
