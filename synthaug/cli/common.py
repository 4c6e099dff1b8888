"""What the commands share: reading data sources, KEY=VALUE options, and the family options for help texts."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parsers import this module; torch comes in only when a command runs
    from synthaug.data import LabeledImages

BUILTIN_DATA = ("digits", "fashion-mnist")
#: ``--data digits``' fixed training split (``synthaug.data.load_digits(split="train")``): this many images per
#: class, drawn with seed 0; the other 1,297 are the test split that evaluate and benchmark score on
DIGITS_TRAIN_PER_CLASS = 50
#: the share of every class of an image folder held out as its test split (stratified, seed 0)
FOLDER_TEST_SHARE = 0.2
#: ``--split``: fixed splits, so that ``fit`` trains on images that ``evaluate`` and ``benchmark`` never test on
SPLITS = ("train", "test", "all")
SPLIT_HELP = ("the split of --data to train on: digits: a fixed stratified split, 50 per class (the other 1,297 are "
              "the test split evaluate and benchmark score on); fashion-mnist: its own; an image folder: a stratified "
              "fifth of every class held out (seed 0); all: every image (evaluate then refuses to test on them)")


def load_data(
    spec: str, *, split: str = "train", root: str | None = None, resize: int | None = None, channels: int | None = None
) -> LabeledImages:
    """``digits``, ``fashion-mnist`` or the path of an image folder (one sub-folder per class): the ``split``
    ``"train"``, ``"test"`` or (digits, a folder) ``"all"``; see :data:`SPLIT_HELP`."""
    from synthaug.data import from_image_folder, load_digits, load_fashion_mnist

    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if spec == "digits":
        return load_digits(split=split)
    if spec == "fashion-mnist":
        if split == "all":
            raise ValueError("fashion-mnist comes as a train and a test split: use --split train or --split test")
        return load_fashion_mnist(root, split=split)
    if Path(spec).is_dir():
        data = from_image_folder(spec, resize=resize, channels=channels)
        if split == "all":
            return data
        train, test = data.holdout(FOLDER_TEST_SHARE, seed=0)
        return train if split == "train" else test
    raise ValueError(f"--data must be one of {BUILTIN_DATA} or an image folder; {spec!r} is neither")


def train_test(
    spec: str,
    *,
    test: str | None = None,
    root: str | None = None,
    resize: int | None = None,
    channels: int | None = None,
    seed: int | None = None,
    digits_per_class: int | None = None,
) -> tuple[LabeledImages, LabeledImages]:
    """The training and test images of ``--data`` (and ``--test-data``): the splits that ``fit --split`` names.

    digits: its fixed split (500 / 1,297); fashion-mnist: its train and test splits; an image folder:
    all of it against ``--test-data FOLDER``, or else its fixed split (a stratified fifth of every class
    held out, seed 0). ``seed`` and ``digits_per_class`` are deprecated: they drew other splits, which
    ``fit`` knows nothing of (the fingerprint check refuses a generator trained on the images they test on).
    """
    if seed is not None or digits_per_class is not None:
        warnings.warn("train_test(seed=, digits_per_class=) is deprecated: the splits are fixed (see fit --split)",
                      FutureWarning, stacklevel=2)  # fmt: skip
    from synthaug.data import load_digits

    if spec == "digits" and (seed is not None or digits_per_class is not None):
        return load_digits().split(digits_per_class or DIGITS_TRAIN_PER_CLASS, seed=seed or 0)
    if spec in BUILTIN_DATA:
        return load_data(spec, split="train", root=root), load_data(spec, split="test", root=root)
    data = load_data(spec, split="all", resize=resize, channels=channels)
    if test is not None:
        held_out = load_data(test, split="all", resize=resize, channels=channels)
        if held_out.class_names != data.class_names:
            raise ValueError(f"--test-data has classes {list(held_out.class_names)}, --data has {list(data.class_names)}")
        return data, held_out
    return data.holdout(FOLDER_TEST_SHARE, seed=seed or 0)


def parse_options(pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as JSON (numbers, lists, true/false) or else kept as strings."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def family_options_help() -> str:
    """Every family's hyper-parameters with their defaults, for ``fit --help``."""
    from synthaug.generators import GENERATORS

    lines = ["family hyper-parameters (--set KEY=VALUE), with their defaults:"]
    for name, cls in sorted(GENERATORS.items()):
        options = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, tuple) else json.dumps(list(v))}"
                            for k, v in cls.config_class.options().items())  # fmt: skip
        lines.append(f"  {name}: {options}")
    return "\n".join(lines)
