"""What every figure shares: making a Figure without pyplot, saving it atomically, colours.

Figures are ``matplotlib.figure.Figure`` objects made directly, not through ``pyplot``: no
display and no global backend are needed or changed (saving uses the Agg renderer), and in a
notebook the returned Figure still shows itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAVE_FORMATS = ("png", "svg", "pdf")
# mkstemp makes files readable by their owner only; saved figures get the usual permissions.
# Colour-blind-safe (Okabe-Ito), one per run/variant.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
POSITIVE, NEGATIVE = "#0072B2", "#D55E00"


def require_matplotlib():
    """Import matplotlib, or explain how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ImportError(
            "descend.viz draws with matplotlib, which is not installed; install it with: pip "
            'install "descend[plots]"'
        ) from exc


def new_figure(figsize=(6.4, 4.8), **kwargs):
    """A Figure with constrained layout, detached from pyplot."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained", **kwargs)


def _check_suffix(path, allowed) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise ValueError(
            f"path={str(path)!r} has an unsupported extension; use one of "
            f"{', '.join('.' + a for a in allowed)}"
        )
    return suffix


def _atomic(path, write) -> Path:
    """Write ``path`` through :func:`descend.io.atomic_write` (a replaced file keeps its mode),
    creating its folder first; ``write`` receives a binary file object."""
    from descend.io import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write)


def save(fig, path, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG, SVG or PDF (from the extension), atomically; return the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from descend.viz._common import new_figure, save
    >>> fig = new_figure((2, 2)); _ = fig.subplots().plot([0, 1])
    >>> out = save(fig, pathlib.Path(tempfile.mkdtemp()) / "line.svg")
    >>> out.stat().st_size > 0
    True
    """
    fmt = _check_suffix(path, SAVE_FORMATS)
    return _atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return _atomic(path, lambda f: f.write(text.encode("utf-8")))


def finish(fig, path, dpi: int = 100):
    """Save when a path is given; return the figure."""
    if path is not None:
        save(fig, path, dpi=dpi)
    return fig


def moving_average(values, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), the same length as ``values``.

    Examples
    --------
    >>> moving_average([1.0, 3.0, 5.0], 2).tolist()
    [1.0, 2.0, 4.0]
    """
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    k = np.arange(1, v.size + 1)
    lo = np.maximum(k - window, 0)
    out[:] = (c[k] - c[lo]) / (k - lo)
    return out
