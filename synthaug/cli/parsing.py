"""What the command parsers share, importing neither torch nor Lightning: ``synthaug --help`` stays fast.

Anything that needs the library (the families for ``--family``, their defaults for ``fit --help``)
is given as a callable and resolved only when a help text is printed or a value is checked
(:class:`LazyChoices`, callable ``help=`` and ``epilog=`` on a :class:`Parser`). The value types
(:func:`positive_int`, :func:`share`, ...) refuse 0, negatives, non-finite numbers and words in one
line that names the flag, so no command has to treat 0 as "unset".
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any


class LazyChoices(Sequence[str]):
    """Choices computed on first use (``--family`` needs the generator registry, which imports torch).

    Give the argument a ``metavar``: argparse lists the choices in the usage line otherwise, when the
    argument is added.
    """

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._names: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(sorted(self._load()))
        return self._names

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line and whose help may be computed when shown.

    ``epilog`` and any argument's ``help`` may be a zero-argument callable returning the text.
    """

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        for action in self._actions:
            if callable(action.help):
                action.help = action.help()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after every option that takes a value, unless its help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or "%(default)" in text or action.default in (None, argparse.SUPPRESS):
            return text
        if not action.option_strings or action.nargs == 0 or action.required:
            return text
        if isinstance(action.default, list):
            default = " ".join(map(str, action.default)) or "none"
        else:
            default = "%(default)s"
        return f"{text} (default: {default})" if text else f"(default: {default})"


    def _expand_help(self, action: argparse.Action) -> str:
        # argparse joins the choices into every help text's parameters, used or not: resolve lazy ones only when shown
        if isinstance(action.choices, LazyChoices) and "%(choices)" not in str(action.help):
            action = copy.copy(action)
            action.choices = None
        return super()._expand_help(action)


class RawDefaultsFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """:class:`DefaultsFormatter` that keeps the description's and epilog's line breaks."""


def _number(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of steps, images, ...)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a seed, a class index, a number of workers)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a synthetic ratio)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def share(text: str) -> float:
    """A number in (0, 1] (a share of samples to keep)."""
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value


def open_share(text: str) -> float:
    """A number in (0, 1), both ends excluded (a share of channels to remove)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (both excluded), got {text!r}")
    return value


def at_least_one(text: str) -> float:
    """A finite number >= 1 (an imbalance ratio)."""
    value = _number(text, float)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a number >= 1, got {text!r}")
    return value


def devices(text: str) -> int | str:
    """Lightning's ``devices``: ``auto``, a count >= 1, ``-1`` (all) or a comma-separated list of device indices."""
    if text == "auto":
        return text
    if text.lstrip("-").isdigit():
        value = int(text)
        if value == 0 or value < -1:
            raise argparse.ArgumentTypeError(f"must be 'auto', a count >= 1, -1 (all) or indices like 0,1; got {text!r}")
        return value
    indices = [part.strip() for part in text.split(",") if part.strip()]
    if not indices or not all(part.isdigit() for part in indices):
        raise argparse.ArgumentTypeError(f"must be 'auto', a count >= 1, -1 (all) or indices like 0,1; got {text!r}")
    return ",".join(indices) + ("," if len(indices) == 1 else "")  # Lightning reads "1," as device 1, "1" as one device


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Lightning's ``--accelerator`` and ``--devices``, the one device vocabulary of every command."""
    parser.add_argument("--accelerator", default="auto", help="cpu | gpu | mps | auto (Lightning's accelerator names)")
    parser.add_argument("--devices", type=devices, default="auto",
                        help="number of devices, -1 for all, indices like 0,1, or auto (Lightning's)")  # fmt: skip


def help_texts(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every sub-command's full help text (for tests and the docs)."""
    texts = {"": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                texts[name] = sub.format_help()
    return texts


__all__ = [
    "DefaultsFormatter",
    "LazyChoices",
    "Parser",
    "RawDefaultsFormatter",
    "add_device_arguments",
    "at_least_one",
    "devices",
    "help_texts",
    "non_negative_int",
    "open_share",
    "positive_float",
    "positive_int",
    "share",
]
