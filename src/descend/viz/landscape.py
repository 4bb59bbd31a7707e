"""The loss landscape of a trained network on a plane through its final weights."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from descend.viz._common import finish, new_figure

__all__ = ["landscape"]


def landscape(
    model,
    X=None,
    y=None,
    loss: str | Callable | None = None,
    trajectory=None,
    method: str = "pca",
    *,
    resolution: int = 25,
    extent=None,
    seed: int = 0,
    kind: str = "contour",
    levels: int = 30,
    title: str | None = None,
    figsize=None,
    path=None,
):
    """Draw the loss on a plane through the final weights, with the training path projected.

    The plane and its directions are those of :func:`descend.experiments.loss_plane` (top two
    principal components of the trajectory, or filter-normalised random directions, Li et al.
    2018). The contours show the cost on the plane; the line is the recorded trajectory
    projected onto it (start: circle, end: the final weights at the origin); the title says
    what fraction of the trajectory's variance the plane explains.

    Parameters
    ----------
    model : Module or LossPlane
        The trained network (its current weights are the plane's centre), or a
        :class:`~descend.experiments.LossPlane` already computed (then X, y, loss and
        trajectory are not needed).
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or callable
    trajectory : Recorder or ndarray of shape (n_snapshots, n_params)
        The recorded parameters (``ds.Recorder()`` passed to ``fit``), ending at the final
        weights.
    method : {"pca", "random"}, default "pca"
    resolution : int, default 25
        Grid points per axis (odd; the cost is evaluated resolution^2 times).
    extent : float or (float, float), optional
        Half-widths of the plane drawn; default 1.25 times the trajectory's reach.
    seed : int, default 0
        For the random directions.
    kind : {"contour", "both"}, default "contour"
        "both" adds a 3-D view of the same plane.
    levels : int, default 30
    title : str, optional
    figsize : (float, float), optional
    path : str or Path, optional
        Save the figure (``.png``, ``.svg`` or ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(60, seed=0)
    >>> model = ds.nn.mlp([2, 6, 2], output_activation="softmax", seed=0)
    >>> rec = ds.Recorder()
    >>> _ = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
    ...            batch_size=10, epochs=5, seed=0, callbacks=[rec], progress=False)
    >>> fig = ds.viz.landscape(model, X, y, "categorical_cross_entropy", rec, resolution=9)
    >>> "explains" in fig.axes[0].get_title()
    True
    """
    from descend.experiments.landscape import LossPlane, loss_plane

    if kind not in ("contour", "both"):
        raise ValueError(f"kind must be 'contour' or 'both', got {kind!r}")
    if isinstance(model, LossPlane):
        plane = model
    else:
        if X is None or y is None or loss is None or trajectory is None:
            raise ValueError("landscape needs model, X, y, loss and trajectory (or a LossPlane)")
        plane = loss_plane(model, X, y, loss, trajectory, method, resolution=resolution,
                           extent=extent, seed=seed)  # fmt: skip
    A, B = np.meshgrid(plane.alphas, plane.betas)
    Z = plane.losses
    ncols = 2 if kind == "both" else 1
    fig = new_figure(figsize or (6.2 * ncols, 5.0))
    ax = fig.add_subplot(1, ncols, 1)
    finite = Z[np.isfinite(Z)]
    lo, hi = float(finite.min()), float(finite.max())
    lv = lo + (max(hi - lo, 1e-12)) * np.concatenate([[0.0], np.geomspace(1e-3, 1.0, levels - 1)])
    cs = ax.contourf(A, B, Z, levels=lv, cmap="viridis")
    ax.contour(A, B, Z, levels=lv, colors="white", linewidths=0.3, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="cost", shrink=0.85)
    c = plane.coords
    ax.plot(c[:, 0], c[:, 1], "-", color="#D55E00", lw=1.2, marker="." if len(c) <= 80 else None,
            ms=3, label=f"trajectory ({len(c)} snapshots)")  # fmt: skip
    ax.plot(*c[0], "o", mfc="white", mec="#D55E00", mew=2, ms=8, label="start")
    ax.plot(0, 0, "*", color="white", mec="black", ms=14, label="final weights")
    ax.set_xlim(plane.alphas[0], plane.alphas[-1])
    ax.set_ylim(plane.betas[0], plane.betas[-1])
    if plane.method == "pca":
        e1, e2 = plane.explained_each
        ax.set_xlabel(f"PC 1 ({e1:.1%} of the variance)")
        ax.set_ylabel(f"PC 2 ({e2:.1%})")
        how = "top-2 PCA directions of the trajectory"
    else:
        ax.set_xlabel("random direction 1 (filter-normalised)")
        ax.set_ylabel("random direction 2 (filter-normalised)")
        how = "filter-normalised random directions"
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    ax.set_title(
        f"the plane explains {plane.explained:.1%} of the trajectory's variance", fontsize=10
    )
    if kind == "both":
        ax3 = fig.add_subplot(1, ncols, 2, projection="3d")
        ax3.plot_surface(A, B, Z, cmap="viridis", alpha=0.7, linewidth=0, zorder=1)
        ax3.computed_zorder = False  # the path on top of the surface, not buried in it
        ax3.plot(c[:, 0], c[:, 1], plane.projected_loss, color="#D55E00", lw=1.2, zorder=5)
        ax3.set_xlabel("direction 1")
        ax3.set_ylabel("direction 2")
        ax3.set_zlabel("cost")
    fig.suptitle(title or f"loss landscape through the final weights ({how})", fontsize=11)
    return finish(fig, path)
