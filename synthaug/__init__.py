"""synthaug: train class-conditional generators on your labelled images and use their samples as extra training data."""

__version__ = "0.1.0"

from synthaug.augment import SyntheticAugment
from synthaug.bank import SyntheticBank
from synthaug.data import LabeledImages
from synthaug.generators import GENERATORS, ConditionalGenerator
from synthaug.io import load, save
from synthaug.training import fit

__all__ = [
    "GENERATORS",
    "ConditionalGenerator",
    "LabeledImages",
    "SyntheticAugment",
    "SyntheticBank",
    "__version__",
    "fit",
    "load",
    "save",
]
