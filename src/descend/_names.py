"""Built-ins by name: each parameter that takes a name ("relu", "mse") also takes a callable."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def resolve(value: str | Callable, table: Mapping[str, Callable], *, argument: str, what: str,
            callable_hint: str) -> Callable:  # fmt: skip
    """The callable itself, or the built-in that ``value`` names (case-insensitive).

    Parameters
    ----------
    value : str or callable
    table : mapping of lower-case names to callables
    argument : str
        The parameter's name, for the error message (``"loss"``).
    what : str
        What the table holds (``"cost function"``).
    callable_hint : str
        What a callable must look like (``"a callable (pred, target) -> Tensor"``).

    Examples
    --------
    >>> resolve("ABS", {"abs": abs}, argument="f", what="function", callable_hint="a callable")
    <built-in function abs>
    """
    if callable(value):
        return value
    key = str(value).lower()
    if key not in table:
        raise ValueError(
            f"{argument}={value!r} is not a known {what}; use one of {sorted(table)} or "
            f"{callable_hint}"
        )
    return table[key]
