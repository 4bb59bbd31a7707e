"""A cost over two parameters, as contours and as a 3-D surface, with descent paths on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from descend.viz._common import PALETTE, _check_suffix, finish, new_figure, write_text

__all__ = ["local_minima", "surface", "surface_html"]

_MINIMUM_MARKERS = ("*", "P", "X", "D", "^")


def _as_paths(trajectories, labels) -> list[tuple[str, np.ndarray]]:
    """(label, (n, 2) array) pairs from an array, a list, a dict or Recorder(s)."""
    if trajectories is None:
        return []
    if isinstance(trajectories, Mapping):
        items = list(trajectories.items())
    elif hasattr(trajectories, "snapshots") or (
        isinstance(trajectories, np.ndarray) and trajectories.ndim == 2
    ):
        items = [(None, trajectories)]
    else:
        items = [(None, t) for t in trajectories]
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ValueError(f"labels has {len(labels)} names for {len(items)} trajectories")
        items = [(label, t) for label, (_, t) in zip(labels, items, strict=True)]
    out = []
    for i, (label, t) in enumerate(items):
        arr = np.asarray(getattr(t, "snapshots", t), dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 1:
            raise ValueError(
                f"trajectory {label or i} must have shape (n_points, 2) (two parameters per "
                f"point), got {arr.shape}"
            )
        out.append((str(label) if label is not None else f"path {i + 1}", arr))
    return out


def _cost_fn(cost) -> Callable:
    fn = getattr(cost, "cost", cost)
    if not callable(fn):
        raise TypeError(
            "cost must be a callable (p0, p1) -> cost or a TwoParameterProblem, got "
            f"{type(cost).__name__}"
        )

    def grid_cost(P0, P1):
        try:
            Z = np.asarray(fn(P0, P1), dtype=np.float64)
            if Z.shape == np.shape(P0):
                return Z
        except (TypeError, ValueError):
            pass
        # A function of two scalars: evaluate point by point.
        return np.vectorize(lambda a, b: float(fn(a, b)))(P0, P1).astype(np.float64)

    return grid_cost


def _bounds(cost, bounds, paths, minima):
    if bounds is None:
        bounds = getattr(cost, "bounds", None)
    if bounds is not None:
        (x0, x1), (y0, y1) = bounds
    else:
        pts = [p for _, p in paths] + [np.array(list(minima.values()), dtype=float).reshape(-1, 2)]
        pts = np.concatenate([p for p in pts if len(p)]) if any(len(p) for p in pts) else None
        if pts is None:
            raise ValueError("give bounds=((p0_min, p0_max), (p1_min, p1_max)) or trajectories")
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = np.maximum((hi - lo) * 0.15, 0.5)
        (x0, y0), (x1, y1) = lo - pad, hi + pad
    return (float(x0), float(x1)), (float(y0), float(y1))


def _prepare(cost, trajectories, labels, minima, bounds, resolution, param_names):
    if minima is None:
        minima = getattr(cost, "minima", {}) or {}
    if not isinstance(minima, Mapping):
        minima = {f"minimum {i + 1}": m for i, m in enumerate(minima)}
    paths = _as_paths(trajectories, labels)
    (x0, x1), (y0, y1) = _bounds(cost, bounds, paths, minima)
    # Let the paths' extremes in: a path that leaves the box is drawn whole.
    for _, p in paths:
        finite = p[np.isfinite(p).all(axis=1)]
        if len(finite):
            x0, x1 = min(x0, finite[:, 0].min()), max(x1, finite[:, 0].max())
            y0, y1 = min(y0, finite[:, 1].min()), max(y1, finite[:, 1].max())
    P0, P1 = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    fn = _cost_fn(cost)
    Z = fn(P0, P1)
    names = param_names or getattr(cost, "param_names", None) or ("θ₀", "θ₁")
    return fn, paths, minima, P0, P1, Z, names


def _levels(Z, levels: int, log_scale: bool) -> np.ndarray:
    finite = Z[np.isfinite(Z)]
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    if log_scale:
        # Dense near the minimum, sparse on the walls: the valley floor stays visible.
        return np.concatenate([[lo], lo + (hi - lo) * np.geomspace(1e-3, 1.0, levels - 1)])
    return np.linspace(lo, hi, levels)


def surface(
    cost,
    trajectories=None,
    *,
    labels=None,
    minima=None,
    bounds=None,
    resolution: int = 80,
    kind: str = "both",
    levels: int = 25,
    log_scale: bool = True,
    param_names=None,
    title: str | None = None,
    figsize=None,
    path=None,
):
    """Draw a cost over two parameters as contours and a 3-D surface, with descent paths.

    Each path is drawn in its own colour with its start (circle) and end (cross) marked; known
    minima are starred; a legend names everything.

    Parameters
    ----------
    cost : callable or TwoParameterProblem
        ``cost(p0, p1)``, evaluated on grids (arrays) when it can be, else point by point; or a
        problem from :mod:`descend.experiments` (its cost, minima, bounds and parameter names
        are then the defaults).
    trajectories : ndarray of shape (n_points, 2), list or dict of them, or Recorder, optional
        Descent paths; a dict maps legend labels to paths (as returned by
        :func:`descend.experiments.descent_paths`).
    labels : list of str, optional
        Legend labels (default: the dict's keys, or "path 1", ...).
    minima : dict of str to (float, float), or list of points, optional
        Known minima (default: the problem's).
    bounds : ((p0_min, p0_max), (p1_min, p1_max)), optional
        The region drawn (default: the problem's, or around the paths); widened to hold every
        path.
    resolution : int, default 80
        Grid points per axis.
    kind : {"both", "contour", "3d"}, default "both"
    levels : int, default 25
        Contour levels.
    log_scale : bool, default True
        Space the contour levels geometrically above the minimum (shows the valley floor).
    param_names : (str, str), optional
    title : str, optional
    figsize : (float, float), optional
    path : str or Path, optional
        Save the figure: ``.png``, ``.svg`` or ``.pdf``; ``.html`` writes the interactive 3-D
        view of :func:`surface_html` instead (the returned value is still this figure).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> bowl = lambda w, b: w**2 + 3 * b**2
    >>> steps = np.array([[2.0, 1.0], [1.2, 0.4], [0.7, 0.16], [0.4, 0.06]])
    >>> fig = ds.viz.surface(bowl, {"GD": steps}, minima={"minimum": (0, 0)})
    >>> len(fig.axes)     # contours, their colour bar, the 3-D view
    3
    """
    if kind not in ("both", "contour", "3d"):
        raise ValueError(f"kind must be 'both', 'contour' or '3d', got {kind!r}")
    fn, paths, minima, P0, P1, Z, names = _prepare(
        cost, trajectories, labels, minima, bounds, resolution, param_names
    )
    ncols = 2 if kind == "both" else 1
    fig = new_figure(figsize or (6.0 * ncols, 5.0))
    if kind in ("both", "contour"):
        ax = fig.add_subplot(1, ncols, 1)
        _contour(ax, P0, P1, Z, paths, minima, names, levels, log_scale)
    if kind in ("both", "3d"):
        ax3 = fig.add_subplot(1, ncols, ncols, projection="3d")
        _surface3d(ax3, fn, P0, P1, Z, paths, minima, names)
    if title is None:
        title = getattr(cost, "name", None)
    if title:
        fig.suptitle(title, fontsize=11)
    if path is not None and Path(path).suffix.lower() == ".html":
        surface_html(
            cost, trajectories, labels=labels, minima=minima, bounds=bounds,
            resolution=resolution, param_names=param_names, title=title, path=path,
        )  # fmt: skip
        return fig
    return finish(fig, path)


def _contour(ax, P0, P1, Z, paths, minima, names, levels, log_scale):
    from matplotlib.lines import Line2D

    cs = ax.contourf(P0, P1, Z, levels=_levels(Z, levels, log_scale), cmap="viridis", alpha=0.9)
    ax.contour(P0, P1, Z, levels=cs.levels, colors="white", linewidths=0.3, alpha=0.5)
    handles = []
    # Long (noisy) paths underneath, short (smooth) ones on top, so every path stays visible.
    depth = {
        i: rank for rank, i in enumerate(sorted(range(len(paths)), key=lambda i: -len(paths[i][1])))
    }
    for i, (label, p) in enumerate(paths):
        color = PALETTE[i % len(PALETTE)]
        z = 3 + 0.1 * depth[i]
        lw = 0.5 if len(p) > 1000 else (0.9 if len(p) > 200 else 1.6)
        ax.plot(p[:, 0], p[:, 1], "-", color=color, lw=lw, alpha=0.85, zorder=z)
        if len(p) <= 60:
            ax.plot(p[:, 0], p[:, 1], ".", color=color, ms=4, zorder=z)
        ax.plot(*p[0], "o", mfc="white", mec=color, mew=2, ms=8, zorder=7)
        # Above every path (a long SGD path would bury it) and ringed in white to stand out.
        ax.plot(*p[-1], "X", color=color, mec="white", mew=1.2, ms=15, zorder=8)
        handles.append(Line2D([], [], color=color, lw=2, label=f"{label} ({len(p) - 1} updates)"))
    for k, (name, m) in enumerate(minima.items()):
        marker = _MINIMUM_MARKERS[min(k, len(_MINIMUM_MARKERS) - 1)] if k else "*"
        # On top of an end marker that lands on it (the ends are larger, so both show).
        ax.plot(*m, marker, color="white", mec="black", ms=11 if k == 0 else 9, zorder=9)
        handles.append(
            Line2D([], [], ls="", marker=marker, color="white", mec="black", ms=10, label=name)
        )
    if paths:
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="0.2", ms=7,
                              label="start"))  # fmt: skip
        handles.append(Line2D([], [], ls="", marker="X", color="0.2", ms=8, label="end"))
    ax.set_xlim(P0.min(), P0.max())
    ax.set_ylim(P1.min(), P1.max())
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.figure.colorbar(cs, ax=ax, label="cost", shrink=0.85)
    if handles:
        # Under the axes, not on them: inside, it covered paths and minima.
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  ncol=2, frameon=False)  # fmt: skip


def _surface3d(ax, fn, P0, P1, Z, paths, minima, names):
    # mplot3d sorts artists by depth, which buries lines under the surface; draw them on top.
    ax.computed_zorder = False
    ax.plot_surface(P0, P1, Z, cmap="viridis", alpha=0.6, linewidth=0, antialiased=True,
                    rcount=40, ccount=40, zorder=1)  # fmt: skip
    lift = 0.01 * float(np.nanmax(Z) - np.nanmin(Z))
    for i, (label, p) in enumerate(paths):
        color = PALETTE[i % len(PALETTE)]
        z = fn(p[:, 0], p[:, 1]) + lift
        ax.plot(p[:, 0], p[:, 1], z, "-", color=color, lw=0.6 if len(p) > 1000 else 1.2,
                label=label, zorder=5 + 0.1 * i)  # fmt: skip
        ax.scatter(*p[0], z[0], color="white", edgecolors=color, s=40, zorder=6)
        ax.scatter(*p[-1], z[-1], color=color, marker="X", s=110, edgecolors="white",
                   linewidths=1.0, zorder=8)  # fmt: skip
    for m in minima.values():
        zm = float(fn(np.array([m[0]]), np.array([m[1]]))[0])
        ax.scatter(m[0], m[1], zm, marker="*", color="white", edgecolors="black", s=120, zorder=7)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_zlabel("cost")
    ax.view_init(elev=35, azim=-60)
    ax.set_box_aspect(None, zoom=0.88)  # room for the axis labels


def surface_html(
    cost,
    trajectories=None,
    *,
    labels=None,
    minima=None,
    bounds=None,
    resolution: int = 60,
    param_names=None,
    title: str | None = None,
    path=None,
):
    """The 3-D cost surface with descent paths as interactive HTML (plotly), viewable offline.

    The file holds plotly.js itself (``include_plotlyjs=True``, about 4 MB): it opens in any
    browser without a network connection.

    Parameters
    ----------
    cost, trajectories, labels, minima, bounds, param_names, title
        As for :func:`surface`.
    resolution : int, default 60
    path : str or Path, optional
        Where to write the ``.html`` file.

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> fig = ds.viz.surface_html(lambda w, b: w**2 + b**2, np.array([[1.0, 1.0], [0.5, 0.5]]),
    ...                           bounds=((-1, 1), (-1, 1)))
    >>> [trace.type for trace in fig.data][:2]
    ['surface', 'scatter3d']
    """
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - the plots extra installs it
        raise ImportError(
            'surface_html needs plotly; install it with: pip install "descend[plots]"'
        ) from exc
    fn, paths, minima, P0, P1, Z, names = _prepare(
        cost, trajectories, labels, minima, bounds, resolution, param_names
    )
    fig = go.Figure()
    fig.add_trace(go.Surface(x=P0, y=P1, z=Z, colorscale="Viridis", opacity=0.8, name="cost",
                             showscale=True))  # fmt: skip
    for i, (label, p) in enumerate(paths):
        color = PALETTE[i % len(PALETTE)]
        z = fn(p[:, 0], p[:, 1])
        fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=z, mode="lines", name=label,
                                   line={"color": color, "width": 4}))  # fmt: skip
        fig.add_trace(go.Scatter3d(
            x=[p[0, 0], p[-1, 0]], y=[p[0, 1], p[-1, 1]], z=[z[0], z[-1]], mode="markers",
            marker={"color": ["white", color], "size": [6, 7], "symbol": ["circle", "x"],
                    "line": {"color": color, "width": 2}},
            name=f"{label}: start, end", showlegend=False,
        ))  # fmt: skip
    if minima:
        pts = np.array(list(minima.values()), dtype=np.float64)
        fig.add_trace(go.Scatter3d(
            x=pts[:, 0], y=pts[:, 1], z=fn(pts[:, 0], pts[:, 1]), mode="markers+text",
            text=list(minima), marker={"color": "white", "size": 6, "symbol": "diamond",
                                       "line": {"color": "black", "width": 2}},
            name="known minima",
        ))  # fmt: skip
    fig.update_layout(
        title=title or getattr(cost, "name", None),
        scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": "cost"},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
    )
    if path is not None:
        _check_suffix(path, ("html",))
        write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return fig


def local_minima(result, lr: float | None = None, *, max_paths: int | None = None, path=None):
    """Every run of :func:`descend.experiments.local_minima` at one learning rate.

    One panel per batch size, on the contours of the cost: paths coloured by outcome (global
    minimum, local minimum, diverged), starts as dots, the known minima starred, and the
    fraction of runs that reached the global minimum in the panel's title.

    Parameters
    ----------
    result : LocalMinimaResult
    lr : float, optional
        Which learning rate (default: the middle one of the run).
    max_paths : int, optional
        Draw only the first this many runs per panel (the fractions count all).
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> result = ds.experiments.local_minima(batch_sizes=("full", 1), lrs=(0.05,), n_starts=10,
    ...                                      steps=50)
    >>> len(ds.viz.local_minima(result).axes)
    2
    """
    from matplotlib.lines import Line2D

    lrs = result.settings["lrs"]
    if lr is None:
        lr = lrs[len(lrs) // 2]
    lr = float(lr)
    if lr not in lrs:
        raise ValueError(f"lr={lr} was not run; the result has lrs {lrs}")
    sizes = sorted({b for b, r in result.paths if r == lr}, reverse=True)
    problem = result.problem
    (x0, x1), (y0, y1) = problem.bounds
    P0, P1 = np.meshgrid(np.linspace(x0, x1, 120), np.linspace(y0, y1, 120))
    Z = problem.cost(P0, P1)
    colors = {"global": "#009E73", "local": "#E69F00", "diverged": "#CC79A7", "other": "0.5"}
    fig = new_figure((4.2 * len(sizes), 4.4))
    axes = fig.subplots(1, len(sizes), sharey=True, squeeze=False)[0]
    for ax, b in zip(axes, sizes, strict=True):
        ax.contourf(P0, P1, Z, levels=_levels(Z, 25, True), cmap="Greys_r", alpha=0.55)
        paths, outcome = result.paths[(b, lr)], result.outcomes[(b, lr)]
        count = len(paths) if max_paths is None else min(max_paths, len(paths))
        for p, o in zip(paths[:count], outcome[:count], strict=True):
            ax.plot(p[:, 0], p[:, 1], "-", color=colors[o], lw=0.6, alpha=0.6)
            ax.plot(p[0, 0], p[0, 1], ".", color=colors[o], ms=3)
        for k, m in enumerate(problem.minima.values()):
            ax.plot(*m, "*", color="white" if k == 0 else "#E69F00", mec="black", ms=14, zorder=5)
        row = next(r for r in result.rows if r["batch size"] == b and r["lr"] == lr)
        ax.set_title(f"{row['variant']}\nglobal {row['global']:.0%}, local {row['local']:.0%}"
                     + (f", diverged {row['diverged']:.0%}" if row["diverged"] else ""),
                     fontsize=9)  # fmt: skip
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel(problem.param_names[0])
    axes[0].set_ylabel(problem.param_names[1])
    handles = [Line2D([], [], color=c, lw=2, label=f"ends in {o}") for o, c in colors.items()
               if o != "other"]  # fmt: skip
    handles.append(Line2D([], [], ls="", marker="*", color="white", mec="black", ms=12,
                          label="global minimum"))  # fmt: skip
    handles.append(Line2D([], [], ls="", marker="*", color="#E69F00", mec="black", ms=12,
                          label="local minima"))  # fmt: skip
    axes[-1].legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.85)
    s = result.settings
    fig.suptitle(
        f"{problem.name}: {s['n_starts']} starts, {s['steps']} updates each, lr = {lr:g}",
        fontsize=10,
    )
    return finish(fig, path)
