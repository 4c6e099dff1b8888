"""What the commands share: reading data sources, KEY=VALUE options, and the family options for help texts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parsers import this module; torch comes in only when a command runs
    from synthaug.data import LabeledImages

BUILTIN_DATA = ("digits", "fashion-mnist")
#: the training split of ``--data digits`` in evaluate and benchmark: this many images per class (the rest is the test set)
DIGITS_TRAIN_PER_CLASS = 50


def load_data(spec: str, *, split: str = "train", root: str | None = None, resize: int | None = None) -> LabeledImages:
    """``digits``, ``fashion-mnist`` or the path of an image folder (one sub-folder per class)."""
    from synthaug.data import from_image_folder, load_digits, load_fashion_mnist

    if spec == "digits":
        if split != "train":
            raise ValueError("digits has a single split; use --split train (or take a subset)")
        return load_digits()
    if spec == "fashion-mnist":
        return load_fashion_mnist(root, split=split)
    if Path(spec).is_dir():
        return from_image_folder(spec, resize=resize)
    raise ValueError(f"--data must be one of {BUILTIN_DATA} or an image folder; {spec!r} is neither")


def train_test(
    spec: str,
    *,
    test: str | None = None,
    root: str | None = None,
    resize: int | None = None,
    seed: int = 0,
    digits_per_class: int = DIGITS_TRAIN_PER_CLASS,
) -> tuple[LabeledImages, LabeledImages]:
    """The training and test images of ``--data`` (and ``--test-data``).

    digits: a stratified split, ``digits_per_class`` images per class to train (the same images as
    ``fit --data digits --per-class K`` with the same seed); fashion-mnist: its train and test
    splits; an image folder: ``--test-data FOLDER``, or else a stratified fifth of every class held out.
    """
    from synthaug.data import load_digits

    if spec == "digits":
        return load_digits().split(digits_per_class, seed=seed)
    if spec == "fashion-mnist":
        return load_data(spec, split="train", root=root), load_data(spec, split="test", root=root)
    data = load_data(spec, resize=resize)
    if test is not None:
        held_out = load_data(test, resize=resize)
        if held_out.class_names != data.class_names:
            raise ValueError(f"--test-data has classes {list(held_out.class_names)}, --data has {list(data.class_names)}")
        return data, held_out
    return data.holdout(0.2, seed=seed)


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
