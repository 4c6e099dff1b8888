"""Transforms that bring synthetic samples into a pipeline, following torchvision's conventions.

:class:`SyntheticReplace` works on one ``(image, label)`` pair, :class:`SyntheticMix` on a collated
batch (like torchvision v2's ``MixUp``: it overrides ``forward``, validates the labels and returns
the structure it received). Neither imports torchvision. Each owns a seeded ``torch.Generator``:
randomness is drawn in ``make_params`` and applied in ``transform``; inside DataLoader workers the
generator is re-seeded from the worker's seed, so workers do not repeat each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import get_worker_info

from synthaug.data.sources import label_to_int
from synthaug.synthetic import ImageFormat, Source, as_source, check_classes, draw


class _SyntheticTransform(nn.Module):
    def __init__(self, source: Source, *, seed: int, normalize: tuple[Sequence[float], Sequence[float]] | None) -> None:
        super().__init__()
        # Held outside nn.Module registration: the generator is frozen data, not part of this module's state.
        object.__setattr__(self, "source", as_source(source))
        self.seed, self.normalize = seed, normalize
        self._rng = torch.Generator().manual_seed(seed)
        self._worker: int | None = None

    def _generator(self) -> torch.Generator:
        worker = get_worker_info()
        if worker is not None and self._worker != worker.id:
            self._rng.manual_seed(hash((self.seed, worker.seed)) & (2**63 - 1))
            self._worker = worker.id
        return self._rng


class SyntheticReplace(_SyntheticTransform):
    """With probability ``p``, replace an ``(image, label)`` pair's image by a synthetic one of the same class.

    The synthetic image has the real image's type, dtype, layout and range (PIL in, PIL out;
    normalised floats need ``normalize=(mean, std)``). Call it as ``t(image, label)`` or ``t((image, label))``.

    Example:
        >>> replace = SyntheticReplace(bank, p=0.3, seed=0)  # doctest: +SKIP
        >>> image, label = replace(image, label)  # doctest: +SKIP
    """

    def __init__(
        self,
        source: Source,
        p: float = 0.5,
        *,
        seed: int = 0,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        super().__init__(source, seed=seed, normalize=normalize)
        self.p = p

    def make_params(self, label: int) -> dict[str, Any]:
        rng = self._generator()
        replace = bool(torch.rand((), generator=rng) < self.p)
        return {"replace": replace, "seed": int(torch.randint(2**62, (), generator=rng)) if replace else None}

    def transform(self, image: Any, label: int, params: dict[str, Any]) -> Any:
        if not params["replace"]:
            return image
        fmt = ImageFormat.of(image, normalize=self.normalize, where="the image")
        if fmt.shape != tuple(self.source.image_shape):
            raise ValueError(f"image shape {fmt.shape} does not match the synthetic source's {self.source.image_shape}")
        synthetic = draw(self.source, torch.tensor([label]), torch.Generator().manual_seed(params["seed"]))[0]
        return fmt.convert(synthetic)

    def forward(self, *inputs: Any) -> Any:
        pair = inputs[0] if len(inputs) == 1 else inputs
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError("SyntheticReplace takes (image, label): call it as t(image, label) or t((image, label))")
        image, label = pair
        index = label_to_int(label, "SyntheticReplace")
        check_classes(self.source, [index], "the label")
        out = (self.transform(image, index, self.make_params(index)), label)
        return type(pair)(out) if len(inputs) == 1 else out

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}"


class SyntheticMix(_SyntheticTransform):
    """Mixes synthetic samples into a collated batch ``(images (B, C, H, W), labels (B,))``.

    ``mode="replace"`` swaps ``round(ratio * B)`` randomly chosen items for synthetic ones of the
    same classes (the batch keeps its size); ``mode="append"`` adds ``round(ratio * B)`` synthetic
    items with classes drawn from the batch. Images keep their dtype, device and range
    (``normalize=(mean, std)`` for normalised floats). Returns what it got: a tuple, a list, or two
    values. After a call, ``last_synthetic_mask`` tells which items are synthetic.

    Example:
        >>> mix = SyntheticMix(bank, ratio=0.25)  # doctest: +SKIP
        >>> for images, labels in loader:  # doctest: +SKIP
        ...     images, labels = mix(images, labels)
    """

    def __init__(
        self,
        source: Source,
        ratio: float = 0.5,
        *,
        mode: Literal["replace", "append"] = "replace",
        seed: int = 0,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
        upper = 1.0 if mode == "replace" else float("inf")
        if not 0.0 <= ratio <= upper:
            raise ValueError(f"ratio must lie in [0, {upper:g}] for mode={mode!r}, got {ratio}")
        super().__init__(source, seed=seed, normalize=normalize)
        self.ratio, self.mode = ratio, mode
        self.last_synthetic_mask: torch.Tensor | None = None

    def make_params(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        rng = generator if generator is not None else self._generator()
        batch = len(labels)
        k = round(self.ratio * batch)
        if self.mode == "replace":
            where = torch.randperm(batch, generator=rng)[:k]
            classes = labels.cpu()[where]
        else:
            where = torch.arange(batch, batch + k)
            classes = labels.cpu()[torch.randint(batch, (k,), generator=rng)] if batch else labels.new_zeros(0)
        return {"where": where, "classes": classes, "images": draw(self.source, classes, rng) if k else None}

    def transform(self, images: torch.Tensor, labels: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        where, classes, synthetic = params["where"], params["classes"], params["images"]
        mask = torch.zeros(len(labels) + (len(where) if self.mode == "append" else 0), dtype=torch.bool)
        if synthetic is None:
            self.last_synthetic_mask = mask
            return images, labels
        fmt = ImageFormat("tensor", tuple(images.shape[1:]), dtype=images.dtype, normalize=ImageFormat.normalization(self.normalize))
        synthetic = fmt.convert_batch(synthetic, device=images.device)
        classes = classes.to(device=labels.device, dtype=labels.dtype)
        mask[where] = True
        self.last_synthetic_mask = mask
        if self.mode == "append":
            return torch.cat([images, synthetic]), torch.cat([labels, classes])
        images, labels = images.clone(), labels.clone()
        images[where.to(images.device)], labels[where.to(labels.device)] = synthetic, classes
        return images, labels

    def forward(self, *inputs: Any, generator: torch.Generator | None = None) -> Any:
        batch = inputs[0] if len(inputs) == 1 else inputs
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("SyntheticMix takes (images, labels): call it as mix(images, labels) or mix((images, labels))")
        images, labels = batch
        self._check(images, labels)
        out = self.transform(images, labels, self.make_params(labels, generator))
        return type(batch)(out) if len(inputs) == 1 else out

    def _check(self, images: Any, labels: Any) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                "labels must be a 1-D integer tensor of class indices (not one-hot or soft labels), got "
                f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}; "
                "apply SyntheticMix before MixUp/CutMix"
            )
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if tuple(images.shape[1:]) != tuple(self.source.image_shape):
            raise ValueError(
                f"images have shape {tuple(images.shape[1:])} but the synthetic source makes {self.source.image_shape}"
            )
        if images.is_floating_point() and self.normalize is None and len(images) and (images.min() < 0 or images.max() > 1):
            raise ValueError("images are floats outside [0, 1]: pass normalize=(mean, std) as used by your transform")
        check_classes(self.source, labels.cpu(), "the batch")

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, mode={self.mode!r}, seed={self.seed}"
