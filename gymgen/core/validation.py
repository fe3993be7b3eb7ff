"""Checks for constructor keyword arguments: type, finiteness and range, with errors that name the value.

Every env constructor calls these on its numeric (and choice) kwargs before doing any work, so
``HyperGrid(R0=float("nan"))`` fails at once with ``InvalidArgumentError: HyperGrid: R0 must be a finite
number >= 0, got nan`` instead of producing NaN rewards later. Python and numpy ints and floats are
accepted; ``bool`` is rejected where a number is expected (``True`` is an int to Python, never a count
to a user); strings are never coerced. Checks return the value converted to a plain ``int``/``float``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np


class InvalidArgumentError(ValueError, TypeError):
    """A constructor argument of the wrong type or outside its range (both a ``ValueError`` and a
    ``TypeError``, so callers catching either see it)."""


def _fail(owner: str | None, name: str, expected: str, value: Any) -> InvalidArgumentError:
    where = f"{owner}: " if owner else ""
    return InvalidArgumentError(f"{where}{name} must be {expected}, got {value!r}")


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def _in_range(v: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (v <= low if low_open else v < low):
        return False
    return not (high is not None and (v >= high if high_open else v > high))


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None,
              owner: str | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]``; accepts numpy ints, rejects bools, floats and strings."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(owner, name, "an int" + _range_text(low, high, False, False), value)
    v = int(value)
    if not _in_range(v, low, high, False, False):
        raise _fail(owner, name, "an int" + _range_text(low, high, False, False), value)
    return v


def check_float(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, optional: bool = False,
                owner: str | None = None) -> float | None:
    """``value`` as a finite ``float`` in the given range (open ends with ``low_open``/``high_open``);
    accepts Python/numpy ints and floats, rejects bools, strings, NaN and +-inf (``None`` too unless
    ``optional``, when it is returned as is)."""
    if optional and value is None:
        return None
    expected = ("None or " if optional else "") + "a finite number" + _range_text(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(owner, name, expected, value)
    v = float(value)
    if not math.isfinite(v) or not _in_range(v, low, high, low_open, high_open):
        raise _fail(owner, name, expected, value)
    return v


def check_bool(name: str, value: Any, *, owner: str | None = None) -> bool:
    """``value`` when it is a ``bool`` (numpy bools included); no truthiness of ints or strings."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise _fail(owner, name, "a bool (True or False)", value)


def check_choice(name: str, value: Any, choices: Iterable[Any], *, owner: str | None = None) -> Any:
    """``value`` when it is one of ``choices`` (compared by equality and type, so ``1`` is not ``True``)."""
    options = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in options):
        raise _fail(owner, name, f"one of {options}", value)
    return value
