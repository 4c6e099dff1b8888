"""synthaug: train class-conditional generators on your labelled images and use their samples as extra training data.

The public names below are imported on first use (PEP 562), so that ``import synthaug`` and the
command line's ``--help`` do not pay for torch and Lightning until something needs them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from synthaug._version import __version__

if TYPE_CHECKING:
    from synthaug.augment import SyntheticAugment
    from synthaug.bank import SyntheticBank
    from synthaug.compress import compress
    from synthaug.data import LabeledImages
    from synthaug.generators import GENERATORS, ConditionalGenerator
    from synthaug.io import load, save
    from synthaug.recipe import Recipe, load_recipe
    from synthaug.recommend import recipe_training, recommend
    from synthaug.training import fit

#: public name -> the module that defines it
_LAZY = {
    "GENERATORS": "synthaug.generators",
    "ConditionalGenerator": "synthaug.generators",
    "LabeledImages": "synthaug.data",
    "SyntheticAugment": "synthaug.augment",
    "SyntheticBank": "synthaug.bank",
    "compress": "synthaug.compress",
    "fit": "synthaug.training",
    "load": "synthaug.io",
    "save": "synthaug.io",
    "Recipe": "synthaug.recipe",
    "load_recipe": "synthaug.recipe",
    "recipe_training": "synthaug.recommend",
    "recommend": "synthaug.recommend",
}

__all__ = [
    "GENERATORS",
    "ConditionalGenerator",
    "LabeledImages",
    "Recipe",
    "SyntheticAugment",
    "SyntheticBank",
    "__version__",
    "compress",
    "fit",
    "load",
    "load_recipe",
    "recipe_training",
    "recommend",
    "save",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'synthaug' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``synthaug.compress`` the function once the ``synthaug.compress`` module has been imported.

    Importing a submodule sets it as an attribute of its package; that would replace the public
    function of the same name (as the eager ``from synthaug.compress import compress`` used to).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == f"{self.__name__}.{name}":
            return  # the module stays in sys.modules; the package's name is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
