"""The one in-memory form every data source produces."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from synthaug.data.fingerprint import DataFingerprint


@dataclass(frozen=True, eq=False)
class LabeledImages(Dataset):
    """A labelled image dataset held in memory.

    Args:
        images: ``uint8`` tensor of shape ``(N, C, H, W)`` with ``C`` in ``{1, 3}``.
        labels: ``int64`` tensor of shape ``(N,)`` with values in ``[0, len(class_names))``.
        class_names: one name per class; every class must have at least one image.

    Items are ``(image, label)`` pairs: the ``uint8`` ``(C, H, W)`` tensor and an ``int``. Images are
    stored as ``uint8`` in ``[0, 255]`` (``synthaug.data.uint8_to_unit`` gives ``[0, 1]`` floats;
    docs/design.md, "Conventions"). ``classes`` and ``targets`` are torchvision's names for
    ``class_names`` and ``labels``.

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
    def classes(self) -> list[str]:
        """The class names as torchvision datasets name them (``dataset.classes``); read-only, same as ``class_names``."""
        return list(self.class_names)

    @property
    def targets(self) -> torch.Tensor:
        """The labels as torchvision datasets name them (``dataset.targets``); read-only, same as ``labels``."""
        return self.labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (c, h, w)

    def class_counts(self) -> list[int]:
        """Number of images in each class, in class order."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def fingerprint(self) -> DataFingerprint:
        """A hash of every image and a digest of them all (about 0.1 s for 60,000 28x28 images).

        ``synthaug.fit`` records it with the saved generator; ``evaluate``, ``downstream`` and the CLI
        refuse a held-out set that shares images with it, and a resume on other data is refused.

        Example:
            >>> from synthaug.data import load_digits
            >>> load_digits(split="train").fingerprint().describe()  # doctest: +ELLIPSIS
            '500 images (digest ...)'
        """
        return DataFingerprint.of(self)

    def subset(self, per_class: int, *, seed: int = 0) -> LabeledImages:
        """A stratified random subset with ``per_class`` images of every class.

        The choice depends only on ``seed`` (the global RNG is not used), and the result keeps the
        original relative order of the images.
        """
        return self.select(torch.nonzero(self._stratified(per_class, seed)).flatten())

    def split(self, per_class: int, *, seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
        """``(subset(per_class, seed=seed), the other images)``: a low-data training set and its held-out rest.

        Not torchvision's ``split="train"``: a dataset's fixed train and test splits come from its loader,
        ``load_digits(split="train")``, ``load_fashion_mnist(split="test")``.
        """
        if isinstance(per_class, str):
            fashion = f" or load_fashion_mnist(split={per_class!r})" if per_class in ("train", "test") else ""
            raise TypeError(
                f"split() takes a number of images per class, got {per_class!r}; a dataset's {per_class!r} split comes "
                f"from its loader: load_digits(split={per_class!r}){fashion}"
            )
        keep = self._stratified(per_class, seed)
        left = torch.bincount(self.labels[~keep], minlength=self.num_classes)
        if (left == 0).any():
            raise ValueError(f"per_class={per_class} leaves no other images of classes {torch.nonzero(left == 0).flatten().tolist()}")
        return self.select(torch.nonzero(keep).flatten()), self.select(torch.nonzero(~keep).flatten())

    def holdout(self, fraction: float = 0.2, *, seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
        """``(train, test)``: a stratified ``fraction`` of every class held out (at least one image, and
        at least one left to train on)."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        counts = self.class_counts()
        small = {self.class_names[c]: n for c, n in enumerate(counts) if n < 2}
        if small:
            raise ValueError(f"holding out a share needs at least 2 images per class, got {small}")
        keep = self._stratified([n - min(n - 1, max(1, round(fraction * n))) for n in counts], seed)
        return self.select(torch.nonzero(keep).flatten()), self.select(torch.nonzero(~keep).flatten())

    def subset_long_tailed(
        self,
        max_per_class: int,
        imbalance: float,
        *,
        profile: Literal["exponential", "step"] = "exponential",
        seed: int = 0,
        class_order: Sequence[int] | None = None,
    ) -> LabeledImages:
        """A long-tailed subset: the most frequent class has ``max_per_class`` images, the rarest ``imbalance`` times fewer.

        Which class is how frequent is drawn from ``seed`` (or given as ``class_order``, most frequent
        first). ``"exponential"``: the ``i``-th class in that order keeps
        ``int(max_per_class * imbalance ** (-i / (K - 1)))`` images (Cao et al. 2019, CIFAR-10-LT);
        ``"step"``: the first half of the classes keep ``max_per_class`` and the rest
        ``int(max_per_class / imbalance)`` (Buda et al. 2018). The images of each class are drawn with
        ``seed`` too. ``long_tailed_counts`` gives the counts without drawing.

        Example:
            >>> lt = fashion.subset_long_tailed(600, 100, seed=0)  # doctest: +SKIP
            >>> lt.class_counts()  # 600 for the head class ... 6 for the tail class  # doctest: +SKIP
        """
        counts = long_tailed_counts(self.num_classes, max_per_class, imbalance, profile=profile, seed=seed, class_order=class_order)
        return self.select(torch.nonzero(self._stratified(counts, seed)).flatten())

    def _stratified(self, per_class: int | Sequence[int], seed: int) -> torch.Tensor:
        wanted = [per_class] * self.num_classes if isinstance(per_class, int) else list(per_class)
        if min(wanted) < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        counts = self.class_counts()
        short = {self.class_names[c]: n for c, n in enumerate(counts) if n < wanted[c]}
        if short:
            asked = per_class if isinstance(per_class, int) else {self.class_names[c]: wanted[c] for c in range(len(wanted))
                                                                   if self.class_names[c] in short}  # fmt: skip
            raise ValueError(f"asked for {asked} images per class but some classes have fewer: {short}")
        rng = torch.Generator().manual_seed(seed)
        keep = torch.zeros(len(self), dtype=torch.bool)
        for c in range(self.num_classes):
            members = torch.nonzero(self.labels == c).flatten()
            keep[members[torch.randperm(len(members), generator=rng)[: wanted[c]]]] = True
        return keep

    def select(self, indices: torch.Tensor | Sequence[int]) -> LabeledImages:
        """The images at ``indices`` (every class must stay represented)."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return LabeledImages(self.images[indices], self.labels[indices], self.class_names)


def long_tailed_counts(
    num_classes: int,
    max_per_class: int,
    imbalance: float,
    *,
    profile: Literal["exponential", "step"] = "exponential",
    seed: int = 0,
    class_order: Sequence[int] | None = None,
) -> list[int]:
    """Images per class (in class-index order) of :meth:`LabeledImages.subset_long_tailed`."""
    if not imbalance >= 1 or math.isinf(imbalance):
        raise ValueError(f"imbalance must be a finite number >= 1 (largest class / smallest class), got {imbalance}")
    if max_per_class < 1:
        raise ValueError(f"max_per_class must be >= 1, got {max_per_class}")
    if profile == "exponential":
        by_rank = [int(max_per_class * imbalance ** (-i / max(num_classes - 1, 1))) for i in range(num_classes)]
    elif profile == "step":
        by_rank = [max_per_class if i < num_classes // 2 else int(max_per_class / imbalance) for i in range(num_classes)]
    else:
        raise ValueError(f"profile must be 'exponential' or 'step', got {profile!r}")
    if class_order is None:
        class_order = torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()
    if sorted(class_order) != list(range(num_classes)):
        raise ValueError(f"class_order must list every class index 0..{num_classes - 1} once, got {list(class_order)}")
    counts = [0] * num_classes
    for rank, c in enumerate(class_order):
        counts[c] = by_rank[rank]
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise ValueError(
            f"the {profile} profile from {max_per_class} images with imbalance {imbalance:g} leaves class(es) {empty} with no "
            f"image (counts by rank: {by_rank}); lower the imbalance or raise max_per_class"
        )
    return counts


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images in ``[0, 255]`` to ``float32`` in ``[-1, 1]``."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in ``[-1, 1]`` to ``uint8`` in ``[0, 255]`` (values outside are clipped)."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def label_to_int(label: Any, where: str) -> int:
    """An integer class index from an int, a numpy integer or a one-element tensor / array."""
    if isinstance(label, (torch.Tensor, np.ndarray)) and np.prod(label.shape) == 1:
        label = label.item()
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"{where}: label must be an integer class index, got {label!r}")
    return int(label)
