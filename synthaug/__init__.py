"""synthaug: train class-conditional generators on your labelled images and use their samples as extra training data."""

from synthaug._version import __version__
from synthaug.augment import SyntheticAugment
from synthaug.bank import SyntheticBank
from synthaug.compress import compress
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
    "compress",
    "fit",
    "load",
    "save",
]
