"""The door from an experiment's result to its figure, without experiments importing viz.

experiments computes and viz draws. A result's ``plot_*`` method names the figure it wants;
:mod:`descend.viz` puts its figure functions here when it is imported (``import descend``
imports it), so the method reaches the drawing code through this table and experiments has no
import of viz.
"""

from __future__ import annotations

from collections.abc import Callable

_DRAWERS: dict[str, Callable] = {}


def register(name: str, function: Callable) -> None:
    """Make ``function`` the figure drawn for ``name`` (descend.viz calls this)."""
    _DRAWERS[name] = function


def draw(name: str, *args, **kwargs):
    """Draw the figure registered under ``name`` with these arguments; return what it returns."""
    try:
        function = _DRAWERS[name]
    except KeyError:
        raise ImportError(
            f"no figure function for {name!r}: the figures come from descend.viz, which was not "
            "imported; import descend (or descend.viz), with matplotlib installed: pip install "
            '"descend[plots]"'
        ) from None
    return function(*args, **kwargs)
