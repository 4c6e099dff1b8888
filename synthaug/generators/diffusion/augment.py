"""Non-leaking geometric augmentation for generator training (EDM's augmentation pipeline, after ADA:
Karras et al. 2020, https://arxiv.org/abs/2006.06676, and 2022, https://arxiv.org/abs/2206.00364, appendix);
the ddpm's ``augment_p`` and the vae's.

Each augmentation is applied to an image with probability ``p``, independently; its parameters are
returned as a conditioning vector that the network receives with the noise level and the class. The
vector of an unaugmented image is all zeros, which is what sampling passes, so the network learns from
the augmented images without ever being asked to draw them.

The vector (``AUGMENT_DIM`` entries): ``[xflip, rot90 k=1, k=2, k=3, shift x, shift y, log2 scale]``;
shifts are in units of their maximum, the log-scale in units of its standard deviation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

AUGMENTATIONS = ("xflip", "rot90", "translate", "scale")
AUGMENT_DIM = 7
#: the largest shift, as a share of the image's side (EDM: 0.125)
TRANSLATE_MAX = 0.125
#: the standard deviation of log2 of the isotropic scale factor (ADA: 0.2)
SCALE_STD = 0.2


def check_augmentations(kinds: tuple[str, ...], image_shape: tuple[int, int, int]) -> None:
    """Refuse an unknown augmentation name, or ``rot90`` on images that are not square."""
    unknown = [k for k in kinds if k not in AUGMENTATIONS]
    if unknown or not kinds:
        raise ValueError(f"unknown augmentation(s) {unknown or list(kinds)}; choose from {list(AUGMENTATIONS)}")
    _, h, w = image_shape
    if "rot90" in kinds and h != w:
        raise ValueError(f"rot90 needs square images, these are {h}x{w}; drop 'rot90' from augmentations")


def check_augment_options(p: float, kinds: tuple[str, ...], image_shape: tuple[int, int, int]) -> tuple[str, ...]:
    """Refuse ``p`` outside ``[0, 1)`` and, when ``p > 0``, bad ``kinds``; returns ``kinds`` as a tuple (a config's
    ``augment_p`` and ``augmentations``)."""
    if not 0 <= p < 1:
        raise ValueError(f"augment_p must lie in [0, 1) (0: no augmentation; EDM used 0.12), got {p}")
    kinds = tuple(kinds)
    if p > 0:
        check_augmentations(kinds, image_shape)
    return kinds


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source).to(device)


def _shift(images: Tensor, dy: Tensor, dx: Tensor, margin: int) -> Tensor:
    """Each image moved by its own integer ``(dy, dx)``, the border filled by reflection."""
    b, c, h, w = images.shape
    padded = F.pad(images, (margin, margin, margin, margin), mode="reflect")  # (B, C, H+2m, W+2m)
    rows = (torch.arange(h, device=images.device)[None] + margin - dy[:, None]).view(b, 1, h, 1).expand(b, c, h, w + 2 * margin)
    padded = padded.gather(2, rows)  # (B, C, H, W+2m)
    cols = (torch.arange(w, device=images.device)[None] + margin - dx[:, None]).view(b, 1, 1, w).expand(b, c, h, w)
    return padded.gather(3, cols)  # (B, C, H, W)


def augment(
    images: Tensor, p: float, *, generator: torch.Generator | None, kinds: tuple[str, ...] = ("xflip", "rot90", "translate")
) -> tuple[Tensor, Tensor]:
    """``(augmented images, conditioning (B, AUGMENT_DIM))``; every random draw comes from ``generator``.

    Example:
        >>> x = torch.zeros(4, 1, 8, 8)
        >>> y, cond = augment(x, 0.5, generator=torch.Generator().manual_seed(0))
        >>> y.shape, cond.shape
        (torch.Size([4, 1, 8, 8]), torch.Size([4, 7]))
    """
    b, _, h, w = images.shape
    device = images.device
    cond = torch.zeros(b, AUGMENT_DIM, device=device, dtype=images.dtype)
    if "xflip" in kinds:
        on = (_rand((b,), generator, device) < p) & (_rand((b,), generator, device) < 0.5)
        images = torch.where(on.view(b, 1, 1, 1), images.flip(3), images)
        cond[:, 0] = on.to(images.dtype)
    if "rot90" in kinds:
        on = _rand((b,), generator, device) < p
        k = torch.where(on, (_rand((b,), generator, device) * 4).long().clamp(max=3), 0)
        rotated = torch.stack([images.rot90(j, dims=(2, 3)) for j in range(4)])  # (4, B, C, H, W)
        images = rotated[k, torch.arange(b, device=device)]
        cond[:, 1:4] = F.one_hot(k, 4)[:, 1:].to(images.dtype)
    if "translate" in kinds:
        on = _rand((b,), generator, device) < p
        u = (_rand((2, b), generator, device) * 2 - 1) * on  # (2, B) in [-1, 1], zero when off
        limits = (TRANSLATE_MAX * h, TRANSLATE_MAX * w)
        dy, dx = (u[i].mul(limits[i]).round().long() for i in range(2))
        margin = max(1, min(int(max(limits)) + 1, min(h, w) - 1))
        images = _shift(images, dy.clamp(-margin, margin), dx.clamp(-margin, margin), margin)
        cond[:, 4] = dx.to(images.dtype) / max(limits[1], 1e-8)
        cond[:, 5] = dy.to(images.dtype) / max(limits[0], 1e-8)
    if "scale" in kinds:
        on = _rand((b,), generator, device) < p
        source = generator.device if generator is not None else device
        z = torch.randn((b,), generator=generator, device=source).to(device) * on
        scale = torch.exp2(SCALE_STD * z)  # (B,)
        theta = torch.zeros(b, 2, 3, device=device, dtype=images.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale  # grid_sample maps output to input coordinates
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        scaled = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        images = torch.where(on.view(b, 1, 1, 1), scaled, images)
        cond[:, 6] = z.to(images.dtype)
    return images, cond
