"""Differentiable augmentation for data-efficient GAN training (Zhao et al. 2020, https://arxiv.org/abs/2006.10738).

The same random policy is applied to real and generated images before the discriminator sees
them, so the discriminator cannot memorise a small training set and gradients still reach the
generator. Every random draw comes from the ``generator`` argument.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("color", "translation", "cutout")


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source).to(device)


def color(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image; ``x`` in [-1, 1]."""
    b = x.shape[0]
    x = x + (_uniform((b, 1, 1, 1), generator, x.device) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_uniform((b, 1, 1, 1), generator, x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform((b, 1, 1, 1), generator, x.device) + 0.5) + mean


def translation(x: Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = (_uniform((b,), generator, x.device) * (2 * sh + 1)).long() - sh
    dx = (_uniform((b,), generator, x.device) * (2 * sw + 1)).long() - sw
    padded = F.pad(x, (sw, sw, sh, sh))
    rows = (torch.arange(h, device=x.device)[None, :] + sh - dy[:, None])  # (B, H)
    cols = (torch.arange(w, device=x.device)[None, :] + sw - dx[:, None])  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> Tensor:
    """Zero a random square of ``ratio`` times the image size in each image."""
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    top = (_uniform((b,), generator, x.device) * (h + 1 - ch % 2)).long() - ch // 2
    left = (_uniform((b,), generator, x.device) * (w + 1 - cw % 2)).long() - cw // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    inside_y = (ys >= top[:, None]) & (ys < top[:, None] + ch)  # (B, H)
    inside_x = (xs >= left[:, None]) & (xs < left[:, None] + cw)  # (B, W)
    mask = ~(inside_y[:, :, None] & inside_x[:, None, :])  # (B, H, W)
    return x * mask[:, None].to(x.dtype)


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None) -> Tensor:
    """Apply the comma-separated ``policy`` (of ``color``, ``translation``, ``cutout``)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        x = {"color": color, "translation": translation, "cutout": cutout}[name](x, generator)
    return x
