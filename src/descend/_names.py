"""Built-ins by name: each parameter that takes a name ("relu", "mse") also takes a callable."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence


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
        close = close_names(key, table)
        hint = f" (did you mean {join_or([repr(n) for n in close])}?)" if close else ""
        raise ValueError(
            f"{argument}={value!r} is not a known {what}{hint}; use one of {sorted(table)} or "
            f"{callable_hint}"
        )
    return table[key]


def close_names(text: str, names: Iterable[str], limit: int = 3) -> list[str]:
    """The names a misspelt ``text`` may mean, for a "did you mean" hint: at most ``limit``.

    Every name that holds ``text`` (separators aside) is offered, so that "crossentropy" offers
    both cross-entropies instead of the one a spelling distance happens to prefer (when more
    than ``limit`` do, the closest spellings of them); otherwise the close spellings, the
    closest first, as :func:`difflib.get_close_matches` finds them.

    Examples
    --------
    >>> close_names("crossentropy", ["auto", "categorical_cross_entropy", "bce"])
    ['categorical_cross_entropy']
    >>> close_names("cross-entropy", ["categorical_cross_entropy", "binary_cross_entropy"])
    ['categorical_cross_entropy', 'binary_cross_entropy']
    >>> close_names("adamx", ["gd", "sgd", "adam", "adamw"])
    ['adam', 'adamw']
    """

    def bare(name: str) -> str:
        return name.lower().replace("_", "").replace("-", "").replace(" ", "")

    names = list(names)
    key = bare(text)
    holding = [n for n in names if key and key in bare(n)]
    if len(holding) > limit:
        closest = difflib.get_close_matches(text, holding, n=limit, cutoff=0.0)
        holding = [n for n in holding if n in closest]
    return holding or difflib.get_close_matches(text, names, n=limit)


def join_or(names: Sequence[str]) -> str:
    """``"a"``, ``"a or b"``, ``"a, b or c"``.

    >>> join_or(["adam", "adamw", "gd"])
    'adam, adamw or gd'
    """
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
