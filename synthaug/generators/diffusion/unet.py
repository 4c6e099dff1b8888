"""A small class-conditional UNet (Ronneberger et al. 2015; the DDPM variant of Ho et al. 2020).

The timestep and the class (and, when trained with augmentation, the augmentation's parameters) enter as
one embedding that scales and shifts every residual block's features. Class ``num_classes`` is the
"no class" token used for classifier-free guidance. The network knows nothing of the noise schedule:
it maps ``(x_t, t, label)`` to a tensor shaped like ``x_t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, ``(B,) -> (B, dim)`` (Vaswani et al. 2017)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """``x + conv2(f(conv1(x)))`` with the embedding as scale and shift; ``hidden`` is the inner width
    (default ``out_channels``), which structured pruning lowers."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, dropout: float, hidden: int | None = None) -> None:
        super().__init__()
        hidden = out_channels if hidden is None else hidden
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.embed = nn.Linear(embed_dim, 2 * hidden)  # scale and shift
        self.norm2 = nn.GroupNorm(8, hidden)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.embed(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.dropout(F.silu(h)))


class ConditionalUNet(nn.Module):
    """``forward(x (B, C, H, W), t (B,), labels (B,)) -> (B, C, H, W)``.

    ``patch_size`` folds each ``p x p`` patch into channels first (pixel unshuffle, as the patch
    embedding of DiT / U-ViT but without attention): the UNet then runs at ``H/p x W/p``, which on a
    CPU is about ``p**2`` times cheaper. ``channel_mults`` has one entry per resolution; the image is
    halved between them, so ``H`` and ``W`` must be divisible by ``p * 2 ** (len(channel_mults) - 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        blocks_per_level: int = 1,
        dropout: float = 0.0,
        patch_size: int = 1,
        block_widths: Sequence[int] | None = None,
        augment_dim: int = 0,
    ) -> None:
        super().__init__()
        hidden = iter(block_widths) if block_widths is not None else None
        self.patch_size = patch_size
        in_channels *= patch_size**2
        embed_dim = 4 * base_channels
        self.base_channels = base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.class_embed = nn.Embedding(num_classes + 1, embed_dim)  # + the "no class" token
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        widths = [base_channels * m for m in channel_mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, width = [base_channels], base_channels
        for level, out in enumerate(widths):
            for _ in range(blocks_per_level):
                self.down.append(ResBlock(width, out, embed_dim, dropout, next(hidden, None) if hidden else None))
                width = out
                skips.append(width)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.middle = nn.ModuleList([ResBlock(width, width, embed_dim, dropout, next(hidden, None) if hidden else None)
                                     for _ in range(2)])  # fmt: skip
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, out in reversed(list(enumerate(widths))):
            for _ in range(blocks_per_level + 1):
                self.up.append(ResBlock(width + skips.pop(), out, embed_dim, dropout, next(hidden, None) if hidden else None))
                width = out
            if level > 0:
                self.upsample.append(nn.Conv2d(width, width, 3, padding=1))
        self.out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, in_channels, 3, padding=1))
        self.levels, self.blocks_per_level = len(widths), blocks_per_level
        # Augmentation conditioning (synthaug.generators.diffusion.augment), created last so that every other
        # weight initialises as without it; no bias, so the all-zero vector of sampling adds exactly nothing.
        self.augment_embed = nn.Linear(augment_dim, embed_dim, bias=False) if augment_dim else None

    @staticmethod
    def count_blocks(levels: int, blocks_per_level: int) -> int:
        """Residual blocks of a UNet: ``blocks_per_level`` down and ``blocks_per_level + 1`` up per level, and two in the middle."""
        return levels * (2 * blocks_per_level + 1) + 2

    def blocks(self) -> list[ResBlock]:
        """The residual blocks in construction order (down, middle, up): the order of ``block_widths``."""
        return [*self.down, *self.middle, *self.up]

    def forward(self, x: Tensor, t: Tensor, labels: Tensor, augment: Tensor | None = None) -> Tensor:
        """``augment`` (B, augment_dim): the augmentation conditioning; None means no augmentation (all zeros)."""
        emb = self.time_mlp(timestep_embedding(t, self.base_channels)) + self.class_embed(labels)  # (B, E)
        if self.augment_embed is not None:
            if augment is None:
                augment = x.new_zeros(len(x), self.augment_embed.in_features)
            emb = emb + self.augment_embed(augment.to(emb.dtype))
        h = self.stem(F.pixel_unshuffle(x, self.patch_size))  # (B, C, H, W) -> (B, C*p*p, H/p, W/p)
        skips = [h]
        blocks = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks_per_level):
                h = next(blocks)(h, emb)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)  # (B, C, H, W) -> (B, C, H/2, W/2)
                skips.append(h)
        for block in self.middle:
            h = block(h, emb)
        blocks = iter(self.up)
        for level in range(self.levels):
            for _ in range(self.blocks_per_level + 1):
                h = next(blocks)(torch.cat([h, skips.pop()], dim=1), emb)
            if level < self.levels - 1:
                h = self.upsample[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)
        return F.pixel_shuffle(self.out(h), self.patch_size)
