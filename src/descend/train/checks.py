"""The checks of ``fit``'s, ``evaluate``'s and ``predict``'s arguments, before any update.

Each names the argument, what is wrong with it and what to pass instead.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from descend import losses, optim
from descend.autodiff.tensor import no_grad
from descend.data import check_X_y
from descend.data.validation import is_memory_mapped
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential
from descend.train.callbacks import Callback


def check_model(model) -> None:
    if not isinstance(model, Module):
        raise TypeError(
            f"model must be a descend.nn.Module (e.g. ds.nn.Sequential(...)), got "
            f"{type(model).__name__}"
        )


def check_positive_int(value, name: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}; {hint}")
    return int(value)


def check_callbacks(callbacks) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}"
        ) from None
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks[{i}] is {type(cb).__name__} {cb!r}, not a Callback; pass objects "
                "such as ds.EarlyStopping() or ds.Checkpoint(path), or subclass ds.Callback"
            )
    return callbacks


def check_metrics(metrics):
    ok = metrics is None or isinstance(metrics, str) or callable(metrics)
    if not ok and isinstance(metrics, list | tuple):
        ok = all(isinstance(m, str) or callable(m) for m in metrics)
    if not ok:
        raise TypeError(
            f"metrics must be 'auto', None, a metric name, a callable (y_true, y_pred) -> float "
            f"or a list of those, got {type(metrics).__name__} {metrics!r}"
        )
    return metrics


def _first_layer_inputs(model: Module) -> int | None:
    """How many features the model's first layer takes, when it says (a Dense layer does)."""
    layer = model
    while True:
        n = getattr(layer, "in_features", None)
        if isinstance(n, int):
            return n
        layers = getattr(layer, "layers", None)
        if not layers:
            return None
        layer = layers[0]


def check_features(model: Module, X: np.ndarray, name: str) -> None:
    n = _first_layer_inputs(model)
    if n is not None and X.ndim == 2 and X.shape[1] != n:
        raise ValueError(
            f"{name} has {X.shape[1]} features (shape {X.shape}) but the model's first layer "
            f"takes {n}; pass data with {n} columns or build the first layer with "
            f"in_features={X.shape[1]}"
        )


def check_range(a: np.ndarray, dtype: np.dtype, name: str) -> None:
    """Refuse values that would overflow to inf when cast to the model's dtype."""
    if a.dtype.kind != "f" or np.dtype(dtype).itemsize >= a.dtype.itemsize:
        return
    limit = np.finfo(dtype).max
    if a.size and (a.max() > limit or a.min() < -limit):
        raise ValueError(
            f"{name} holds values beyond the range of the model's dtype {np.dtype(dtype)} "
            f"(largest magnitude {limit:.3g}); rescale {name} (e.g. standardise it) or use a "
            f"float64 model (dtype=np.float64)"
        )


def as_model_dtype(X: np.ndarray, dtype, name: str = "X") -> np.ndarray:
    # A memory-mapped file is left alone (each batch is cast when it is read); an in-memory array
    # is converted once, not at every update.
    if is_memory_mapped(X) or X.dtype == dtype:
        return X
    check_range(X, dtype, name)
    return X.astype(dtype)


def resolve_optimizer(optimizer, lr):
    if isinstance(optimizer, optim.Optimizer):
        if lr is not None:
            raise ValueError(
                "lr was given together with an optimizer object; set the rate on the object "
                "(e.g. ds.optim.GD(lr=0.1)) or pass the optimizer by name with lr="
            )
        return optimizer
    kwargs = {} if lr is None else {"lr": lr}
    return optim.get(optimizer, **kwargs)


def split_validation(X, y, validation_split):
    if isinstance(validation_split, bool) or not isinstance(validation_split, Real):
        raise TypeError(
            f"validation_split must be a number in [0, 1), got {type(validation_split).__name__} "
            f"{validation_split!r}; e.g. validation_split=0.2"
        )
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(
            f"validation_split must be in [0, 1), got {validation_split!r}; e.g. 0.2 keeps the "
            "last 20% of the samples for validation"
        )
    if validation_split == 0.0:
        return X, y, None
    n_val = int(round(len(X) * validation_split))
    if n_val < 1 or n_val >= len(X):
        raise ValueError(
            f"validation_split={validation_split} leaves {n_val} of {len(X)} samples for "
            "validation; choose a split that leaves at least one sample on each side"
        )
    # As Keras does: the last samples, taken before any shuffling.
    return X[:-n_val], y[:-n_val], (X[-n_val:], y[-n_val:])


def output_shape(model: Module, X: np.ndarray, dtype) -> tuple[int, ...]:
    """The shape of the model's output for one row (without the row axis)."""
    if (
        isinstance(model, Sequential)
        and model.layers
        and all(type(m) is Dense for m in model.layers)
    ):
        return (model.layers[-1].out_features,)  # known without running it
    with no_grad(), np.errstate(over="ignore", invalid="ignore"):  # only its shape is used
        return tuple(np.shape(model(np.asarray(X[:1], dtype=dtype)))[1:])


def data(model: Module, X, y, validation_data, validation_split, loss_fn):
    """``X``, ``y`` (in the model's dtype where it matters) and the validation pair, checked."""
    X, y = check_X_y(X, y, finite=not is_memory_mapped(X))
    dtype = model.dtype or np.float32
    check_features(model, X, "X")
    X = as_model_dtype(X, dtype)
    check_range(y, dtype, "y")
    if validation_data is None:
        if validation_split:  # all of y, so that a bad label among the last ones is found now
            checked_targets(model, X, y, loss_fn, dtype, "y")
        return split_validation(X, y, validation_split)
    if validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise ValueError("validation_data must be a tuple (X_val, y_val)")
    X_val, y_val = check_X_y(*validation_data, name_X="X_val", name_y="y_val")
    check_features(model, X_val, "X_val")
    check_range(y_val, dtype, "y_val")
    checked_targets(model, X_val, y_val, loss_fn, dtype, "y_val")
    return X, y, (as_model_dtype(X_val, dtype, "X_val"), y_val)


def checked_targets(model: Module, X: np.ndarray, y: np.ndarray, loss_fn, dtype, name: str):
    """``y`` checked against a built-in cost and the model's output, as the cost uses it
    (:func:`descend.losses.check_target`); a cost of the user's own is not checked."""
    if loss_fn not in losses.LOSSES.values():
        return y
    shape = output_shape(model, X, dtype)
    try:
        return losses.check_target(loss_fn, y, (len(y), *shape), dtype)
    except (ValueError, TypeError) as exc:
        raise type(exc)(
            f"{name} does not fit the cost {loss_fn.__name__} and the model's output of shape "
            f"(n, {', '.join(map(str, shape))}): {exc}"
        ) from None
