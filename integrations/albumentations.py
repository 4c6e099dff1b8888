"""albumentations integration: an ``ImageOnlyTransform`` that swaps the image for a same-class synthetic one.

The label reaches the transform through ``targets_as_params`` (call the pipeline as
``transform(image=image, label=label)``). The transform serialises with albumentations'
``to_dict`` / ``from_dict`` as the source's path and sha256, never the model; ``from_dict``
refuses a source whose sha256 changed. Randomness comes from albumentations' own seeded
generators (``A.Compose(..., seed=...)``).
"""

from __future__ import annotations

import os

# Importing albumentations would otherwise check the network for a newer release.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from typing import Any  # noqa: E402

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthaug.bank import SyntheticBank  # noqa: E402
from synthaug.synthetic import ImageFormat, as_source, check_classes, draw  # noqa: E402
from synthaug.synthetic import source_sha256 as _sha256_of  # noqa: E402

__all__ = ["SyntheticReplaceImage"]


class SyntheticReplaceImage(A.ImageOnlyTransform):
    """With probability ``p``, replace the image by a synthetic sample of the item's class.

    Args:
        source: a :class:`~synthaug.bank.SyntheticBank` (opened), or the path of a bank or of a saved generator;
            ``to_dict`` stores the path (a bank's own), so a source without one (a live generator, a
            ``select()`` view of a bank) is refused.
        source_sha256: expected sha256 of the bank's manifest / generator's weights (checked when given;
            recorded by ``to_dict``).
        label_key: name of the label target passed to the pipeline.
        p: probability of replacing.

    Example:
        >>> pipeline = A.Compose([SyntheticReplaceImage("banks/digits", p=0.3), A.HorizontalFlip()], seed=0)  # doctest: +SKIP
        >>> out = pipeline(image=image, label=3)  # doctest: +SKIP
    """

    def __init__(
        self, source: SyntheticBank | str | os.PathLike, source_sha256: str | None = None, label_key: str = "label", p: float = 0.5
    ) -> None:
        super().__init__(p=p)
        if isinstance(source, SyntheticBank):
            if source._selection is not None:
                raise ValueError("a select() view of a bank has no path of its own for to_dict to store: write the kept "
                                 "samples to a bank of their own, or pass the whole bank")  # fmt: skip
            self.source, self._source = str(source.path), source
        elif isinstance(source, (str, os.PathLike)):
            self.source, self._source = str(source), as_source(source)
        else:
            raise TypeError(f"source must be a SyntheticBank or the path of a bank or saved generator (to_dict stores the "
                            f"path), got a {type(source).__name__}; save a generator first: synthaug.save(generator, path)")  # fmt: skip
        actual = _sha256_of(self._source)
        if source_sha256 is not None and source_sha256 != actual:
            raise ValueError(
                f"{self.source} has sha256 {actual[:12]}..., not the {source_sha256[:12]}... this transform was saved with; "
                "the bank or generator changed"
            )
        self.source_sha256 = actual
        self.label_key = label_key

    @property
    def targets_as_params(self) -> list[str]:
        return [self.label_key]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        label = int(data[self.label_key])
        check_classes(self._source, [label], "the label")
        return {"label": label, "sample_seed": int(self.random_generator.integers(2**62))}

    def apply(self, img: np.ndarray, label: int, sample_seed: int, **params: Any) -> np.ndarray:
        fmt = ImageFormat.of(img, where="the image")
        if fmt.shape != tuple(self._source.image_shape):
            raise ValueError(f"image shape (C, H, W) {fmt.shape} does not match the source's {self._source.image_shape}")
        return fmt.convert(draw(self._source, torch.tensor([label]), torch.Generator().manual_seed(sample_seed))[0])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("source", "source_sha256", "label_key")
