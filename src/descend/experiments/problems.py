"""Two-parameter problems: costs small enough to draw as a surface, with their minima known.

* :func:`line_problem`: a straight line ``y = w x + b`` fitted by mean squared error to one
  feature of the diabetes data set (442 patients). Its full-data cost is a quadratic bowl in
  ``(w, b)`` with one minimum, the least-squares line, known in closed form.
* :func:`camel_problem`: the three-hump camel function (a standard optimisation test function)
  with one global minimum at (0, 0) and two local minima, written as a mean over samples so that
  stochastic and mini-batch gradient descent have something to sample (see its docstring).

:func:`descent_paths` trains the line with descend's own ``fit`` and returns the path of
``(w, b)`` of each variant of gradient descent, ready for :func:`descend.viz.surface`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TwoParameterProblem",
    "camel_problem",
    "descent_paths",
    "line_problem",
    "variant_label",
]

DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


@dataclass
class TwoParameterProblem:
    """A cost over two parameters, with its known minima: what :func:`descend.viz.surface` draws.

    Attributes
    ----------
    name : str
    cost : callable
        ``cost(p0, p1) -> ndarray``: the full-data cost, evaluated element-wise on arrays of any
        (equal or broadcastable) shape.
    minima : dict of str to tuple of float
        Known minima by name, e.g. ``{"global minimum": (0.0, 0.0)}``.
    bounds : tuple of two (low, high) tuples
        The region worth drawing, for ``p0`` and ``p1``.
    param_names : tuple of str
        The parameters' names, for axis labels.
    X : ndarray of shape (n_samples, 1) or None
        The data the cost is a mean over (for :func:`descent_paths`).
    y : ndarray of shape (n_samples,) or None
    description : str
        One line on where the problem comes from.
    """

    name: str
    cost: Callable
    minima: dict = field(default_factory=dict)
    bounds: tuple = ((-1.0, 1.0), (-1.0, 1.0))
    param_names: tuple = ("w", "b")
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    description: str = ""


def line_problem(feature: str = "bmi", *, scale: str = "minmax") -> TwoParameterProblem:
    """A line ``y = w x + b`` fitted by mean squared error to one feature of the diabetes data.

    The target (disease progression after one year) is standardised to mean 0 and standard
    deviation 1. The feature is rescaled to [0, 1] (``scale="minmax"``, as image pixels are), or
    standardised (``scale="standard"``). The full-data cost

    .. math:: C(w, b) = \\frac{1}{n} \\sum_i (w x_i + b - y_i)^2

    is a quadratic bowl: round for a standardised feature (its Hessian is ``2 I``), a long tilted
    valley for the [0, 1] feature (the Hessian ``2 [[mean x^2, mean x], [mean x, 1]]`` then has a
    condition number of about 38 for BMI), where gradient descent is slow along the valley
    floor.
    Its one minimum is the least-squares line, solved exactly from the normal equations.

    Parameters
    ----------
    feature : str, default "bmi"
        One of ``"age", "sex", "bmi", "bp", "s1" ... "s6"``.
    scale : {"minmax", "standard"}, default "minmax"

    Returns
    -------
    TwoParameterProblem
        With ``X`` of shape (442, 1) and ``y`` of shape (442,), float64.

    Examples
    --------
    >>> from descend.experiments import line_problem
    >>> problem = line_problem("bmi")
    >>> problem.X.shape, problem.param_names
    ((442, 1), ('w', 'b'))
    >>> w, b = problem.minima["least squares"]
    >>> bool(problem.cost(w, b) < problem.cost(w + 0.1, b))
    True
    """
    from descend.datasets import diabetes

    if feature not in DIABETES_FEATURES:
        raise ValueError(
            f"feature={feature!r} is not a diabetes feature; use one of {DIABETES_FEATURES}"
        )
    if scale not in ("minmax", "standard"):
        raise ValueError(f"scale must be 'minmax' or 'standard', got {scale!r}")
    X_all, y_raw = diabetes(dtype=np.float64)
    x = X_all[:, DIABETES_FEATURES.index(feature)]
    if scale == "minmax":
        x = (x - x.min()) / (x.max() - x.min())
    else:
        x = (x - x.mean()) / x.std()
    y = (y_raw - y_raw.mean()) / y_raw.std()
    # C(w, b) = w^2 Sxx + 2 w b Sx + b^2 - 2 w Sxy - 2 b Sy + Syy (means): exact, and fast on grids
    sx, sy, sxx, sxy, syy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()

    def cost(w, b):
        w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return w * w * sxx + 2 * w * b * sx + b * b - 2 * w * sxy - 2 * b * sy + syy

    w_opt, b_opt = np.linalg.solve(np.array([[sxx, sx], [sx, 1.0]]), np.array([sxy, sy]))
    # Bounds wide enough for a start well away from the minimum, in both directions.
    half_w = max(3.0, 2.5 * abs(w_opt))
    bounds = ((w_opt - half_w, w_opt + half_w), (b_opt - 2.0, b_opt + 2.0))
    return TwoParameterProblem(
        name=f"line fit to diabetes '{feature}'",
        cost=cost,
        minima={"least squares": (float(w_opt), float(b_opt))},
        bounds=bounds,
        param_names=("w", "b"),
        X=x.reshape(-1, 1),
        y=y,
        description=(
            f"y = w x + b by MSE; x = diabetes '{feature}' ({scale} scaled), y = standardised "
            f"disease progression; {len(x)} patients"
        ),
    )


# --- the three-hump camel function --------------------------------------------------------------


def camel(x, y):
    """The three-hump camel function ``2x^2 - 1.05x^4 + x^6/6 + xy + y^2``.

    Examples
    --------
    >>> float(camel(0.0, 0.0))
    0.0
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x2 = x * x
    return 2 * x2 - 1.05 * x2 * x2 + x2 * x2 * x2 / 6 + x * y + y * y


def camel_grad(theta: np.ndarray) -> np.ndarray:
    """The gradient of :func:`camel` at each row of ``theta`` (shape (..., 2)).

    Examples
    --------
    >>> camel_grad(np.array([[0.0, 0.0]])).tolist()
    [[0.0, 0.0]]
    """
    x, y = theta[..., 0], theta[..., 1]
    x3 = x * x * x
    return np.stack([4 * x - 4.2 * x3 + x3 * x * x + y, x + 2 * y], axis=-1)


def camel_minima() -> dict[str, tuple[float, float]]:
    """The minima of the camel function, exactly: on the line y = -x/2, x(x^4 - 4.2x^2 + 3.5) = 0.

    Examples
    --------
    >>> sorted(camel_minima())
    ['global minimum', 'local minimum (x < 0)', 'local minimum (x > 0)']
    """
    x = float(np.sqrt((4.2 + np.sqrt(4.2**2 - 14.0)) / 2))
    return {
        "global minimum": (0.0, 0.0),
        "local minimum (x > 0)": (x, -x / 2),
        "local minimum (x < 0)": (-x, x / 2),
    }


def camel_problem() -> TwoParameterProblem:
    """The three-hump camel function: one global minimum (0, 0), two local minima.

    ``f(x, y) = 2x^2 - 1.05x^4 + x^6/6 + xy + y^2``; global minimum ``f(0, 0) = 0``, local
    minima at ``x = +-1.7476, y = -x/2`` with ``f = 0.2986``, saddles between them at
    ``x = +-1.0705`` with ``f = 0.8776``. :func:`descend.experiments.local_minima` turns it into
    a mean over samples (each adds a zero-mean linear term), so that its full-data cost is
    exactly ``f``.

    Returns
    -------
    TwoParameterProblem
        Without data (``X`` and ``y`` are None).

    Examples
    --------
    >>> from descend.experiments import camel_problem
    >>> p = camel_problem()
    >>> x, y = p.minima["local minimum (x > 0)"]
    >>> round(x, 4), round(float(p.cost(x, y)), 4)
    (1.7476, 0.2986)
    """
    return TwoParameterProblem(
        name="three-hump camel",
        cost=camel,
        minima=camel_minima(),
        bounds=((-2.2, 2.2), (-2.2, 2.2)),
        param_names=("x", "y"),
        description="f(x, y) = 2x^2 - 1.05x^4 + x^6/6 + xy + y^2",
    )


# --- paths of the three variants ----------------------------------------------------------------


def variant_label(batch_size: int | str, n_samples: int) -> str:
    """``"batch (b=442)"``, ``"stochastic (b=1)"`` or ``"mini-batch (b=32)"``.

    Examples
    --------
    >>> variant_label("full", 100), variant_label(1, 100), variant_label(10, 100)
    ('batch (b=100)', 'stochastic (b=1)', 'mini-batch (b=10)')
    """
    b = n_samples if batch_size == "full" else int(batch_size)
    if b >= n_samples:
        return f"batch (b={n_samples})"
    if b == 1:
        return "stochastic (b=1)"
    return f"mini-batch (b={b})"


def descent_paths(
    problem: TwoParameterProblem,
    batch_sizes: Sequence[int | str] | Mapping[str, int | str] = ("full", 1, 32),
    *,
    lr: float = 0.1,
    epochs: int = 10,
    start: tuple[float, float] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train the two-parameter line with each variant of gradient descent; return each path.

    Each run is ``ds.fit`` of a ``Dense(1, 1)`` (weight ``w``, bias ``b``, float64) from the
    same ``start``, with plain gradient descent at rate ``lr``, on the problem's data, shuffled
    with ``seed``; a :class:`~descend.train.Recorder` keeps ``(w, b)`` after every update.

    Parameters
    ----------
    problem : TwoParameterProblem
        With data, e.g. :func:`line_problem`.
    batch_sizes : sequence of (int or "full"), or dict of label to batch size
        Default: batch, stochastic and mini-batch of 32.
    lr : float, default 0.1
    epochs : int, default 10
    start : (w, b), optional
        The initial parameters; default: the lower-left area of ``problem.bounds``.
    seed : int, default 0
        The shuffling seed (the only randomness).

    Returns
    -------
    dict of str to ndarray of shape (n_updates + 1, 2)
        One path per variant: the start, then ``(w, b)`` after each update.

    Examples
    --------
    >>> from descend.experiments import descent_paths, line_problem
    >>> paths = descent_paths(line_problem(), ["full", 100], epochs=2)
    >>> {k: v.shape for k, v in paths.items()}
    {'batch (b=442)': (3, 2), 'mini-batch (b=100)': (11, 2)}
    """
    from descend.nn import Dense, Sequential
    from descend.optim import GD
    from descend.train import Recorder, fit

    if problem.X is None or problem.y is None:
        raise ValueError(
            f"problem {problem.name!r} has no data (X, y); descent_paths trains on data, e.g. "
            "line_problem()"
        )
    n = len(problem.X)
    if isinstance(batch_sizes, Mapping):
        runs = list(batch_sizes.items())
    else:
        runs = [(variant_label(b, n), b) for b in batch_sizes]
    if start is None:
        (w_lo, w_hi), (b_lo, b_hi) = problem.bounds
        start = (w_lo + 0.15 * (w_hi - w_lo), b_lo + 0.15 * (b_hi - b_lo))
    paths = {}
    for label, batch_size in runs:
        model = Sequential(Dense(1, 1, dtype=np.float64))
        model[0].weight.data[...] = start[0]
        model[0].bias.data[...] = start[1]
        recorder = Recorder(every=1, max_snapshots=None, norms=False)
        fit(
            model, problem.X, problem.y, loss="mse", optimizer=GD(lr), batch_size=batch_size,
            epochs=epochs, seed=seed, callbacks=[recorder], progress=False,
        )  # fmt: skip
        paths[label] = recorder.snapshots
    return paths
