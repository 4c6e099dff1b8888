"""Image grids for sample previews (PNG through Pillow)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from synthaug.data.labeled import to_uint8


def image_grid(images: torch.Tensor, nrow: int, *, padding: int = 1, scale: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images (floats in ``[-1, 1]`` or ``uint8``) into one ``uint8`` ``(H', W', C)`` array.

    ``nrow`` is the number of images per row; ``scale`` enlarges each pixel (nearest neighbour).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C in 1 or 3, got {tuple(images.shape)}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    x = images if images.dtype == torch.uint8 else to_uint8(images)
    x = x.detach().cpu()
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    n, c, h, w = x.shape
    rows = max(1, math.ceil(n / nrow))
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), 255, dtype=torch.uint8)
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def save_image_grid(
    images: torch.Tensor, path: str | os.PathLike, nrow: int, *, min_tile: int = 32, padding: int = 1
) -> Path:
    """Write an :func:`image_grid` PNG to ``path``; small images are enlarged to at least ``min_tile`` pixels."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, math.ceil(min_tile / min(images.shape[-2:])))
    grid = image_grid(images, nrow, padding=padding, scale=scale)
    Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(path)
    return path


def class_grid(generator: torch.nn.Module, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """``per_class`` samples of every class, one class per row, from a fixed seed."""
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    return generator.sample(labels, generator=torch.Generator().manual_seed(seed))
