"""Metrics: numbers that describe the predictions for people (the cost is what is minimised).

A metric is ``metric(y_true, y_pred) -> float`` on arrays; ``y_pred`` is the model's output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _labels_from_output(y_pred: np.ndarray) -> np.ndarray:
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return y_pred.argmax(axis=1)
    # One output: a probability of the positive class, thresholded at 0.5.
    return (y_pred.reshape(-1) >= 0.5).astype(np.intp)


def _labels_from_target(y_true: np.ndarray) -> np.ndarray:
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        return y_true.argmax(axis=1)
    return y_true.reshape(-1)


def accuracy(y_true, y_pred) -> float:
    """The fraction of samples whose predicted class is the true class.

    The predicted class is the arg-max of a row of class probabilities, or probability >= 0.5 for
    a single (sigmoid) output.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,) (labels) or (n_samples, n_classes) (one-hot)
    y_pred : ndarray of shape (n_samples, n_classes) or (n_samples,) / (n_samples, 1)

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    0.6666666666666666
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(_labels_from_output(y_pred) == _labels_from_target(y_true)))


def mean_squared_error(y_true, y_pred) -> float:
    """Mean of (y_pred - y_true)^2 over all entries.

    Examples
    --------
    >>> import numpy as np
    >>> mean_squared_error(np.array([1.0, 2.0]), np.array([[1.0], [4.0]]))
    2.0
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    return float(np.mean((y_pred.reshape(y_true.shape) - y_true) ** 2))


def mean_absolute_error(y_true, y_pred) -> float:
    """Mean of |y_pred - y_true| over all entries.

    Examples
    --------
    >>> import numpy as np
    >>> mean_absolute_error(np.array([1.0, 2.0]), np.array([[1.0], [4.0]]))
    1.0
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(y_pred.reshape(y_true.shape) - y_true)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (as scikit-learn's ``r2_score``).

    Examples
    --------
    >>> import numpy as np
    >>> r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    1.0
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    y_pred = y_pred.reshape(y_true.shape)
    ss_res = np.sum((y_true - y_pred) ** 2)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0


METRICS: dict[str, Callable] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "mse": mean_squared_error,
    "mae": mean_absolute_error,
    "r2": r2,
}


def get_metrics(metrics, classification: bool) -> dict[str, Callable]:
    """Resolve ``metrics`` ("auto", a name, a callable, or a list of them) to ``{name: fn}``.

    ``"auto"`` is accuracy for a classification cost and nothing for a regression cost.

    Examples
    --------
    >>> list(get_metrics("auto", classification=True))
    ['accuracy']
    """
    if metrics is None:
        return {}
    if isinstance(metrics, str) and metrics == "auto":
        return {"accuracy": accuracy} if classification else {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out: dict[str, Callable] = {}
    for m in metrics:
        if callable(m):
            out[getattr(m, "__name__", "metric")] = m
            continue
        key = str(m).lower()
        if key not in METRICS:
            raise ValueError(
                f"metrics contains {m!r}, which is not a known metric; use names from "
                f"{sorted(METRICS)} or callables (y_true, y_pred) -> float"
            )
        name = "accuracy" if key == "acc" else key
        out[name] = METRICS[key]
    return out
