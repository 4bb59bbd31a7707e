"""Argument checks shared by the optimizers and the schedules.

Every error names the argument, says what was wrong with the value, and suggests a fix.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any


def real(name: str, value: Any) -> float:
    """``value`` as a float; TypeError if it is not a real number (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def positive(name: str, value: Any, suggestion: float) -> float:
    """A finite number > 0."""
    x = real(name, value)
    if not (math.isfinite(x) and x > 0.0):
        raise ValueError(
            f"{name} must be a positive finite number, got {x!r}; try {name}={suggestion!r}"
        )
    return x


def non_negative(name: str, value: Any, fix: str) -> float:
    """A finite number >= 0."""
    x = real(name, value)
    if not (math.isfinite(x) and x >= 0.0):
        raise ValueError(f"{name} must be a non-negative finite number, got {x!r}; {fix}")
    return x


def unit_interval(name: str, value: Any, suggestion: float) -> float:
    """A number in the half-open interval [0, 1)."""
    x = real(name, value)
    if not (0.0 <= x < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {x!r}; try {name}={suggestion!r}")
    return x


def decay_factor(name: str, value: Any, suggestion: float) -> float:
    """A multiplicative decay factor in (0, 1]."""
    x = real(name, value)
    if not (0.0 < x <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {x!r}; try {name}={suggestion!r}")
    return x


def optional_positive(name: str, value: Any, suggestion: float) -> float | None:
    """None, or a finite number > 0."""
    if value is None:
        return None
    x = real(name, value)
    if not (math.isfinite(x) and x > 0.0):
        raise ValueError(
            f"{name} must be a positive finite number or None, got {x!r}; "
            f"try {name}={suggestion!r}, or {name}=None to turn it off"
        )
    return x


def boolean(name: str, value: Any) -> bool:
    """True or False (NumPy bools accepted)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def integer(name: str, value: Any, *, minimum: int, suggestion: int | None = None) -> int:
    """An integer >= ``minimum`` (Python or NumPy integer, or a 0-d integer array)."""
    if hasattr(value, "ndim") and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    n = int(value)
    if n < minimum:
        fix = f"; try {name}={suggestion!r}" if suggestion is not None else ""
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n}{fix}")
    return n
