"""synthaug's conventions in one place: image value ranges and their conversions, the "is synthetic" key, renamed arguments.

Image values (docs/design.md, "Conventions")
--------------------------------------------
=====================  ===============================  =================================================
range                  where                            conversions
=====================  ===============================  =================================================
``uint8`` [0, 255]     stored images: ``LabeledImages``, ``uint8_to_unit`` (to [0, 1]),
                       banks, ``sample_uint8``, files   ``to_signed_unit`` (to [-1, 1])
floats [0, 1]          floats a user passes or gets     ``unit_to_uint8`` (to uint8),
                       back: ``from_arrays``, a float   ``unit_to_signed`` (to [-1, 1])
                       dataset's synthetic items
floats [-1, 1]         model space only:                ``to_uint8`` (to uint8),
                       ``ConditionalGenerator.sample``, ``signed_to_unit`` (to [0, 1])
                       classifiers, teachers, features
=====================  ===============================  =================================================

Every image is ``(N, C, H, W)`` (``(C, H, W)`` for one item). Mixing objects give synthetic items in
the format of the real ones (a ``[0, 1]`` float dataset gets ``[0, 1]`` floats, PIL stays PIL).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from synthaug.data.labeled import to_signed_unit, to_uint8
from synthaug.data.sources import _to_uint8

__all__ = [
    "IS_SYNTHETIC",
    "SyntheticFlagDict",
    "renamed_argument",
    "signed_to_unit",
    "to_signed_unit",
    "to_uint8",
    "uint8_to_unit",
    "unit_to_signed",
    "unit_to_uint8",
]

#: the key (dict items and batches) and the column (HuggingFace rows) that says whether an item is synthetic
IS_SYNTHETIC = "is_synthetic"
#: the key dict items and batches used before 0.2.1; still read, with a FutureWarning, until 0.3
DEPRECATED_SYNTHETIC_KEY = "synthetic"


def uint8_to_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images in ``[0, 255]`` to ``float32`` in ``[0, 1]`` (torchvision's ``ToTensor`` range).

    Example:
        >>> uint8_to_unit(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([0., 1.])
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"uint8_to_unit takes uint8 images in [0, 255], got dtype {images.dtype}")
    return images.float().div_(255.0)


def unit_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in ``[0, 1]`` to ``uint8`` in ``[0, 255]`` (rounded); values outside ``[0, 1]`` are refused.

    Example:
        >>> unit_to_uint8(torch.tensor([0.0, 0.5, 1.0]))
        tensor([  0, 128, 255], dtype=torch.uint8)
    """
    if not images.is_floating_point():
        raise TypeError(f"unit_to_uint8 takes float images in [0, 1], got dtype {images.dtype}; uint8 images need no conversion")
    return _to_uint8(images.detach(), what="images")


def signed_to_unit(images: torch.Tensor) -> torch.Tensor:
    """Model-space floats in ``[-1, 1]`` (e.g. ``generator.sample(...)``) to ``[0, 1]`` (values outside are clipped).

    Example:
        >>> signed_to_unit(torch.tensor([-1.0, 0.0, 1.0]))
        tensor([0.0000, 0.5000, 1.0000])
    """
    if not images.is_floating_point():
        raise TypeError(f"signed_to_unit takes float images in [-1, 1], got dtype {images.dtype}; for uint8 use uint8_to_unit")
    return images.add(1.0).mul_(0.5).clamp_(0.0, 1.0)


def unit_to_signed(images: torch.Tensor) -> torch.Tensor:
    """Floats in ``[0, 1]`` to the model space ``[-1, 1]``.

    Example:
        >>> unit_to_signed(torch.tensor([0.0, 1.0]))
        tensor([-1.,  1.])
    """
    if not images.is_floating_point():
        raise TypeError(f"unit_to_signed takes float images in [0, 1], got dtype {images.dtype}; for uint8 use to_signed_unit")
    return images.mul(2.0).sub_(1.0)


class SyntheticFlagDict(dict):
    """A dict item or batch whose ``"is_synthetic"`` entry can still be read as ``"synthetic"`` (with a FutureWarning).

    The old key is not stored, so iterating, collating or saving the dict sees ``"is_synthetic"`` only;
    ``d["synthetic"]`` and ``d.get("synthetic")`` answer from it until 0.3.
    """

    def __missing__(self, key: Any) -> Any:
        if key == DEPRECATED_SYNTHETIC_KEY and IS_SYNTHETIC in self:
            warnings.warn(f"the {DEPRECATED_SYNTHETIC_KEY!r} key is deprecated (removed in 0.3); read {IS_SYNTHETIC!r}",
                          FutureWarning, stacklevel=2)  # fmt: skip
            return self[IS_SYNTHETIC]
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        if key == DEPRECATED_SYNTHETIC_KEY and key not in self and IS_SYNTHETIC in self:
            return self[key]
        return super().get(key, default)


def renamed_argument(new: Any, old: Any, *, new_name: str, old_name: str, default: Any, where: str) -> Any:
    """The value of an argument renamed from ``old_name`` to ``new_name`` (the old one warns; both given is refused).

    ``new`` and ``old`` are what the caller passed (``None`` when not given); ``default`` is the new one's default.
    """
    if old is None:
        return default if new is None else new
    if new is not None:
        raise TypeError(f"{where}: pass {new_name}= only ({old_name}= is its deprecated name), got both")
    warnings.warn(f"{where}({old_name}=...) is deprecated (removed in 0.3); use {new_name}=", FutureWarning, stacklevel=3)
    return old
