"""Local and global minima: where batch, stochastic and mini-batch gradient descent end up.

The cost is the three-hump camel function ``f`` (:func:`~descend.experiments.camel_problem`: a
global minimum at (0, 0), two local minima at ``x = +-1.7476``), written as a mean over
``n_samples`` samples,

.. math:: C(\\theta) = \\frac{1}{n} \\sum_i \\big(f(\\theta) + \\xi_i \\cdot \\theta\\big),
          \\qquad \\sum_i \\xi_i = 0,

with ``xi_i`` drawn from a normal distribution of standard deviation ``noise`` and centred. The
full-data cost is exactly ``f`` (so its minima are known exactly), and a batch of ``b`` samples
gives the gradient ``grad f(theta) + mean of its xi``: unbiased, with a standard deviation per
coordinate of ``s * sqrt((1 - b/n) / b)`` (``s`` the samples' standard deviation; sampling
without replacement). Batch gradient descent sees the exact gradient; stochastic gradient
descent the noisiest one. This is the textbook's setting in its simplest form: the variants
differ only in the noise of the gradient.

Every run takes the same number of updates (``steps``), so a variant does not win by taking
more of them. A run's outcome is the minimum whose basin its final point lies in: the final
point is followed down the exact gradient of ``f`` (steps of length at most 0.05, 4000 of them)
and the minimum it reaches (within 1e-3) names the outcome. A run that leaves the box
``|x|, |y| <= 10`` is "diverged" (and stopped there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from descend.experiments import _figures
from descend.experiments._table import markdown
from descend.experiments.problems import (
    TwoParameterProblem,
    camel_grad,
    camel_problem,
    variant_label,
)

__all__ = ["LocalMinimaResult", "local_minima"]

_LIMIT = 10.0


@dataclass
class LocalMinimaResult:
    """The result of :func:`local_minima`.

    Attributes
    ----------
    problem : TwoParameterProblem
        The cost (the camel function) and its minima, for :func:`descend.viz.surface`.
    rows : list of dict
        One row per (batch size, learning rate): ``variant``, ``batch size``, ``lr``,
        ``gradient noise`` (the standard deviation per coordinate of the batch gradient's
        error), ``runs``, and the fractions ``global``, ``local``, ``diverged``, ``other``.
    starts : ndarray of shape (n_starts, 2)
        The starting points, the same for every variant and rate.
    paths : dict of (int, float) to ndarray of shape (n_starts, n_points, 2)
        Per (batch size, lr), every run's path, thinned to at most ``max_path_points`` points
        evenly spaced in updates (the start and the end always included).
    path_steps : ndarray of shape (n_points,)
        The update numbers of the kept path points.
    outcomes : dict of (int, float) to ndarray of shape (n_starts,)
        Per (batch size, lr), each run's outcome: ``"global"``, ``"local"``, ``"diverged"``
        or ``"other"``.
    settings : dict
        The arguments of the run.
    """

    problem: TwoParameterProblem
    rows: list[dict]
    starts: np.ndarray
    paths: dict = field(default_factory=dict)
    path_steps: np.ndarray | None = None
    outcomes: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def fraction_global(self, batch_size: int | str, lr: float) -> float:
        """The fraction of runs of one (batch size, lr) that ended in the global minimum."""
        b = self.settings["n_samples"] if batch_size == "full" else int(batch_size)
        return float(np.mean(self.outcomes[(b, float(lr))] == "global"))

    def to_markdown(self, digits: int = 3) -> str:
        """The rows as a Markdown table (fractions of the runs)."""
        return markdown(self.rows, digits)

    def plot(self, lr: float | None = None, *, max_paths: int | None = None, path=None):
        """All paths, one panel per batch size, at one learning rate: see
        :func:`descend.viz.local_minima`."""
        return _figures.draw("local_minima", self, lr=lr, max_paths=max_paths, path=path)

    def __repr__(self) -> str:
        return f"LocalMinimaResult({len(self.rows)} settings, {len(self.starts)} starts each)"


def local_minima(
    *,
    batch_sizes: Sequence[int | str] = ("full", 10, 1),
    lrs: Sequence[float] = (0.01, 0.05, 0.1),
    n_starts: int = 100,
    steps: int = 1000,
    n_samples: int = 100,
    noise: float = 2.0,
    seed: int = 0,
    max_path_points: int = 200,
) -> LocalMinimaResult:
    """How often each variant of gradient descent ends in the global minimum, from many starts.

    See the module documentation for the cost (the three-hump camel function as a mean over
    samples whose full-data cost is exactly the function) and how outcomes are decided. All
    starts run at once, as rows of one array, with :class:`descend.optim.GD` as the update rule.

    Parameters
    ----------
    batch_sizes : sequence of (int or "full"), default ("full", 10, 1)
        Batch, mini-batch of 10 and stochastic gradient descent.
    lrs : sequence of float, default (0.01, 0.05, 0.1)
        Learning rates; every batch size runs with each.
    n_starts : int, default 100
        Starting points, uniform in the square [-2, 2]^2, the same for every setting.
    steps : int, default 1000
        Updates per run, equal for every variant.
    n_samples : int, default 100
        Samples the cost is a mean over.
    noise : float, default 2.0
        Standard deviation of the samples' linear terms ``xi``; 0 makes every variant batch
        gradient descent.
    seed : int, default 0
        Seeds the starts, the samples and the shuffling: the same seed gives the same result.
    max_path_points : int, default 200
        Points kept per path for the figure.

    Returns
    -------
    LocalMinimaResult
        ``.rows`` (also ``.to_markdown()``), ``.paths``, ``.outcomes``, ``.plot()``.

    Examples
    --------
    >>> from descend.experiments import local_minima
    >>> result = local_minima(batch_sizes=("full", 1), lrs=(0.05,), n_starts=20, steps=200)
    >>> [(row["variant"], row["runs"]) for row in result.rows]
    [('batch (b=100)', 20), ('stochastic (b=1)', 20)]
    >>> result.paths[(1, 0.05)].shape
    (20, 200, 2)
    """
    for name, value, low in (
        ("n_starts", n_starts, 1), ("steps", steps, 1), ("n_samples", n_samples, 2),
        ("max_path_points", max_path_points, 2),
    ):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    problem = camel_problem()
    starts = np.random.default_rng([seed, 0]).uniform(-2.0, 2.0, size=(n_starts, 2))
    xi = np.random.default_rng([seed, 1]).normal(scale=noise, size=(n_samples, 2))
    xi -= xi.mean(axis=0)
    sample_std = xi.std(axis=0, ddof=1).mean() if n_samples > 1 else 0.0
    kept = np.unique(np.linspace(0, steps, min(max_path_points, steps + 1)).round().astype(int))
    minima = np.array(list(problem.minima.values()))
    names = np.array(["global", "local", "local"])

    rows, paths, outcomes = [], {}, {}
    for batch_size in batch_sizes:
        b = n_samples if batch_size == "full" else int(batch_size)
        if not 1 <= b <= n_samples:
            raise ValueError(f"batch size {batch_size!r} must be 'full' or in 1..{n_samples}")
        for lr in lrs:
            path, final, diverged = _run(starts, xi, b, float(lr), steps, kept, seed)
            outcome = _classify(final, diverged, minima, names)
            paths[(b, float(lr))] = path
            outcomes[(b, float(lr))] = outcome
            rows.append(
                {
                    "variant": variant_label(b, n_samples),
                    "batch size": b,
                    "lr": float(lr),
                    "gradient noise": float(sample_std * np.sqrt((1 - b / n_samples) / b)),
                    "runs": n_starts,
                    "global": float(np.mean(outcome == "global")),
                    "local": float(np.mean(outcome == "local")),
                    "diverged": float(np.mean(outcome == "diverged")),
                    "other": float(np.mean(outcome == "other")),
                }
            )
    settings = {
        "batch_sizes": list(batch_sizes), "lrs": [float(lr) for lr in lrs],
        "n_starts": n_starts, "steps": steps, "n_samples": n_samples, "noise": noise,
        "seed": seed,
    }  # fmt: skip
    return LocalMinimaResult(problem, rows, starts, paths, kept, outcomes, settings)


def _run(starts, xi, b, lr, steps, kept, seed):
    """All starts at once: ``steps`` updates of GD on batches of ``b`` samples."""
    from descend.optim import GD

    n = len(xi)
    theta = starts.copy()
    param = SimpleNamespace(data=theta, grad=np.zeros_like(theta))
    optimizer = GD(lr)
    # One shuffling stream per batch size, so a setting's result does not depend on the others.
    rng = np.random.default_rng([seed, 2, b])
    per_epoch = -(-n // b)
    order = np.tile(np.arange(n), (len(theta), 1))
    diverged = np.zeros(len(theta), dtype=bool)
    path = np.empty((len(theta), len(kept), 2))
    path[:, 0] = theta
    slot = 1
    full_noise = xi.mean(axis=0)
    for t in range(steps):
        pos = t % per_epoch
        if b == n:
            batch_noise = full_noise
        else:
            if pos == 0:
                order = rng.permuted(order, axis=1)
            batch_noise = xi[order[:, pos * b : (pos + 1) * b]].mean(axis=1)
        grad = camel_grad(theta) + batch_noise
        grad[diverged] = 0.0
        param.grad = grad
        optimizer.step([param])
        diverged |= ~(np.abs(theta) <= _LIMIT).all(axis=1)
        if slot < len(kept) and kept[slot] == t + 1:
            path[:, slot] = theta
            slot += 1
    return path, theta.copy(), diverged


def _classify(final, diverged, minima, names):
    """Follow the exact gradient from each final point; name the minimum it reaches."""
    theta = np.where(diverged[:, None], 0.0, final)
    for _ in range(4000):
        g = camel_grad(theta)
        norm = np.sqrt((g * g).sum(axis=1, keepdims=True))
        theta = theta - 0.05 * g / np.maximum(norm, 1.0)
    dist = np.linalg.norm(theta[:, None, :] - minima[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    outcome = np.where(dist[np.arange(len(theta)), nearest] < 1e-3, names[nearest], "other")
    return np.where(diverged, "diverged", outcome).astype("<U8")
