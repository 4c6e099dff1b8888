"""Real data sources, all loaded into :class:`LabeledImages`."""

from synthaug.data.conventions import IS_SYNTHETIC, signed_to_unit, uint8_to_unit, unit_to_signed, unit_to_uint8
from synthaug.data.fingerprint import DataFingerprint, DataLeakError, check_held_out
from synthaug.data.labeled import LabeledImages, to_signed_unit, to_uint8
from synthaug.data.sources import (
    DIGITS_TRAIN_PER_CLASS,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    from_arrays,
    from_dataset,
    from_hf,
    from_image_folder,
    load_digits,
    load_fashion_mnist,
)

__all__ = [
    "DIGITS_TRAIN_PER_CLASS",
    "DataFingerprint",
    "DataLeakError",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "IS_SYNTHETIC",
    "LabeledImages",
    "check_held_out",
    "from_arrays",
    "from_dataset",
    "from_hf",
    "from_image_folder",
    "load_digits",
    "load_fashion_mnist",
    "signed_to_unit",
    "to_signed_unit",
    "to_uint8",
    "uint8_to_unit",
    "unit_to_signed",
    "unit_to_uint8",
]
