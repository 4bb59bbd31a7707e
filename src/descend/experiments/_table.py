"""Markdown tables for the experiments' results."""

from __future__ import annotations

import math

import numpy as np


def fmt(value, digits: int = 4) -> str:
    """A cell: floats to ``digits`` significant figures, NaN as a dash, the rest as ``str``.

    Examples
    --------
    >>> fmt(0.123456), fmt(float("nan")), fmt(3), fmt((0.5, 0.01)), fmt(2694.0)
    ('0.1235', '-', '3', '0.5 ± 0.01', '2694')
    """
    if isinstance(value, tuple) and len(value) == 2:
        mean, std = value
        if _is_nan(mean):
            return "-"
        if _is_nan(std) or std == 0:
            return fmt(mean, digits)
        return f"{fmt(mean, digits)} ± {fmt(std, 2)}"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if _is_nan(value):
            return "-"
        if float(value).is_integer() and abs(value) < 1e9:
            return str(int(value))  # counts (updates, epochs) averaged over equal seeds
        return f"{float(value):.{digits}g}"
    return str(value)


def _is_nan(value) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def markdown(rows: list[dict], digits: int = 4) -> str:
    """Rows of equal keys as a Markdown table.

    Examples
    --------
    >>> print(markdown([{"a": 1, "b": 0.5}]))
    | a | b |
    |---|---|
    | 1 | 0.5 |
    """
    if not rows:
        return ""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row[k], digits) for k in head) + " |")
    return "\n".join(lines)
