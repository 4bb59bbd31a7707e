"""The loss of a trained network on a plane through its final weights (Li et al., 2018).

A network has thousands of weights, so its cost surface cannot be drawn; its restriction to a
plane can. With the final weights ``theta*`` and two directions ``d1``, ``d2`` (vectors as long as
all parameters together), the plane is

.. math:: L(\\alpha, \\beta) = C(\\theta^* + \\alpha d_1 + \\beta d_2).

Two choices of directions, as in Li, Xu, Taylor, Studer and Goldstein, "Visualizing the Loss
Landscape of Neural Nets" (NeurIPS 2018):

``"pca"``
    The top two principal components of the recorded trajectory ``theta_0 .. theta_n`` taken
    relative to the end (``theta_i - theta*``), unit length: the plane in which training moved
    most.
``"random"``
    Gaussian random directions, *filter-normalised*: for each neuron (a column of a Dense
    layer's weight matrix, shape (in, out)), the direction's column is rescaled to the norm of
    the weights' column, so that a step of 1 changes each neuron by as much as its own size;
    biases get no direction (as in the paper's code).

The trajectory is projected on the plane by least squares (for the PCA directions: the
coordinates along them). The *explained fraction* is the share of the trajectory's variance
(about its mean) that lies in the plane: for PCA, ``(s1^2 + s2^2) / sum s_i^2``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["LossPlane", "filter_normalized_direction", "loss_plane"]


@dataclass
class LossPlane:
    """The result of :func:`loss_plane`.

    Attributes
    ----------
    alphas : ndarray of shape (resolution,)
        Coordinates along ``d1``; ``alphas[resolution // 2] == 0`` exactly.
    betas : ndarray of shape (resolution,)
        Coordinates along ``d2``; ``betas[resolution // 2] == 0`` exactly.
    losses : ndarray of shape (resolution, resolution)
        ``losses[i, j]`` is the cost at ``theta* + alphas[j] d1 + betas[i] d2`` (rows follow
        ``betas``, as ``np.meshgrid``).
    center : ndarray of shape (n_params,)
        ``theta*``, the model's weights (flattened in ``named_parameters()`` order).
    directions : ndarray of shape (2, n_params)
    coords : ndarray of shape (n_snapshots, 2)
        The trajectory projected on the plane; the last row is (0, 0) when the trajectory ends
        at the model's weights.
    trajectory_loss : ndarray of shape (n_snapshots,)
        The cost at each snapshot itself.
    projected_loss : ndarray of shape (n_snapshots,)
        The cost at each snapshot's projection on the plane (the drawn path's height).
    explained : float
        The fraction of the trajectory's variance the plane explains, in [0, 1].
    explained_each : tuple of float
        The same for each direction alone (PCA: the explained variance ratios).
    method : str
    center_loss : float
        The cost at ``theta*`` (equal to ``losses`` at the centre).
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    center: np.ndarray
    directions: np.ndarray
    coords: np.ndarray
    trajectory_loss: np.ndarray
    projected_loss: np.ndarray
    explained: float
    explained_each: tuple
    method: str
    center_loss: float


def _flatten(model) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    params = model.named_parameters()
    layout = [(name, tuple(p.data.shape)) for name, p in params.items()]
    vector = np.concatenate([p.data.ravel().astype(np.float64) for p in params.values()])
    return vector, layout


def filter_normalized_direction(model, rng: np.random.Generator, ignore_bias: bool = True):
    """A random direction for ``model``'s parameters, filter-normalised (Li et al., 2018).

    Parameters
    ----------
    model : Module
    rng : numpy.random.Generator
    ignore_bias : bool, default True
        Give 1-D parameters (biases) a zero direction; else normalise each as one filter.

    Returns
    -------
    ndarray of shape (n_params,)
        Flattened in ``named_parameters()`` order.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([3, 2], seed=0)
    >>> d = filter_normalized_direction(model, np.random.default_rng(0))
    >>> w = model[0].weight.data
    >>> bool(np.allclose(np.linalg.norm(d[:6].reshape(3, 2), axis=0), np.linalg.norm(w, axis=0)))
    True
    """
    parts = []
    for p in model.named_parameters().values():
        theta = p.data.astype(np.float64)
        d = rng.standard_normal(theta.shape)
        if theta.ndim <= 1:
            if ignore_bias:
                d = np.zeros_like(theta)
            else:
                d *= np.linalg.norm(theta) / (np.linalg.norm(d) + 1e-10)
        else:
            # One filter per output unit: the columns of a (in, out) weight matrix.
            cols = d.reshape(-1, theta.shape[-1])
            target = np.linalg.norm(theta.reshape(-1, theta.shape[-1]), axis=0)
            cols *= target / (np.linalg.norm(cols, axis=0) + 1e-10)
            d = cols.reshape(theta.shape)
        parts.append(d.ravel())
    return np.concatenate(parts)


def _trajectory_array(trajectory, n_params: int) -> np.ndarray:
    snapshots = getattr(trajectory, "snapshots", trajectory)
    traj = np.asarray(snapshots, dtype=np.float64)
    if traj.ndim != 2 or traj.shape[1] != n_params:
        raise ValueError(
            f"trajectory must have shape (n_snapshots, {n_params}) (one flattened parameter "
            f"vector per row, as Recorder.snapshots), got {traj.shape}"
        )
    if len(traj) < 2:
        raise ValueError("trajectory needs at least 2 snapshots; record with ds.Recorder()")
    return traj


def _grid(extent: float, resolution: int) -> np.ndarray:
    g = np.linspace(-extent, extent, resolution)
    g[resolution // 2] = 0.0  # the plane's centre, exactly the final weights
    return g


def loss_plane(
    model,
    X,
    y,
    loss: str | Callable,
    trajectory,
    method: str = "pca",
    *,
    resolution: int = 25,
    extent: float | tuple[float, float] | None = None,
    seed: int = 0,
    ignore_bias: bool = True,
) -> LossPlane:
    """The cost on a plane through ``model``'s weights, and the trajectory projected onto it.

    The model is not changed: the plane is evaluated on a copy.

    Parameters
    ----------
    model : Module
        The trained network; its current weights are the plane's centre.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or callable
    trajectory : Recorder or ndarray of shape (n_snapshots, n_params)
        The recorded parameter vectors (``ds.Recorder().snapshots``), ending at the final
        weights.
    method : {"pca", "random"}, default "pca"
    resolution : int, default 25
        Grid points per axis (made odd, so the centre is on the grid).
    extent : float or (float, float), optional
        Half-widths of the grid along ``d1`` and ``d2``; default: 1.25 times the trajectory's
        largest coordinate on each (1 when it has none).
    seed : int, default 0
        Seeds the random directions.
    ignore_bias : bool, default True
        Random directions only: no direction for biases.

    Returns
    -------
    LossPlane

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(60, seed=0)
    >>> model = ds.nn.mlp([2, 6, 2], output_activation="softmax", seed=0)
    >>> rec = ds.Recorder()
    >>> _ = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
    ...            batch_size=10, epochs=5, seed=0, callbacks=[rec], progress=False)
    >>> plane = ds.experiments.loss_plane(model, X, y, "categorical_cross_entropy", rec,
    ...                                   resolution=11)
    >>> plane.losses.shape, plane.coords[-1].tolist()
    ((11, 11), [0.0, 0.0])
    >>> cost = ds.evaluate(model, X, y, loss="categorical_cross_entropy")["loss"]
    >>> float(plane.losses[5, 5]) == cost          # the plane passes through the final weights
    True
    """
    from descend.train import evaluate

    if method not in ("pca", "random"):
        raise ValueError(f"method must be 'pca' or 'random', got {method!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 3:
        raise ValueError(f"resolution must be an integer >= 3, got {resolution!r}")
    resolution += 1 - resolution % 2
    center, layout = _flatten(model)
    traj = _trajectory_array(trajectory, center.size)
    offsets = traj - center
    centred = offsets - offsets.mean(axis=0)
    total = float((centred * centred).sum())

    if method == "pca":
        if len(traj) < 3:
            raise ValueError("method='pca' needs at least 3 snapshots for two components")
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        directions = vt[:2].copy()
        # Fix each component's sign: the start lies on its positive side (SVD leaves it free).
        for k in range(2):
            if offsets[0] @ directions[k] < 0:
                directions[k] *= -1
        power = s * s
        each = tuple(float(v / power.sum()) if power.sum() else 0.0 for v in power[:2])
    else:
        rng = np.random.default_rng(seed)
        directions = np.stack(
            [filter_normalized_direction(model, rng, ignore_bias) for _ in range(2)]
        )
        each = tuple(
            float(((centred @ d) ** 2).sum() / (d @ d) / total) if total and d @ d else 0.0
            for d in directions
        )
    # Least squares: exact coordinates for orthonormal (PCA) directions, the nearest point of
    # the plane for the random ones.
    coords = np.linalg.lstsq(directions.T, offsets.T, rcond=None)[0].T + 0.0  # no -0.0
    q, _ = np.linalg.qr(directions.T)
    in_plane = centred @ q
    explained = float((in_plane * in_plane).sum() / total) if total else 0.0

    if extent is None:
        reach = np.abs(coords).max(axis=0) * 1.25
        extent = tuple(float(r) if r > 0 else 1.0 for r in reach)
    elif np.isscalar(extent):
        extent = (float(extent), float(extent))
    alphas, betas = _grid(extent[0], resolution), _grid(extent[1], resolution)

    probe = copy.deepcopy(model)
    params = list(probe.named_parameters().values())
    sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape in layout]
    bounds = np.cumsum([0] + sizes)

    def cost_at(vector: np.ndarray) -> float:
        for p, lo, hi in zip(params, bounds[:-1], bounds[1:], strict=True):
            p.data[...] = vector[lo:hi].reshape(p.data.shape)
        return evaluate(probe, X, y, loss=loss, metrics={})["loss"]

    losses = np.empty((resolution, resolution))
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            losses[i, j] = cost_at(center + a * directions[0] + b * directions[1])
    trajectory_loss = np.array([cost_at(v) for v in traj])
    projected_loss = np.array([cost_at(center + a * directions[0] + b * directions[1])
                               for a, b in coords])  # fmt: skip
    mid = resolution // 2
    return LossPlane(
        alphas=alphas, betas=betas, losses=losses, center=center, directions=directions,
        coords=coords, trajectory_loss=trajectory_loss, projected_loss=projected_loss,
        explained=explained,
        explained_each=each, method=method, center_loss=float(losses[mid, mid]),
    )  # fmt: skip
