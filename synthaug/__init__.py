"""synthaug: train class-conditional generators on your labelled images and use their samples as extra training data."""

__version__ = "0.1.0"

from synthaug.data import LabeledImages
from synthaug.generators import GENERATORS, ConditionalGenerator
from synthaug.io import load, save
from synthaug.training import fit

__all__ = ["GENERATORS", "ConditionalGenerator", "LabeledImages", "__version__", "fit", "load", "save"]
