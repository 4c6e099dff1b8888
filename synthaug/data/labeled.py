"""The one in-memory form every data source produces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True, eq=False)
class LabeledImages(Dataset):
    """A labelled image dataset held in memory.

    Args:
        images: ``uint8`` tensor of shape ``(N, C, H, W)`` with ``C`` in ``{1, 3}``.
        labels: ``int64`` tensor of shape ``(N,)`` with values in ``[0, len(class_names))``.
        class_names: one name per class; every class must have at least one image.

    Items are ``(image, label)`` pairs: the ``uint8`` ``(C, H, W)`` tensor and an ``int``.

    Example:
        >>> import torch
        >>> data = LabeledImages(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), ("a", "b"))
        >>> data.image_shape, data.num_classes
        ((1, 8, 8), 2)
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                "images must be a uint8 tensor of shape (N, C, H, W), got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}; "
                "use synthaug.data.from_arrays to convert other layouts and dtypes"
            )
        if len(images) == 0:
            raise ValueError("the dataset is empty: it needs at least one image per class")
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)})")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (len(images),):
            raise ValueError(
                f"labels must be an int64 tensor of shape ({len(images)},), got "
                f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}"
            )
        names = tuple(str(name) for name in self.class_names)
        if not names:
            raise ValueError("class_names is empty: give one name per class")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {list(names)}")
        object.__setattr__(self, "class_names", names)
        bad = labels[(labels < 0) | (labels >= len(names))]
        if len(bad):
            raise ValueError(
                f"labels must lie in [0, {len(names)}) for {len(names)} classes, found {sorted(set(bad.tolist()))[:10]}; "
                "pass class_names covering every label"
            )
        counts = torch.bincount(labels, minlength=len(names))
        empty = [f"{i} ({names[i]!r})" for i in torch.nonzero(counts == 0).flatten().tolist()]
        if empty:
            raise ValueError(
                f"class {', '.join(empty)} has no images; a conditional generator needs examples of every class: "
                "add images or drop the class from class_names"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch of items in one indexing operation (the DataLoader calls this when it exists)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return list(zip(self.images[index].unbind(0), self.labels[index].tolist()))

    def __repr__(self) -> str:
        return (
            f"LabeledImages(n={len(self)}, image_shape={self.image_shape}, "
            f"classes={list(self.class_names) if self.num_classes <= 12 else self.num_classes})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (c, h, w)

    def class_counts(self) -> list[int]:
        """Number of images in each class, in class order."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, per_class: int, *, seed: int = 0) -> LabeledImages:
        """A stratified random subset with ``per_class`` images of every class.

        The choice depends only on ``seed`` (the global RNG is not used), and the result keeps the
        original relative order of the images.
        """
        return self.select(torch.nonzero(self._stratified(per_class, seed)).flatten())

    def split(self, per_class: int, *, seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
        """``(subset(per_class, seed=seed), the other images)``: a low-data training set and its held-out rest."""
        keep = self._stratified(per_class, seed)
        left = torch.bincount(self.labels[~keep], minlength=self.num_classes)
        if (left == 0).any():
            raise ValueError(f"per_class={per_class} leaves no other images of classes {torch.nonzero(left == 0).flatten().tolist()}")
        return self.select(torch.nonzero(keep).flatten()), self.select(torch.nonzero(~keep).flatten())

    def _stratified(self, per_class: int, seed: int) -> torch.Tensor:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        counts = self.class_counts()
        short = {self.class_names[c]: n for c, n in enumerate(counts) if n < per_class}
        if short:
            raise ValueError(f"per_class={per_class} but some classes have fewer images: {short}")
        rng = torch.Generator().manual_seed(seed)
        keep = torch.zeros(len(self), dtype=torch.bool)
        for c in range(self.num_classes):
            members = torch.nonzero(self.labels == c).flatten()
            keep[members[torch.randperm(len(members), generator=rng)[:per_class]]] = True
        return keep

    def select(self, indices: torch.Tensor | Sequence[int]) -> LabeledImages:
        """The images at ``indices`` (every class must stay represented)."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return LabeledImages(self.images[indices], self.labels[indices], self.class_names)


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images in ``[0, 255]`` to ``float32`` in ``[-1, 1]``."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in ``[-1, 1]`` to ``uint8`` in ``[0, 255]`` (values outside are clipped)."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
