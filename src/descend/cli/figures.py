"""Figures for the run folder, drawn by :mod:`descend.viz` and saved as PNG.

``descend.viz`` (and matplotlib) are imported only when a figure is drawn. A figure that cannot
be drawn (the plotting extra is not installed, a function is missing, or it fails) is skipped
with a note, which the report lists; it never fails the command.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descend.io import atomic_write


def _viz():
    """The ``descend.viz`` module on a non-interactive backend, or None where it is missing."""
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        from descend import viz
    except ImportError:
        return None
    return viz


def viz_function(name: str) -> Callable | None:
    """``descend.viz.<name>`` or None when it is not there."""
    viz = _viz()
    return None if viz is None else getattr(viz, name, None)


def experiments_module():
    """``descend.experiments`` or None when it is not there."""
    try:
        if _viz() is None:
            return None
        from descend import experiments
    except ImportError:
        return None
    return experiments


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except ImportError:  # pragma: no cover - a figure implies matplotlib
        pass
    return buffer.getvalue()


class Figures:
    """Draws figures into ``folder`` and remembers what was drawn and what was skipped.

    Attributes
    ----------
    made : list of (Path, str)
        The PNG files written, with their captions.
    skipped : list of (str, str)
        Captions of the figures that could not be drawn, with the reason.
    """

    def __init__(self, folder: Path, *, debug: bool = False, quiet: bool = False) -> None:
        self.folder = Path(folder)
        self.debug = debug
        self.quiet = quiet
        self.made: list[tuple[Path, str]] = []
        self.skipped: list[tuple[str, str]] = []

    def skip(self, caption: str, reason: str) -> None:
        """Record a figure that was not drawn."""
        self.skipped.append((caption, reason))

    def save(self, fig: Any, filename: str, caption: str) -> Path:
        """Save a figure (anything with ``savefig``) as PNG, atomically."""
        return self._write(figure_png(fig), filename, caption)

    def _write(self, data: bytes, filename: str, caption: str) -> Path:
        path = atomic_write(self.folder / filename, lambda f: f.write(data))
        self.made.append((path, caption))
        return path

    def draw(self, filename: str, caption: str, function: str, *args, **kwargs) -> Path | None:
        """Call ``descend.viz.<function>(*args, **kwargs)`` and save the figure it returns."""
        fn = viz_function(function)
        if fn is None:
            why = "matplotlib is not installed" if _viz() is None else "not available"
            self.skip(caption, f"descend.viz.{function} {why}")
            return None
        return self.call(filename, caption, lambda: fn(*args, **kwargs), f"descend.viz.{function}")

    def call(self, filename: str, caption: str, make: Callable[[], Any], what: str) -> Path | None:
        """Run ``make()`` for a figure and save it; a failure to draw is noted, not raised.

        A failure to write the file (a full disk) is raised: it concerns the whole folder.
        """
        try:
            # A plotting library's warnings (a log axis with nothing positive, a tight layout
            # that does not fit) are about the picture, not the user's run: keep them quiet.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
                if isinstance(fig, tuple):  # (figure, axes) or (figure, extra)
                    fig = fig[0]
                if not hasattr(fig, "savefig"):
                    raise TypeError(f"{what} returned {type(fig).__name__}, not a figure")
                data = figure_png(fig)
        except Exception as exc:
            if self.debug:
                raise
            reason = f"{what} failed: {type(exc).__name__}: {exc}".replace("\n", " ")
            self.skip(caption, reason)
            if not self.quiet:
                print(f"descend: warning: figure {filename} skipped ({reason})", file=sys.stderr)
            return None
        return self._write(data, filename, caption)
