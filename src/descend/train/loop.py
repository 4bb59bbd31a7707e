"""``fit``, ``evaluate`` and ``predict``: the training loop and its two read-only companions.

One update of ``fit`` is the textbook loop, in this order::

    model.zero_grad()                  # forget the previous update's gradients
    pred = model(X_batch)              # forward pass
    cost = loss(pred, y_batch)         # the cost of this batch
    cost.backward()                    # backpropagation: dC/dW, dC/db for every layer
    optimizer.step(model.parameters()) # gradient descent: theta <- theta - lr * dC/dtheta
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from descend import losses as losses_module
from descend import optim
from descend.autodiff.tensor import Tensor, no_grad
from descend.data import batches as make_batches
from descend.data import check_X_y
from descend.data.validation import as_generator, check_array
from descend.nn.module import Module
from descend.train.callbacks import Callback, ProgressBar, any_stop, progress_wanted
from descend.train.fused import compile_step
from descend.train.history import History
from descend.train.metrics import get_metrics


class DivergenceError(FloatingPointError):
    """Training diverged: the cost (or a gradient) became NaN or infinite.

    Attributes
    ----------
    step : int
        The update (from 0) at which it happened.
    epoch : int
    lr : float
        The learning rate in use.
    history : History
        Everything recorded up to that point.
    """

    def __init__(self, message: str, *, step: int, epoch: int, lr: float, history: History):
        super().__init__(message)
        self.step, self.epoch, self.lr, self.history = step, epoch, lr, history


def _check_model(model) -> None:
    if not isinstance(model, Module):
        raise TypeError(
            f"model must be a descend.nn.Module (e.g. ds.nn.Sequential(...)), got "
            f"{type(model).__name__}"
        )


def _check_positive_int(value, name: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}; {hint}")
    return int(value)


def _resolve_optimizer(optimizer, lr):
    if isinstance(optimizer, optim.Optimizer):
        if lr is not None:
            raise ValueError(
                "lr was given together with an optimizer object; set the rate on the object "
                "(e.g. ds.optim.GD(lr=0.1)) or pass the optimizer by name with lr="
            )
        return optimizer
    kwargs = {} if lr is None else {"lr": lr}
    return optim.get(optimizer, **kwargs)


def _as_model_dtype(X: np.ndarray, dtype) -> np.ndarray:
    # A memory-mapped file is left alone (each batch is cast when it is read); an in-memory array
    # is converted once, not at every update.
    if isinstance(X, np.memmap) or X.dtype == dtype:
        return X
    return X.astype(dtype)


def _split_validation(X, y, validation_split: float):
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


def fit(
    model: Module,
    X,
    y,
    *,
    loss: str | Callable,
    optimizer: str | optim.Optimizer = "gd",
    lr: float | None = None,
    batch_size: int | str = 32,
    epochs: int = 1,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    validation_data: tuple | None = None,
    validation_split: float = 0.0,
    metrics="auto",
    callbacks: Sequence[Callback] = (),
    progress: bool | str = True,
    fused: bool = True,
) -> History:
    """Train ``model`` on ``(X, y)`` by gradient descent and return what happened.

    Each epoch goes through the data once in batches: ``batch_size="full"`` is batch gradient
    descent (one update per epoch), ``1`` stochastic gradient descent (one update per sample),
    an int ``k`` mini-batch gradient descent (``ceil(n / k)`` updates per epoch). With
    ``shuffle=True`` each epoch visits the samples in a new order drawn from ``seed``.

    Parameters
    ----------
    model : Module
        The network, e.g. ``ds.nn.Sequential(...)``; trained in place.
    X : ndarray of shape (n_samples, n_features)
        Inputs (also a memory-mapped ``.npy`` file, read one batch at a time).
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets: class labels or one-hot rows for classification, values for regression.
    loss : str or callable
        The cost: ``"mse"``, ``"binary_cross_entropy"``, ``"categorical_cross_entropy"``,
        ``"log_loss"``, or a callable ``(pred, target) -> one-element Tensor``.
    optimizer : str or Optimizer, default "gd"
        An update rule from :mod:`descend.optim`, or its name (``"gd"``, ``"momentum"``,
        ``"rmsprop"``, ``"adam"``, ...).
    lr : float, optional
        The learning rate, when ``optimizer`` is given by name.
    batch_size : "full", int, default 32
    epochs : int, default 1
    shuffle : bool, default True
    seed : int, Generator or None
        Seeds the shuffling (and nothing else): the same seed and initial weights give the same
        trained weights, bit for bit.
    validation_data : (X_val, y_val), optional
        Data on which ``val_loss`` and the validation metrics are computed after every epoch.
    validation_split : float, default 0.0
        Instead of ``validation_data``: keep this fraction of the samples (the last ones, as Keras
        does) for validation.
    metrics : "auto", str, callable or list, default "auto"
        Reported per epoch. "auto" is accuracy for classification costs, nothing for regression.
    callbacks : sequence of Callback
        E.g. :class:`EarlyStopping`; see :mod:`descend.train.callbacks` for the hooks.
    progress : bool, default True
        Show a progress bar when running in a terminal or notebook; False for none.
    fused : bool, default True
        For a ``Sequential`` of ``Dense`` layers with built-in activations and a matching
        built-in cost, run each update as one fused step in reused buffers
        (:mod:`descend.train.fused`): the same numbers, faster. Its ``.grad`` arrays are reused
        between updates. ``False`` always builds the graph.

    Returns
    -------
    History
        ``history.epoch["loss"]`` (per epoch), ``history.step["loss"]`` (per update),
        ``history.n_updates``, ``history.wall_time``.

    Raises
    ------
    DivergenceError
        When the cost or a gradient becomes NaN or infinite. Training stops before the bad update:
        the model keeps its last finite parameters. The message names the step and the rate.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(200, seed=0)
    >>> model = ds.nn.mlp([2, 16, 2], output_activation="softmax", seed=0)
    >>> history = ds.fit(model, X, y, loss="categorical_cross_entropy",
    ...                  optimizer=ds.optim.Adam(0.01), batch_size=20, epochs=30, seed=0,
    ...                  progress=False)
    >>> history.n_updates, history.epoch["accuracy"][-1] > 0.85
    (300, True)
    """
    _check_model(model)
    epochs = _check_positive_int(epochs, "epochs", "train for at least one epoch, e.g. epochs=10")
    loss_fn = losses_module.get(loss)
    classification = losses_module.is_classification(loss)
    metric_fns = get_metrics(metrics, classification)
    optimizer = _resolve_optimizer(optimizer, lr)
    X, y = check_X_y(X, y, finite=not isinstance(X, np.memmap))
    dtype = model.dtype or np.float32
    X = _as_model_dtype(X, dtype)
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val, y_val = check_X_y(*validation_data, name_X="X_val", name_y="y_val")
        validation = (_as_model_dtype(X_val, dtype), y_val)
    else:
        X, y, validation = _split_validation(X, y, validation_split)
    step_fn = compile_step(model, loss_fn) if fused else None
    if step_fn is not None:
        y = step_fn.check_targets(y)  # once here, so each update only converts its batch
    rng = as_generator(seed)
    loader = make_batches(X, y, batch_size=batch_size, shuffle=shuffle, seed=rng)
    params = model.parameters()
    if not params:
        raise ValueError("the model has no trainable parameters (no Tensor with requires_grad)")

    callbacks = list(callbacks)
    if progress_wanted(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    history = History(
        params={
            "epochs": epochs, "batch_size": loader.batch_size, "variant": loader.variant,
            "steps_per_epoch": len(loader), "n_samples": loader.n_samples, "shuffle": shuffle,
            "optimizer": type(optimizer).__name__, "loss": getattr(loss_fn, "__name__", "loss"),
        }
    )  # fmt: skip
    for cb in callbacks:
        cb.set_context(model, history)
    begin_logs = {
        "epochs": epochs, "steps_per_epoch": len(loader), "n_samples": loader.n_samples,
        "batch_size": loader.batch_size,
    }  # fmt: skip
    for cb in callbacks:
        cb.on_train_begin(begin_logs)

    start = time.perf_counter()
    step = 0
    epoch_logs: dict = {}
    step_loss, step_size = history.step["loss"], history.step["batch_size"]
    # Overflow on the way to divergence is caught below as a non-finite cost or gradient, with a
    # message that says what to do; NumPy's own warnings would only add noise before it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for epoch in range(epochs):
                epoch_start = time.perf_counter()
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {"lr": optimizer.lr})
                total, seen = 0.0, 0
                metric_sums = dict.fromkeys(metric_fns, 0.0)
                for xb, yb in loader:
                    if xb.dtype != dtype:
                        xb = xb.astype(dtype)
                    n = xb.shape[0]
                    rate = optimizer.lr
                    if step_fn is not None:
                        value = step_fn(xb, yb)
                        output = step_fn.output if metric_fns else None
                        grads_ok = step_fn.grads_finite
                    else:
                        model.zero_grad()
                        pred = model(xb)
                        cost = loss_fn(pred, yb)
                        value = float(cost.data)
                        if np.isfinite(value):
                            cost.backward()
                        output = pred.data
                        grads_ok = _grads_finite(params)
                    if not np.isfinite(value):
                        raise _diverged("the cost", value, step, epoch, rate, history)
                    if not grads_ok:
                        raise _diverged("a gradient", "not finite", step, epoch, rate, history)
                    optimizer.step(params)
                    step_loss.append(value)
                    step_size.append(n)
                    total += value * n
                    seen += n
                    for name, fn in metric_fns.items():
                        metric_sums[name] += fn(yb, output) * n
                    if callbacks:
                        logs = {"loss": value, "batch_size": n, "epoch": epoch, "lr": rate}
                        for cb in callbacks:
                            cb.on_step_end(step, logs)
                    step += 1
                    history.n_updates = step
                    if callbacks and any_stop(callbacks):
                        break
                epoch_logs = {"loss": total / seen}
                epoch_logs.update({k: v / seen for k, v in metric_sums.items()})
                if validation is not None:
                    scores = evaluate(model, *validation, loss=loss_fn, metrics=metric_fns)
                    epoch_logs.update({f"val_{k}": v for k, v in scores.items()})
                epoch_logs["lr"] = optimizer.lr
                epoch_logs["time"] = time.perf_counter() - epoch_start
                history.log_epoch(epoch_logs)
                for cb in callbacks:
                    cb.on_epoch_end(epoch, epoch_logs)
                if any_stop(callbacks):
                    history.stopped_early = epoch < epochs - 1 or history.n_updates < epochs * len(
                        loader
                    )
                    break
        finally:
            history.wall_time = time.perf_counter() - start
            for cb in callbacks:
                cb.on_train_end(epoch_logs)
    return history


def _grads_finite(params) -> bool:
    # max and min propagate NaN and reach +-inf: two passes that allocate nothing.
    for p in params:
        g = p.grad
        if g is not None and not (np.isfinite(g.max()) and np.isfinite(g.min())):
            return False
    return True


def _diverged(what: str, value, step: int, epoch: int, lr: float, history: History):
    return DivergenceError(
        f"training diverged at update {step} (epoch {epoch}): {what} became {value}. The model "
        f"keeps the parameters from before this update, the last finite ones. Try a smaller "
        f"learning rate (lr={lr:g} now; e.g. lr={lr / 10:g}), standardise the inputs, or check "
        f"the data for extreme values",
        step=step,
        epoch=epoch,
        lr=lr,
        history=history,
    )


def predict(model: Module, X, *, batch_size: int | None = None) -> np.ndarray:
    """The model's output for ``X``, as an array (class probabilities for a softmax output).

    Parameters
    ----------
    model : Module
    X : ndarray of shape (n_samples, n_features)
    batch_size : int, optional
        Compute in chunks of this many rows to bound memory; all at once when None.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 3], output_activation="softmax", seed=0)
    >>> p = ds.predict(model, np.zeros((4, 2)))
    >>> p.shape, np.allclose(p.sum(axis=1), 1)
    ((4, 3), True)
    """
    _check_model(model)
    X = check_array(X, finite=not isinstance(X, np.memmap))
    dtype = model.dtype or np.float32
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    outputs = []
    with no_grad():
        for start in range(0, len(X), step):
            chunk = np.asarray(X[start : start + step], dtype=dtype)
            out = model(chunk)
            outputs.append(out.data if isinstance(out, Tensor) else np.asarray(out))
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def evaluate(
    model: Module, X, y, *, loss: str | Callable, metrics="auto", batch_size: int | None = None
) -> dict[str, float]:
    """The cost and metrics of ``model`` on ``(X, y)``, without changing the model.

    Parameters
    ----------
    model : Module
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or callable
    metrics : "auto", str, callable or list, default "auto"
    batch_size : int, optional
        Evaluate in chunks of this many rows (the cost is then the sample-weighted mean of the
        chunks' costs, which equals the whole-data cost for every built-in cost).

    Returns
    -------
    dict
        ``{"loss": float, <metric>: float, ...}``.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 1], output_activation="sigmoid", seed=0)
    >>> sorted(ds.evaluate(model, np.zeros((4, 2)), np.array([0, 1, 0, 1]),
    ...                    loss="binary_cross_entropy"))
    ['accuracy', 'loss']
    """
    _check_model(model)
    loss_fn = losses_module.get(loss)
    if isinstance(metrics, dict):
        metric_fns = metrics
    else:
        metric_fns = get_metrics(metrics, losses_module.is_classification(loss))
    X, y = check_X_y(X, y, finite=not isinstance(X, np.memmap))
    dtype = model.dtype or np.float32
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    total = 0.0
    preds = []
    # The graph is recorded (not no_grad) so that a softmax/sigmoid output meets its cross-entropy
    # in the same fused, exact form as in training; nothing is back-propagated.
    for start in range(0, len(X), step):
        xb = np.asarray(X[start : start + step], dtype=dtype)
        yb = y[start : start + step]
        pred = model(xb)
        total += float(loss_fn(pred, yb).data) * len(xb)
        preds.append(pred.data if isinstance(pred, Tensor) else np.asarray(pred))
    out = {"loss": total / len(X)}
    y_pred = preds[0] if len(preds) == 1 else np.concatenate(preds)
    for name, fn in metric_fns.items():
        out[name] = float(fn(y, y_pred))
    return out


__all__ = ["DivergenceError", "evaluate", "fit", "predict"]
