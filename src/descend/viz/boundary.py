"""Decision boundaries of a classifier on two-dimensional data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from descend.viz._common import PALETTE, finish, new_figure

__all__ = ["decision_boundary"]


def decision_boundary(
    model,
    X,
    y,
    *,
    resolution: int = 200,
    margin: float = 0.5,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax=None,
    figsize=(6.0, 5.0),
    path=None,
):
    """Draw the regions a classifier assigns to each class, over 2-D data.

    The model's output on a grid decides each point's class: the largest output for several
    outputs (softmax), output > 0.5 for one (sigmoid). For one output the probability is shown
    as shading with the 0.5 contour as the boundary; for several, each class's region is
    tinted in its colour, paler where the model is less sure.

    Parameters
    ----------
    model : Module
        A classifier with 2 inputs.
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels or one-hot rows.
    resolution : int, default 200
        Grid points per axis.
    margin : float, default 0.5
        Space around the data, in the data's units.
    class_names : sequence of str, optional
    title : str, optional
        Default: the training accuracy.
    ax : matplotlib Axes, optional
    figsize : (float, float), default (6, 5)
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(100, seed=0)
    >>> model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    >>> fig = ds.viz.decision_boundary(model, X, y)
    >>> fig.axes[0].get_xlabel()
    'x₁'
    """
    from matplotlib.colors import LinearSegmentedColormap, ListedColormap

    from descend.train import predict

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"decision_boundary draws 2-D data: X must have shape (n_samples, 2), got {X.shape}"
        )
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
    labels = labels.astype(int)
    (x0, y0), (x1, y1) = X.min(axis=0) - margin, X.max(axis=0) + margin
    G0, G1 = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([G0.ravel(), G1.ravel()])
    out = np.asarray(predict(model, grid), dtype=np.float64)
    pred_X = np.asarray(predict(model, X), dtype=np.float64)
    if ax is None:
        fig = new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    n_classes = max(int(labels.max()) + 1, out.shape[1] if out.shape[1] > 1 else 2)
    colors = [PALETTE[k % len(PALETTE)] for k in range(n_classes)]
    if out.shape[1] == 1:
        p = out[:, 0].reshape(G0.shape)
        cmap = LinearSegmentedColormap.from_list("pair", [colors[0], "white", colors[1]])
        ax.contourf(G0, G1, p, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.35)
        ax.contour(G0, G1, p, levels=[0.5], colors="black", linewidths=1.5)
        hits = (pred_X[:, 0] > 0.5).astype(int) == labels
    else:
        cls = out.argmax(axis=1).reshape(G0.shape)
        conf = out.max(axis=1).reshape(G0.shape)
        cmap = ListedColormap(colors[: out.shape[1]])
        # Integers index a ListedColormap's colours directly.
        ax.imshow(cmap(cls)[..., :3], extent=(x0, x1, y0, y1), origin="lower", aspect="auto")
        # Pale where unsure: a white veil whose opacity grows as the top probability falls.
        veil = np.zeros(G0.shape + (4,))
        veil[..., :3] = 1.0
        veil[..., 3] = np.clip(1.0 - (conf - 1.0 / out.shape[1]) / (1 - 1.0 / out.shape[1]),
                               0, 1) * 0.6 + 0.25  # fmt: skip
        ax.imshow(veil, extent=(x0, x1, y0, y1), origin="lower", aspect="auto")
        ax.contour(G0, G1, cls, levels=np.arange(out.shape[1]) + 0.5, colors="black",
                   linewidths=1.0)  # fmt: skip
        hits = pred_X.argmax(axis=1) == labels
    for k in range(n_classes):
        mask = labels == k
        if mask.any():
            name = class_names[k] if class_names is not None else f"class {k}"
            ax.scatter(X[mask, 0], X[mask, 1], s=18, color=colors[k], edgecolors="black",
                       linewidths=0.5, label=name, zorder=3)  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.set_title(title or f"decision boundary; training accuracy {hits.mean():.1%}", fontsize=10)
    return finish(fig, path)
