"""HuggingFace ``datasets`` integration: a ``Dataset.map(batched=True)`` function that adds synthetic rows.

Rows are only ever added through ``map`` (never ``with_transform``), so the result is an ordinary
dataset with a stable fingerprint. The function pickles as its identity only: the source's path
and sha256, ``ratio``, ``seed`` and column names. That is what ``datasets`` hashes for the
fingerprint, so the fingerprint changes when the generator or bank, the ratio or the seed changes,
and only then.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthaug.bank import SyntheticBank
from synthaug.data.conventions import IS_SYNTHETIC
from synthaug.generators.base import ConditionalGenerator
from synthaug.recipe import as_recipe, not_buildable
from synthaug.seeding import torch_generator
from synthaug.synthetic import ImageFormat, as_source, check_classes, draw, source_sha256

__all__ = ["SyntheticRows"]


def _identity(source: SyntheticBank | str | os.PathLike) -> tuple[str, str]:
    if isinstance(source, ConditionalGenerator):
        raise TypeError(
            "SyntheticRows needs a source on disk so that it pickles small and fingerprints stably: save the "
            "generator (synthaug.save(generator, path)) or build a SyntheticBank, and pass its path"
        )
    path = source.path if isinstance(source, SyntheticBank) else Path(source)
    return str(path.resolve()), source_sha256(source)


def _digest(batch: dict[str, list], rows: SyntheticRows) -> str:
    """A digest of a batch's labels and images (PIL images, arrays or nested lists)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(batch[rows.label_column], dtype=np.int64).tobytes())
    for image in batch[rows.image_column]:
        data = image.tobytes() if hasattr(image, "tobytes") else np.asarray(image).tobytes()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class SyntheticRows:
    """Appends ``round(ratio * batch)`` synthetic rows to every batch, with an ``is_synthetic`` column.

    Synthetic rows take their classes from the batch's labels, their images in the batch's image
    type (PIL for an ``Image`` feature, nested lists or arrays otherwise), and ``None`` in other
    columns. With ``with_indices=True`` the rows depend only on ``(seed, batch position)``; without it, on
    ``(seed, the batch's labels and images)`` (a digest of them, so still the same for any ``num_proc``
    and any rerun; two batches with identical content get identical rows). ``with_indices=True`` is the
    cheaper and the recommended form.

    Example:
        >>> ds = ds.map(SyntheticRows("banks/fm", ratio=0.5), batched=True, with_indices=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        source: SyntheticBank | str | os.PathLike,
        ratio: float = 0.5,
        *,
        seed: int = 0,
        image_column: str = "image",
        label_column: str = "label",
    ) -> None:
        if not ratio >= 0:
            raise ValueError(f"ratio must be >= 0, got {ratio}")
        self.source_path, self.source_sha256 = _identity(source)
        self.ratio, self.seed = float(ratio), seed
        self.image_column, self.label_column = image_column, label_column
        self._source: Any = source if isinstance(source, SyntheticBank) else None

    @classmethod
    def from_recipe(
        cls, recipe: Any, *, seed: int = 0, image_column: str = "image", label_column: str = "label"
    ) -> SyntheticRows:
        """The map function of a recipe that appends synthetic samples (``recipe.json`` written by
        :func:`synthaug.recommend`, or a loaded :class:`~synthaug.recipe.Recipe`): its bank, ``ratio`` of each
        batch's rows. The recipe's augmentation belongs to the dataset's transform (``Recipe.transform()``).

        Example:
            >>> ds = ds.map(SyntheticRows.from_recipe("runs/recommend/recipe.json"), batched=True, with_indices=True)  # doctest: +SKIP
        """
        recipe = as_recipe(recipe)
        if not recipe.is_synthetic or recipe.mixes_batches or recipe.arm["mode"] != "append":
            raise ValueError(not_buildable(recipe, "SyntheticRows (appended rows)"))
        recipe.source()  # the bank must be where the recipe says
        return cls(str(recipe.bank), recipe.arm["ratio"], seed=seed, image_column=image_column, label_column=label_column)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_source"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._source = None

    @property
    def source(self) -> SyntheticBank | ConditionalGenerator:
        if self._source is None:
            self._source = as_source(self.source_path)
            if source_sha256(self._source) != self.source_sha256:
                raise ValueError(f"{self.source_path} changed since this map function was made (sha256 differs)")
        return self._source

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, list]:
        for column in (self.image_column, self.label_column):
            if column not in batch:
                raise KeyError(f"column {column!r} not in the batch (columns: {sorted(batch)}); set image_column/label_column")
        labels = torch.as_tensor(batch[self.label_column], dtype=torch.int64)
        check_classes(self.source, labels, "the dataset")
        n, k = len(labels), round(self.ratio * len(labels))
        # Without indices a batch is named by its content: a fixed stream for every batch would repeat the same rows.
        rng = torch_generator(self.seed, indices[0]) if indices else torch_generator(self.seed, "content", _digest(batch, self))
        classes = labels[torch.randint(n, (k,), generator=rng)] if n and k else labels[:0]
        images = draw(self.source, classes, rng) if len(classes) else None
        out = {column: list(values) + [None] * len(classes) for column, values in batch.items()}
        out[self.label_column] = list(batch[self.label_column]) + classes.tolist()
        if images is not None:
            reference = batch[self.image_column][0]
            fmt = ImageFormat.of(np.asarray(reference) if isinstance(reference, list) else reference, where="row 0")
            out[self.image_column] = list(batch[self.image_column]) + [fmt.convert(image) for image in images]
        flags = batch.get(IS_SYNTHETIC, [False] * n)
        out[IS_SYNTHETIC] = list(flags) + [True] * len(classes)
        return out
