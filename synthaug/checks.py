"""Checks of the numbers users pass: each refuses 0, negatives, non-finite values or the wrong type in one line.

The message names the argument, the rule and the value (``max_steps must be a whole number >= 1,
got 0``); ``None`` is accepted only where an argument documents it as "unset", never 0.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def check_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None, optional: bool = False) -> Any:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        limits = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be a whole number {limits}, got {value}")
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    optional: bool = False,
) -> Any:
    """``value`` as a finite ``float`` within the given bounds (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"< {below:g}" if below is not None else "", f"<= {at_most:g}" if at_most is not None else ""]  # fmt: skip
    rule = " and ".join(b for b in bounds if b)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number {rule}".rstrip() + f", got {value!r} of type {type(value).__name__}")
    number = float(value)
    if (
        not math.isfinite(number)
        or (above is not None and not number > above)
        or (at_least is not None and not number >= at_least)
        or (below is not None and not number < below)
        or (at_most is not None and not number <= at_most)
    ):
        raise ValueError(f"{name} must be a finite number {rule}".rstrip() + f", got {value}")
    return number


__all__ = ["check_float", "check_int"]
