"""The playground from a notebook: ``ds.playground(X, y)`` on your own arrays."""

from __future__ import annotations

import atexit
from collections.abc import Callable

import numpy as np

__all__ = ["Playground", "playground"]


class Playground:
    """A playground server running in the background of this Python process.

    Attributes
    ----------
    url : str
        The page's address.

    Shown in a notebook, it is the page itself (an IFrame). :meth:`stop` ends it (so does the
    end of the kernel).
    """

    def __init__(self, server, width: int = 1100, height: int = 820) -> None:
        self._server = server
        self.url: str = server.url
        self.width, self.height = width, height
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        """Whether the server still serves."""
        return self._server.running

    def stop(self) -> None:
        """Stop the server (nothing happens the second time)."""
        self._server.stop()

    def _repr_html_(self) -> str:
        return (
            f'<iframe src="{self.url}" width="{self.width}" height="{self.height}" '
            'style="border:1px solid #ccc" title="descend playground"></iframe>'
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Playground({self.url!r}, {state})"


def _as_dataset(X, y, task: str):
    from descend.cli import data as data_module
    from descend.data import check_X_y

    X, y = check_X_y(X, y)
    if y is None:
        raise ValueError("y is required: the playground trains on (X, y); pass the targets")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D (one label or value per sample), got shape {y.shape}; pass class "
            "labels, not one-hot rows"
        )
    raw = data_module.Dataset(
        name="your data", X=X, y=None, task="auto",
        features=[f"x{i}" for i in range(X.shape[1])], target="y", source="your arrays",
    )  # fmt: skip
    raw.extra["raw_target"] = y.tolist()
    try:
        return data_module._apply_task(raw, task)
    except Exception as exc:  # the command line's errors, as a notebook expects them
        raise ValueError(str(exc)) from None


def _factory(model) -> Callable | None:
    """``sizes -> Module`` from a Module (a fresh copy of it each time) or a callable."""
    from descend.nn import Module, from_config

    if model is None or (callable(model) and not isinstance(model, Module)):
        return model
    if not isinstance(model, Module):
        raise TypeError(
            f"model must be a descend Module or a function sizes -> Module, got "
            f"{type(model).__name__}"
        )
    config, state = model.get_config(), {k: v.copy() for k, v in model.state_dict().items()}

    def copy(sizes):
        fresh = from_config(config)
        fresh.load_state_dict(state)
        return fresh

    return copy


def playground(
    X=None,
    y=None,
    *,
    model: Callable | None = None,
    task: str = "auto",
    host: str = "127.0.0.1",
    port: int = 0,
    display: bool = True,
) -> Playground:
    """Start the playground in the background, on your own data, and show it in the notebook.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), optional
        Your inputs; offered to the page as "your data" (the built-in sets stay available).
    y : ndarray of shape (n_samples,), optional
        Class labels or values.
    model : Module or callable, optional
        Your own network for your data: a Module (every reset starts again from its weights
        as they are now; the page's layer settings do not apply to it), or a function
        ``sizes -> Module`` (``sizes`` is ``[n_features, *hidden, n_outputs]`` as chosen in the
        page).
    task : {"auto", "classification", "regression"}, default "auto"
    host : str, default "127.0.0.1"
    port : int, default 0
        0 picks a free port.
    display : bool, default True
        Show the page inline (an IFrame) when running in IPython/Jupyter.

    Returns
    -------
    Playground
        ``.url``, ``.stop()``.

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(200, seed=0)
    >>> pg = ds.playground(X, y, display=False)
    >>> pg.url.startswith("http://127.0.0.1:")
    True
    >>> pg.stop()
    """
    from descend.playground.server import BackgroundServer

    if (X is None) != (y is None):
        raise ValueError("give both X and y (or neither, for the built-in data sets only)")
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    given = None if X is None else _as_dataset(X, y, task)
    factory = _factory(model)
    if factory is not None:
        if given is None:
            raise ValueError("model is for your data: pass X and y with it")
        from descend.playground.session import Session

        Session(given, factory)  # a model that does not fit the data fails here, not in the page
    server = BackgroundServer(given, factory, host=host, port=port).start()
    page = Playground(server)
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import IFrame
            from IPython.display import display as show
        except ImportError:
            return page
        if get_ipython() is not None:
            show(IFrame(page.url, width=page.width, height=page.height))
    return page
