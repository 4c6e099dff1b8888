"""Classic augmentation (random flips and shifts), re-exported: it lives in :mod:`synthaug.classic`, below the
mixing objects, so that a recipe (:mod:`synthaug.recipe`) can build it for ``SyntheticAugment.from_recipe``."""

from synthaug.classic import Transformed, classic_augmentation

__all__ = ["Transformed", "classic_augmentation"]
