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


def cutmix_boxes(lam: torch.Tensor, height: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix's boxes (Yun et al. 2019, https://arxiv.org/abs/1905.04899) for blend weights ``lam``.

    Each row's box covers about ``1 - lam`` of the image (sides ``sqrt(1 - lam)`` of the image's),
    centred uniformly and clipped at the border. Returns the boxes as ``(B, 4)`` integers ``(top,
    left, bottom, right)`` and the weights the clipped boxes really give (the kept share of each image).
    """
    n = len(lam)
    ratio = (1 - lam.double()).clamp(0, 1).sqrt()
    cy = torch.randint(height, (n,), generator=generator)
    cx = torch.randint(width, (n,), generator=generator)
    half_h, half_w = (ratio * height / 2).round().long(), (ratio * width / 2).round().long()
    top, bottom = (cy - half_h).clamp(0, height), (cy + half_h).clamp(0, height)
    left, right = (cx - half_w).clamp(0, width), (cx + half_w).clamp(0, width)
    kept = 1 - ((bottom - top) * (right - left)).double() / (height * width)
    return torch.stack([top, left, bottom, right], dim=1), kept.float()


def cutmix(
    images: torch.Tensor, targets: torch.Tensor, other_images: torch.Tensor, other_targets: torch.Tensor, boxes: torch.Tensor,
    kept: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` with each row's box (from :func:`cutmix_boxes`) pasted from ``other_images``; targets
    blended by the share of each image kept (``kept``). Images keep their dtype; targets are
    ``(B, num_classes)`` probabilities."""
    if images.shape != other_images.shape:
        raise ValueError(f"CutMix pastes between images of one size; got batches of shape {tuple(images.shape)} and "
                         f"{tuple(other_images.shape)}: resize (or crop) them to one size first")  # fmt: skip
    if len(boxes) != len(images) or len(kept) != len(images):
        raise ValueError(f"CutMix needs one box per image: {len(images)} images, {len(boxes)} boxes, {len(kept)} weights")
    h, w = images.shape[-2:]
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    b = boxes.to(images.device).view(-1, 4, 1, 1)
    inside = (rows >= b[:, 0]) & (rows < b[:, 2]) & (cols >= b[:, 1]) & (cols < b[:, 3])  # (B, H, W)
    mixed = torch.where(inside.unsqueeze(1), other_images, images)
    kept = kept.to(targets)
    return mixed, kept[:, None] * targets + (1 - kept[:, None]) * other_targets
