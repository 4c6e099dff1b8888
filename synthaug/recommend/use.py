"""Everything a recipe says about training, built at once for :func:`~synthaug.classifier.train_classifier`."""

from __future__ import annotations

import os
from typing import Any

from synthaug.augment import SyntheticAugment
from synthaug.classic import Transformed
from synthaug.data.labeled import LabeledImages
from synthaug.recipe import Recipe, as_recipe
from synthaug.transforms import SyntheticMix


def recipe_training(recipe: Recipe | str | os.PathLike, real: LabeledImages, *, seed: int = 0) -> dict[str, Any]:
    """``{"dataset", "policy", "label_smoothing", "mixup_alpha", "cutmix_alpha", "batch_transform"}`` for
    ``train_classifier(**recipe_training(path, real), image_shape=..., num_classes=...)``: the real images with
    the recipe's per-image augmentation (and appended samples), its batch policy, loss options and the
    :class:`~synthaug.transforms.SyntheticMix` that blends samples into batches. Works for a baseline recipe too.
    """
    recipe = as_recipe(recipe)
    if recipe.is_synthetic and not recipe.mixes_batches:
        dataset: Any = SyntheticAugment.from_recipe(recipe, real, seed=seed)
    else:
        transform = recipe.transform(seed=seed)
        dataset = Transformed(real, transform) if transform is not None else real
    return {"dataset": dataset, "policy": recipe.policy(seed=seed), "label_smoothing": recipe.arm["label_smoothing"],
            "mixup_alpha": recipe.arm["mixup_alpha"], "cutmix_alpha": recipe.arm["cutmix_alpha"],
            "batch_transform": SyntheticMix.from_recipe(recipe, real, seed=seed) if recipe.mixes_batches else None}  # fmt: skip
