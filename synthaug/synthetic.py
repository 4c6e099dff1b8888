"""What the mixing tools share: one view of a synthetic source, and output in the real items' format.

:func:`as_source` accepts a :class:`~synthaug.bank.SyntheticBank` (the fast path), a live
:class:`~synthaug.generators.ConditionalGenerator`, a :class:`~synthaug.data.LabeledImages` (read
as an :class:`ImagePool`), or the path of a bank or generator on disk. :func:`source_fingerprint`
names what a source yields, for caches and dataset fingerprints.
:class:`ImageFormat` learns from one real image how items look (PIL / numpy / tensor, dtype,
layout, value range) and converts synthetic ``uint8`` images to exactly that.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from synthaug.bank import MANIFEST_NAME, PLAN_NAME, SyntheticBank
from synthaug.data.fingerprint import DataFingerprint
from synthaug.data.labeled import LabeledImages
from synthaug.generators.base import ConditionalGenerator, sample_uint8
from synthaug.io import CONFIG_NAME, load, weights_sha256


class ImagePool:
    """A :class:`~synthaug.data.LabeledImages` read like a bank: any labelled images can be a source.

    ``SyntheticAugment(real, ImagePool(real), teacher=...)`` appends teacher-labelled copies of the real
    images, which is the control arm that tells the gain of teacher labels on synthetic images apart
    from the gain of distillation itself.
    """

    def __init__(self, data: LabeledImages, indices: torch.Tensor | None = None) -> None:
        if not isinstance(data, LabeledImages):
            raise TypeError(f"ImagePool takes a LabeledImages, got {type(data).__name__}")
        self.data = data
        self._indices = indices if indices is not None else torch.arange(len(data))
        self.labels = data.labels[self._indices]
        self._by_class = [torch.nonzero(self.labels == c).flatten() for c in range(self.num_classes)]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.data.image_shape

    def __len__(self) -> int:
        return len(self._indices)

    def class_counts(self) -> list[int]:
        return [len(members) for members in self._by_class]

    def indices_of(self, label: int) -> torch.Tensor:
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} is not a class of this pool (0..{self.num_classes - 1})")
        return self._by_class[label]

    def images(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        return self.data.images[self._indices[torch.as_tensor(indices, dtype=torch.int64)]]

    def select(self, indices: torch.Tensor | Sequence[int]) -> ImagePool:
        return ImagePool(self.data, self._indices[torch.as_tensor(indices, dtype=torch.int64)])

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256(self.data.images.numpy().tobytes())
        digest.update(self.data.labels.numpy().tobytes())
        digest.update(self._indices.numpy().tobytes())
        return digest.hexdigest()


#: samples that already exist (read by index) rather than being drawn from a model
Pool = SyntheticBank | ImagePool
Source = SyntheticBank | ImagePool | ConditionalGenerator | LabeledImages | str | os.PathLike


def as_source(source: Source) -> SyntheticBank | ImagePool | ConditionalGenerator:
    """A bank, pool or generator from itself, from a ``LabeledImages``, or from the directory of a bank or generator."""
    if isinstance(source, (SyntheticBank, ImagePool, ConditionalGenerator)):
        return source
    if isinstance(source, LabeledImages):
        return ImagePool(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.name in (MANIFEST_NAME, PLAN_NAME, CONFIG_NAME):
            path = path.parent  # a bank's manifest or a generator's config: the directory holding it was meant
        if (path / MANIFEST_NAME).is_file() or (path / PLAN_NAME).is_file():
            return SyntheticBank.open(path)
        if (path / CONFIG_NAME).is_file() or path.suffix == ".ckpt":
            return load(path)
        if not path.exists():
            problem = "does not exist"
        elif path.is_file():
            problem = "is a file"
        else:
            problem = f"holds neither a bank ({MANIFEST_NAME}) nor a saved generator ({CONFIG_NAME})"
        raise FileNotFoundError(f"{path} {problem}; a source path is a bank directory (SyntheticBank.generate, synthaug "
                                "sample --bank) or a saved generator directory (synthaug.save, synthaug fit)")  # fmt: skip
    raise TypeError(
        "source must be a SyntheticBank, a ConditionalGenerator, a LabeledImages or the directory of a bank or "
        f"generator, got {type(source).__name__}"
    )


def is_pool(source: Any) -> bool:
    """Whether ``source`` holds its samples already (a bank or pool) rather than drawing them."""
    return isinstance(source, (SyntheticBank, ImagePool))


def draw(
    source: SyntheticBank | ImagePool | ConditionalGenerator,
    labels: torch.Tensor,
    generator: torch.Generator,
    **sample_options: Any,
) -> torch.Tensor:
    """``uint8`` images ``(len(labels), C, H, W)`` of the given classes, on the CPU.

    From a bank or pool: a uniformly random sample of each class; from a generator: fresh samples
    (``sample_options`` go to its ``sample``).
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
    if is_pool(source):
        if sample_options:
            raise ValueError(f"sampling options {sorted(sample_options)} apply to a generator, not to stored samples")
        picks = torch.empty(len(labels), dtype=torch.int64)
        for label in labels.unique().tolist():
            where = labels == label
            pool = source.indices_of(label)
            if len(pool) == 0:
                raise ValueError(f"the source has no samples of class {label} ({source.class_names[label]!r})")
            picks[where] = pool[torch.randint(len(pool), (int(where.sum()),), generator=generator)]
        return source.images(picks)
    return sample_uint8(source, labels, generator=generator, **sample_options)


def source_sha256(source: Source) -> str:
    """The sha256 that identifies a source's content: a bank's manifest (and a view's selection), a
    generator's weights as recorded at save or load (hashed afresh only if they changed since), or a
    pool's images, labels and selection."""
    source = as_source(source)
    return weights_sha256(source) if isinstance(source, ConditionalGenerator) else source.sha256


def source_fingerprint(source: Source, sample_options: Mapping[str, Any] | None = None) -> str:
    """A string that changes exactly when what ``source`` yields changes: its kind, its
    :func:`source_sha256` and, for a generator, its effective sampling options."""
    source = as_source(source)
    if isinstance(source, SyntheticBank):
        return f"bank:{source.sha256}"
    if isinstance(source, ImagePool):
        return f"images:{source.sha256}"
    options = source.sample_options_record(sample_options or {})
    return f"{source.family}:{source_sha256(source)}:{json.dumps(options, sort_keys=True)}"


def training_fingerprint(source: Source) -> DataFingerprint | None:
    """The fingerprint of the real images ``source`` learned from or copies: a bank's or generator's recorded
    training data (``None`` when it recorded none), or a pool's own images."""
    source = as_source(source)
    if isinstance(source, ImagePool):
        return DataFingerprint.from_tensors(source.images(range(len(source))), source.labels, source.num_classes)
    return source.training_data


def check_classes(source: SyntheticBank | ImagePool | ConditionalGenerator, labels: Sequence[int] | torch.Tensor,
                  what: str) -> None:  # fmt: skip
    """Every label must be a class the source can provide."""
    labels = torch.as_tensor(labels)
    bad = sorted(set(labels[(labels < 0) | (labels >= source.num_classes)].tolist()))
    if bad:
        raise ValueError(
            f"{what} has labels {bad[:10]} but the synthetic source only has classes 0..{source.num_classes - 1} "
            f"{list(source.class_names)}; use a bank or generator trained on the same classes"
        )
    if is_pool(source):
        empty = [c for c in labels.unique().tolist() if len(source.indices_of(c)) == 0]
        if empty:
            raise ValueError(f"the source has no samples of classes {empty}, which {what} needs; generate them")


def check_soft_labels(targets: torch.Tensor, num_classes: int, rows: int | None = None, *, what: str = "soft labels") -> torch.Tensor:
    """``targets`` as ``float32`` probability rows ``(N, num_classes)``, after checking they are ones."""
    targets = torch.as_tensor(targets)
    if targets.ndim != 2 or targets.shape[1] != num_classes or (rows is not None and len(targets) != rows):
        expected = f"({rows if rows is not None else 'N'}, {num_classes})"
        raise ValueError(f"{what} must have shape {expected}: one probability per class, got {tuple(targets.shape)}")
    targets = targets.float()
    if not torch.isfinite(targets).all() or (targets < 0).any():
        raise ValueError(f"{what} must be finite and non-negative")
    sums = targets.sum(1)
    bad = torch.nonzero((sums - 1).abs() > 1e-3).flatten()
    if len(bad):
        raise ValueError(f"{what} rows must sum to 1; row {int(bad[0])} sums to {float(sums[bad[0]]):.4g}: "
                         "pass probabilities (softmax outputs), not logits")  # fmt: skip
    return targets


@dataclass(frozen=True)
class ImageFormat:
    """How a real image looks, so synthetic ones can be made to look the same."""

    kind: Literal["pil", "numpy", "tensor"]
    shape: tuple[int, int, int]  # (C, H, W)
    dtype: Any = None  # numpy or torch dtype for "numpy"/"tensor"
    layout: Literal["CHW", "HWC", "HW"] = "CHW"
    pil_mode: str | None = None
    #: float images: (mean, std) per channel applied after scaling to [0, 1]; None for plain [0, 1]
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @classmethod
    def of(
        cls, image: Any, *, normalize: tuple[Sequence[float], Sequence[float]] | None = None, where: str = "item 0"
    ) -> ImageFormat:
        """Learn the format from one real image; ``normalize=(mean, std)`` describes normalised floats."""
        from PIL import Image

        norm = cls.normalization(normalize)
        if isinstance(image, Image.Image):
            if image.mode not in ("L", "RGB"):
                raise ValueError(f"{where}: PIL images must be mode 'L' or 'RGB', got {image.mode!r}")
            return cls("pil", (1 if image.mode == "L" else 3, image.height, image.width), pil_mode=image.mode)
        if isinstance(image, np.ndarray):
            if image.ndim == 2:
                return cls("numpy", (1, *image.shape), dtype=image.dtype, layout="HW")
            if image.ndim == 3 and image.shape[2] in (1, 3):
                return cls("numpy", (image.shape[2], *image.shape[:2]), dtype=image.dtype, layout="HWC")
            raise ValueError(f"{where}: numpy images must be (H, W) or (H, W, C), got {image.shape}")
        if isinstance(image, torch.Tensor):
            if image.ndim != 3 or image.shape[0] not in (1, 3):
                raise ValueError(f"{where}: tensor images must be (C, H, W) with C in 1 or 3, got {tuple(image.shape)}")
            shape = (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]))
            if image.is_floating_point() and norm is None and (image.min() < 0 or image.max() > 1):
                raise ValueError(
                    f"{where} is a float tensor with values in [{float(image.min()):.3g}, {float(image.max()):.3g}], "
                    "not [0, 1]: pass normalize=(mean, std) as used by your transform, or wrap the dataset "
                    "before normalising and give the normalisation as transform="
                )
            if not image.is_floating_point() and norm is not None:
                raise ValueError(f"normalize= is for float images; {where} has dtype {image.dtype}")
            return cls("tensor", shape, dtype=image.dtype, normalize=norm)
        raise TypeError(f"{where}: expected an image (PIL.Image, numpy array or tensor), got {type(image).__name__}")

    @staticmethod
    def normalization(
        normalize: tuple[Sequence[float], Sequence[float]] | None,
    ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """``(mean, std)`` as tuples of floats (one per channel, or one for all)."""
        if normalize is None:
            return None
        mean, std = (tuple(float(v) for v in np.atleast_1d(np.asarray(x, dtype=np.float64))) for x in normalize)
        return mean, std

    def convert(self, image: torch.Tensor) -> Any:
        """One ``uint8`` ``(C, H, W)`` image in this format."""
        if self.kind == "tensor":
            return self.convert_batch(image[None])[0]
        hwc = image.permute(1, 2, 0).numpy()
        if self.kind == "pil":
            from PIL import Image

            return Image.fromarray(hwc[:, :, 0] if self.pil_mode == "L" else hwc, mode=self.pil_mode)
        out = hwc[:, :, 0] if self.layout == "HW" else hwc
        if np.issubdtype(self.dtype, np.floating):
            return (out / 255.0).astype(self.dtype)
        return out.astype(self.dtype, copy=True)

    def convert_batch(self, images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """``uint8`` ``(N, C, H, W)`` images as a tensor batch in this format (tensor formats only)."""
        images = images.to(device) if device is not None else images
        if not self.dtype.is_floating_point:
            return images.to(self.dtype)
        x = images.to(self.dtype) / 255.0
        if self.normalize is not None:
            mean, std = (torch.tensor(v, dtype=self.dtype, device=x.device).view(-1, 1, 1) for v in self.normalize)
            x = (x - mean) / std
        return x


def label_like(reference: Any, label: int) -> Any:
    """``label`` in the type of a real item's label (int, numpy integer or 0-d tensor)."""
    if isinstance(reference, torch.Tensor):
        return torch.tensor(label, dtype=reference.dtype)
    if isinstance(reference, np.generic):
        return reference.dtype.type(label)
    return int(label)
