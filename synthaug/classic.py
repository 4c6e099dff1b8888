"""Classic augmentation (random flips and shifts): the baseline every generative augmentation must beat.

It sits below the mixing objects (not in evaluation/) because a recipe builds it: see :mod:`synthaug.recipe`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from synthaug.data.labeled import LabeledImages
from synthaug.seeding import WorkerGenerator


class _TorchAugment:
    """Random horizontal flip and a random shift (zero padding, then a crop) of a uint8 ``(C, H, W)`` tensor."""

    def __init__(self, hflip: bool, shift: float, seed: int) -> None:
        self.hflip, self.shift, self.seed = hflip, shift, seed
        self._rng = WorkerGenerator(seed, "classic")  # each DataLoader worker draws its own stream

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        rng = self._rng.get()
        if self.hflip and torch.rand((), generator=rng) < 0.5:
            image = image.flip(-1)
        _, h, w = image.shape
        dy, dx = round(self.shift * h), round(self.shift * w)
        if dy or dx:
            padded = torch.nn.functional.pad(image, (dx, dx, dy, dy))
            top = int(torch.randint(2 * dy + 1, (), generator=rng))
            left = int(torch.randint(2 * dx + 1, (), generator=rng))
            image = padded[:, top : top + h, left : left + w]
        return image


class _AlbumentationsAugment:
    def __init__(self, hflip: bool, shift: float, seed: int, image_shape: Sequence[int]) -> None:
        import albumentations as A
        import cv2

        _, h, w = image_shape
        dy, dx = round(shift * h), round(shift * w)
        self.pipeline = A.Compose(
            [A.HorizontalFlip(p=0.5 if hflip else 0.0),
             A.PadIfNeeded(h + 2 * dy, w + 2 * dx, border_mode=cv2.BORDER_CONSTANT, fill=0),
             A.RandomCrop(h, w)],
            seed=seed,
        )  # fmt: skip

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        out = self.pipeline(image=image.permute(1, 2, 0).numpy())["image"]
        return torch.from_numpy(np.ascontiguousarray(out.reshape(out.shape[0], out.shape[1], -1))).permute(2, 0, 1)


def classic_augmentation(
    image_shape: Sequence[int], *, hflip: bool = True, shift: float = 0.1, seed: int = 0, backend: str = "auto"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Flips and shifts of uint8 ``(C, H, W)`` tensors, seeded.

    ``shift`` is the largest translation as a share of the side (pad with zeros, crop back). The
    ``"albumentations"`` backend is used when the package is installed (``"auto"``), else ``"torch"``;
    both apply the same operations. Set ``hflip=False`` for data that mirroring changes (digits, text).
    """
    if not 0 <= shift < 0.5:
        raise ValueError(f"shift must lie in [0, 0.5), got {shift}")
    if backend == "auto":
        try:
            import albumentations  # noqa: F401

            backend = "albumentations"
        except ImportError:
            backend = "torch"
    if backend == "torch":
        return _TorchAugment(hflip, shift, seed)
    if backend == "albumentations":
        return _AlbumentationsAugment(hflip, shift, seed, image_shape)
    raise ValueError(f"backend must be 'auto', 'torch' or 'albumentations', got {backend!r}")


class Transformed(Dataset):
    """``data``'s items with ``transform`` applied to each image (labels, and ``labels``, unchanged)."""

    def __init__(self, data: LabeledImages, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.data, self.transform = data, transform
        self.labels, self.class_names = data.labels, data.class_names

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.data[index]
        return self.transform(image), label
