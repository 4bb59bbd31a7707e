"""``fit``, ``evaluate`` and ``predict``: the training loop and its two read-only companions.

One update of ``fit`` is the textbook loop, in this order::

    model.zero_grad()                  # forget the previous update's gradients
    pred = model(X_batch)              # forward pass
    cost = loss(pred, y_batch)         # the cost of this batch
    cost.backward()                    # backpropagation: dC/dW, dC/db for every layer
    optimizer.step(model.parameters()) # gradient descent: theta <- theta - lr * dC/dtheta
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from math import isfinite
from numbers import Real
from pathlib import Path

import numpy as np

from descend import losses as losses_module
from descend import optim
from descend.autodiff.tensor import Tensor, no_grad
from descend.compile.backend import map_pieces, n_workers, single_thread_if_small, split_rows
from descend.data import batches as make_batches
from descend.data import check_X_y
from descend.data.validation import as_generator, check_array
from descend.io import ModelFileError
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential
from descend.train.callbacks import Callback, ProgressBar, any_stop, progress_wanted
from descend.train.checkpoint import Checkpoint, TrainingState, load_checkpoint, optimizer_config
from descend.train.fused import NonFiniteRows, compile_forward, compile_step, max_abs
from descend.train.history import History
from descend.train.metrics import get_metrics

try:  # the C module under ``signal``: the same calls without converting handlers to enums
    import _signal as _raw_signal  # (a few microseconds a call, twice per fit)
except ImportError:  # not CPython
    _raw_signal = signal


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

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X = np.random.default_rng(0).normal(size=(32, 2)) * 100
    >>> try:
    ...     ds.fit(ds.nn.mlp([2, 1], seed=0), X, X.sum(axis=1) ** 2, loss="mse",
    ...            optimizer=ds.optim.GD(10.0), batch_size=8, epochs=20, progress=False)
    ... except ds.DivergenceError as err:
    ...     print(err.lr, err.step == err.history.n_updates)
    10.0 True
    """

    def __init__(self, message: str, *, step: int, epoch: int, lr: float, history: History):
        super().__init__(message)
        self.step, self.epoch, self.lr, self.history = step, epoch, lr, history


class _DeferInterrupt:
    """Holds Ctrl-C back while an update is applied, so parameters are never half-updated.

    Installed as the SIGINT handler for the duration of ``fit`` (main thread only, and only over
    a Python-level handler such as the default one that raises KeyboardInterrupt). Outside the
    critical section it passes the signal on at once; inside, it notes it, and the loop passes
    it on right after the section. The section costs two attribute stores and one load per
    update, whatever the size of the model.
    """

    __slots__ = ("critical", "pending", "_previous", "_installed")

    def __init__(self) -> None:
        self.critical = False
        self.pending = False
        self._previous = None
        self._installed = False

    def install(self) -> _DeferInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals only ever reach the main thread
        previous = _raw_signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return self  # SIG_IGN or SIG_DFL: the user's choice stands
        try:
            _raw_signal.signal(signal.SIGINT, self._handle)
        except ValueError:
            return self
        self._previous = previous
        self._installed = True
        return self

    def _handle(self, signum, frame) -> None:
        if self.critical:
            self.pending = True
        else:
            self._previous(signum, frame)

    def release(self) -> None:
        """Pass on the interrupt that arrived during the critical section."""
        self.pending = False
        if self._previous is not None:
            self._previous(signal.SIGINT, None)

    def uninstall(self) -> None:
        if self._installed and _raw_signal.getsignal(signal.SIGINT) == self._handle:
            _raw_signal.signal(signal.SIGINT, self._previous)
        self._installed = False


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


def _check_callbacks(callbacks) -> list[Callback]:
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


def _check_metrics(metrics):
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


def _check_features(model: Module, X: np.ndarray, name: str) -> None:
    n = _first_layer_inputs(model)
    if n is not None and X.ndim == 2 and X.shape[1] != n:
        raise ValueError(
            f"{name} has {X.shape[1]} features (shape {X.shape}) but the model's first layer "
            f"takes {n}; pass data with {n} columns or build the first layer with "
            f"in_features={X.shape[1]}"
        )


class _Shape:
    """The shape facts the built-in costs' target checks read (they take a prediction)."""

    __slots__ = ("shape", "ndim", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype) -> None:
        self.shape, self.ndim, self.dtype = shape, len(shape), np.dtype(dtype)


def _check_targets(model: Module, X: np.ndarray, y: np.ndarray, loss_fn, dtype, name: str):
    """Check all of ``y`` against a built-in cost and the model's output before any update, so
    that a wrong label or shape is reported as a problem of ``y``, not of a batch."""
    lm = losses_module
    if loss_fn not in (lm.mse, lm.binary_cross_entropy, lm.categorical_cross_entropy, lm.log_loss):
        return
    if isinstance(model, Sequential) and all(type(m) is Dense for m in model.layers):
        out_shape: tuple = (model.layers[-1].out_features,)  # known without running it
    else:
        with no_grad(), np.errstate(over="ignore", invalid="ignore"):  # only its shape is used
            out_shape = np.shape(model(_chunk(X, 0, 1, dtype)))[1:]
    shape = _Shape((len(y), *out_shape), dtype)
    if loss_fn is lm.log_loss:
        binary = shape.ndim == 1 or (shape.ndim == 2 and shape.shape[1] == 1)
        loss_fn = lm.binary_cross_entropy if binary else lm.categorical_cross_entropy
    try:
        if loss_fn is lm.mse:
            lm._match_column(y, shape)
        elif loss_fn is lm.binary_cross_entropy:
            lm._binary_target(y, shape)
        else:
            lm._categorical_target(y, shape)
    except (ValueError, TypeError) as exc:
        raise type(exc)(
            f"{name} does not fit the cost {loss_fn.__name__} and the model's output of shape "
            f"(n, {', '.join(map(str, shape.shape[1:]))}): {exc}"
        ) from None


def _check_range(a: np.ndarray, dtype: np.dtype, name: str) -> None:
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


def _as_model_dtype(X: np.ndarray, dtype, name: str = "X") -> np.ndarray:
    # A memory-mapped file is left alone (each batch is cast when it is read); an in-memory array
    # is converted once, not at every update.
    if isinstance(X, np.memmap) or X.dtype == dtype:
        return X
    _check_range(X, dtype, name)
    return X.astype(dtype)


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


def _split_validation(X, y, validation_split):
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


def _resume(path, state: TrainingState, rng, epochs: int, model: Module, optimizer):
    """Restore a checkpoint into this call's model, optimizer, history and state.

    Returns the generator to batch with (the saved state in it). Raises ValueError when the
    checkpoint was made by a different call (other than a larger ``epochs``)."""
    saved = load_checkpoint(path)
    where = f"resume_from={str(path)!r}"
    diffs = [
        f"{key}: {saved.fit.get(key)!r} in the checkpoint, {value!r} now"
        for key, value in state.fit.items()
        if key != "epochs" and saved.fit.get(key) != value
    ]
    if diffs:
        raise ValueError(
            f"{where} was saved by a different fit call ({'; '.join(diffs)}); resume with the "
            "same data and arguments (only epochs may grow)"
        )
    mine = {n: (p.shape, p.dtype) for n, p in model.named_parameters().items()}
    theirs = {n: (p.shape, p.dtype) for n, p in saved.model.named_parameters().items()}
    try:
        same_architecture = model.get_config() == saved.model.get_config()
    except (ValueError, TypeError, NotImplementedError):
        same_architecture = True  # a model that cannot describe itself: compare the weights
    if mine != theirs or not same_architecture:
        raise ValueError(
            f"{where} holds a different model ({saved.model!r} with parameters {theirs}); pass "
            "a model of the same architecture and dtype"
        )
    name = type(optimizer).__name__
    config = optimizer_config(optimizer)
    if name != saved.optimizer_class or (
        config is not None
        and saved.optimizer_config is not None
        and config != saved.optimizer_config
    ):
        raise ValueError(
            f"{where} was trained with {saved.optimizer_class} {saved.optimizer_config}, this "
            f"call gives {name} {config}; pass the same optimizer and hyperparameters (to change "
            "them, start a new fit from ds.load(path))"
        )
    if epochs < saved.epoch or (epochs == saved.epoch and saved.batches_done):
        raise ValueError(
            f"epochs={epochs}, but {where} has already done {saved.epoch} epochs"
            f"{f' and {saved.batches_done} updates of the next' if saved.batches_done else ''}; "
            f"pass epochs >= {saved.epoch + bool(saved.batches_done)}"
        )
    if set(saved.metric_sums) != set(state.metric_sums):
        raise ValueError(
            f"{where} was trained with metrics {sorted(saved.metric_sums)}, this call computes "
            f"{sorted(state.metric_sums)}; pass the same metrics"
        )
    try:
        optimizer.load_state_dict(saved.optimizer_state)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: the optimizer state cannot be restored ({exc})") from None
    model.load_state_dict(saved.model.state_dict())
    history = state.history
    history.epoch, history.step = saved.history.epoch, saved.history.step
    history.n_updates, history.n_epochs = saved.history.n_updates, saved.history.n_epochs
    history.wall_time = saved.history.wall_time
    state.epoch, state.batches_done, state.step = saved.epoch, saved.batches_done, saved.step
    state.total, state.seen = saved.total, saved.seen
    state.metric_sums = {k: saved.metric_sums[k] for k in state.metric_sums}
    if saved.rng_state is not None:
        if type(rng.bit_generator).__name__ != saved.rng_state["bit_generator"]:
            rng = np.random.Generator(getattr(np.random, saved.rng_state["bit_generator"])())
        rng.bit_generator.state = saved.rng_state
    state.rng_state = saved.rng_state
    return rng


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
    resume_from: str | Path | None = None,
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
        The total number of epochs of the run (with ``resume_from``: counted from the start of
        the first call, so a resumed call may ask for more epochs than the first one did).
    shuffle : bool, default True
    seed : int, Generator or None
        Seeds the shuffling (and nothing else): the same seed and initial weights give the same
        trained weights, bit for bit (see "Determinism" below).
    validation_data : (X_val, y_val), optional
        Data on which ``val_loss`` and the validation metrics are computed after every epoch.
    validation_split : float, default 0.0
        Instead of ``validation_data``: keep this fraction of the samples (the last ones, as Keras
        does) for validation.
    metrics : "auto", str, callable or list, default "auto"
        Reported per epoch. "auto" is accuracy for classification costs, nothing for regression.
    callbacks : sequence of Callback
        E.g. :class:`EarlyStopping`, :class:`~descend.train.Checkpoint`; see
        :mod:`descend.train.callbacks` for the hooks.
    progress : bool, default True
        Show a progress bar when running in a terminal or notebook; False for none.
    fused : bool, default True
        For a ``Sequential`` of ``Dense`` layers with built-in activations and a matching
        built-in cost, run each update as one fused step in reused buffers
        (:mod:`descend.train.fused`): the same numbers, faster. Its ``.grad`` arrays are reused
        between updates. With plain ``GD`` (no clipping, no weight decay) and no callback
        that reads gradients (``Callback.reads_gradients``), a network of more than 32,768
        parameters takes each small-batch step straight from the layer's input and dC/dz
        (one BLAS call a layer, no dC/dW written out): equal up to rounding (float32: about
        1e-7 relative per update), and the weights' ``.grad`` are written once, at the end.
        A large batch is cut into row blocks shared between the cores (``DESCEND_THREADS``
        sets how many; see ``docs/determinism.md``): equal up to rounding.
        ``False`` always builds the graph.
    resume_from : str or Path, optional
        A checkpoint written by :class:`~descend.train.Checkpoint`: continue that run where it
        was saved. The model's weights, the optimizer's state, the history and the shuffling
        generator are restored, the interrupted epoch's order is drawn again and its finished
        batches skipped, so the result equals an uninterrupted run's bit for bit (the
        wall-clock times aside). The other arguments must be those of the first call, with the
        same data; only ``epochs`` may grow (``seed`` is ignored). A mismatch raises ValueError;
        a damaged file :class:`~descend.io.ModelFileError`.

    Returns
    -------
    History
        ``history.epoch["loss"]`` (per epoch), ``history.step["loss"]`` (per update),
        ``history.n_updates``, ``history.wall_time``. After Ctrl-C, the history so far with
        ``history.interrupted = True`` (see below).

    Raises
    ------
    DivergenceError
        When the cost or a gradient becomes NaN or infinite. Training stops before the bad update:
        the model keeps its last finite parameters. The message names the step and the rate. A
        :class:`~descend.train.Checkpoint` keeps its last save (it does not save on divergence).
    ValueError, TypeError
        For bad arguments or data; the message names the argument.

    Notes
    -----
    **Interrupting.** Ctrl-C (``KeyboardInterrupt``) during training ends ``fit`` cleanly: the
    interrupt is held back while an update is being applied (when ``fit`` runs in the main
    thread), so the model holds the parameters of the last completed update, never a
    half-updated mix. The callbacks' ``on_train_end`` run (a ``Checkpoint`` saves the run), and
    ``fit`` *returns* the history, with ``history.interrupted = True``, ``history.n_updates``
    the updates completed and ``history.epoch`` the epochs completed. It does not re-raise.

    **Determinism.** The same data, initial weights, arguments and seed give the same weights
    and history bit for bit, in one process or across processes, on the same machine and
    library versions. What changes results: the dtype (float32 or float64), the number of BLAS
    threads (it changes how matrix products are summed), the BLAS library and the CPU's
    instruction set, the NumPy version, and ``shuffle``/``seed``/``batch_size``. The fused and
    graph paths (``fused=``) give the same numbers, except plain GD's in-place step and the row
    blocks described under ``fused`` (equal up to rounding). See ``docs/determinism.md``.

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
    metric_fns = get_metrics(_check_metrics(metrics), classification)
    callbacks = _check_callbacks(callbacks)
    optimizer = _resolve_optimizer(optimizer, lr)
    X, y = check_X_y(X, y, finite=not isinstance(X, np.memmap))
    dtype = model.dtype or np.float32
    _check_features(model, X, "X")
    X = _as_model_dtype(X, dtype)
    _check_range(y, dtype, "y")
    _check_targets(model, X, y, loss_fn, dtype, "y")
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val, y_val = check_X_y(*validation_data, name_X="X_val", name_y="y_val")
        _check_features(model, X_val, "X_val")
        _check_range(y_val, dtype, "y_val")
        _check_targets(model, X_val, y_val, loss_fn, dtype, "y_val")
        validation = (_as_model_dtype(X_val, dtype, "X_val"), y_val)
    else:
        X, y, validation = _split_validation(X, y, validation_split)
    rng = as_generator(seed)
    step_fn = compile_step(model, loss_fn) if fused else None
    if step_fn is not None:
        # Every target checked (and converted) once, not at every update.
        y = step_fn.check_targets(y)
    loader = make_batches(X, y, batch_size=batch_size, shuffle=shuffle, seed=rng)
    params = model.parameters()
    if not params:
        raise ValueError("the model has no trainable parameters (no Tensor with requires_grad)")
    loss_name = getattr(loss_fn, "__name__", "loss")
    history = History(
        params={
            "epochs": epochs, "batch_size": loader.batch_size, "variant": loader.variant,
            "steps_per_epoch": len(loader), "n_samples": loader.n_samples, "shuffle": shuffle,
            "optimizer": type(optimizer).__name__, "loss": loss_name,
        }
    )  # fmt: skip
    # What a checkpoint records of this call, and a resumed call must repeat (JSON values).
    fit_args = {
        "epochs": epochs, "batch_size": int(loader.batch_size), "shuffle": bool(shuffle),
        "steps_per_epoch": len(loader), "n_samples": int(loader.n_samples),
        "sample_shape": [int(s) for s in X.shape[1:]],
        "target_shape": [int(s) for s in y.shape[1:]],
        "dtype": str(np.dtype(dtype)), "loss": str(loss_name), "metrics": list(metric_fns),
        "validation_samples": None if validation is None else len(validation[0]),
    }  # fmt: skip
    state = TrainingState(model, optimizer, history, fit_args, metric_fns)
    if resume_from is not None:
        resumed_rng = _resume(resume_from, state, rng, epochs, model, optimizer)
        if resumed_rng is not rng:
            rng = loader._rng = resumed_rng
    checkpointing = False
    if progress_wanted(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    for cb in callbacks:
        cb.set_context(model, history)
        if isinstance(cb, Checkpoint):
            cb.set_training_state(state)
            checkpointing = True
    if checkpointing and state.batches_done == 0 and loader.shuffle and loader.variant != "batch":
        state.rng_state = rng.bit_generator.state  # the generator at the start of the epoch
    begin_logs = {
        "epochs": epochs, "steps_per_epoch": len(loader), "n_samples": loader.n_samples,
        "batch_size": loader.batch_size,
    }  # fmt: skip
    for cb in callbacks:
        cb.on_train_begin(begin_logs)
    # Plain gradient descent on the fused path, with no callback that reads gradients during
    # training: each update is applied inside the step (FusedStep.descend), and the weights'
    # .grad are written once, when training ends.
    descend_in_step = (
        step_fn is not None
        and _plain_gd(optimizer)
        and not any(getattr(cb, "reads_gradients", True) for cb in callbacks)
    )
    if descend_in_step:
        optimizer._prepare(params)  # the state step() would make
        if not isinstance(X, np.memmap) and step_fn.bounds_inputs(loader.batch_size):
            step_fn.input_bound = max_abs(X)

    guard = _DeferInterrupt().install()
    start = time.perf_counter()
    wall_before = history.wall_time
    step = state.step
    epoch_logs: dict = {}
    step_loss, step_size = history.step["loss"], history.step["batch_size"]
    metric_items = list(metric_fns.items())
    status = "failed"
    try:
        # Overflow on the way to divergence is caught below as a non-finite cost or gradient,
        # with a message that says what to do; NumPy's own warnings would only add noise.
        with (
            np.errstate(over="ignore", invalid="ignore", divide="ignore"),
            single_thread_if_small(_largest_matmul_flops(model, loader.batch_size)),
        ):
            for epoch in range(state.epoch, epochs):
                epoch_start = time.perf_counter()
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {"lr": optimizer.lr})
                # Zero at an epoch's start; a resumed epoch's sums so far.
                batch, total, seen = state.batches_done, state.total, state.seen
                metric_sums = state.metric_sums
                for xb, yb in loader.epoch(batch):
                    if xb.dtype != dtype:
                        xb = xb.astype(dtype)
                    n = xb.shape[0]
                    rate = optimizer.lr
                    if descend_in_step:
                        # The update happens inside, once every gradient is proven finite;
                        # Ctrl-C waits for it and its record.
                        guard.critical = True
                        value = step_fn.descend(xb, yb, rate)
                        grads_finite = step_fn.grads_finite
                    elif step_fn is not None:
                        value = step_fn(xb, yb)
                        grads_finite = step_fn.grads_finite  # checked inside the step
                    else:
                        model.zero_grad()
                        pred = model(xb)
                        cost = _cost(loss_fn, pred, yb, step, epoch, rate, history)
                        value = float(cost.data)
                        if isfinite(value):
                            cost.backward()
                        grads_finite = None
                    if not isfinite(value):
                        raise _diverged("the cost", value, step, epoch, rate, history)
                    if not (grads_finite if grads_finite is not None else _grads_finite(params)):
                        raise _diverged("a gradient", "not finite", step, epoch, rate, history)
                    if metric_items:  # from this update's forward pass, before the update
                        output = step_fn.output if step_fn is not None else pred.data
                        scores = _scores(metric_items, yb, output)
                    # The update and its record, as one: Ctrl-C waits until both are done.
                    guard.critical = True
                    if descend_in_step:
                        optimizer._count_step()  # the update was applied inside
                    else:
                        optimizer.step(params)
                    step_loss.append(value)
                    step_size.append(n)
                    total += value * n
                    seen += n
                    if metric_items:
                        for (name, _), score in zip(metric_items, scores, strict=True):
                            metric_sums[name] += score * n
                    step += 1
                    batch += 1
                    history.n_updates = step
                    if checkpointing:
                        state.step, state.batches_done, state.total, state.seen = (
                            step, batch, total, seen
                        )  # fmt: skip
                    guard.critical = False
                    if guard.pending:
                        guard.release()
                    if callbacks:
                        logs = {"loss": value, "batch_size": n, "epoch": epoch, "lr": rate}
                        for cb in callbacks:
                            cb.on_step_end(step - 1, logs)
                        if any_stop(callbacks):
                            break
                epoch_logs = {"loss": total / seen}
                epoch_logs.update({k: v / seen for k, v in metric_sums.items()})
                if validation is not None:
                    scores = evaluate(model, *validation, loss=loss_fn, metrics=metric_fns)
                    epoch_logs.update({f"val_{k}": v for k, v in scores.items()})
                epoch_logs["lr"] = optimizer.lr
                epoch_logs["time"] = time.perf_counter() - epoch_start
                guard.critical = True
                history.log_epoch(epoch_logs)
                state.epoch, state.batches_done, state.step = epoch + 1, 0, step
                state.total, state.seen = 0.0, 0
                state.metric_sums = dict.fromkeys(metric_fns, 0.0)
                if state.rng_state is not None:
                    state.rng_state = rng.bit_generator.state
                guard.critical = False
                if guard.pending:
                    guard.release()
                for cb in callbacks:
                    cb.on_epoch_end(epoch, epoch_logs)
                if any_stop(callbacks):
                    history.stopped_early = epoch < epochs - 1 or history.n_updates < epochs * len(
                        loader
                    )
                    break
        status = "stopped" if history.stopped_early else "completed"
    except KeyboardInterrupt:
        history.interrupted = True
        status = "interrupted"
    except DivergenceError:
        status = "diverged"
        raise
    finally:
        guard.critical = False
        guard.uninstall()
        if descend_in_step:
            step_fn.write_grads()
        state.status = status
        history.wall_time = wall_before + time.perf_counter() - start
        for cb in callbacks:
            cb.on_train_end(epoch_logs)
    return history


def _scores(metric_items, y_true, y_pred) -> list:
    """Each metric of a batch; a metric that cannot score this output says which it is."""
    try:
        return [fn(y_true, y_pred) for _, fn in metric_items]
    except (ValueError, TypeError, IndexError) as exc:
        failing = next(n for n, fn in metric_items if _fails(fn, y_true, y_pred))
        raise ValueError(
            f"metrics: {failing!r} cannot score targets of shape {np.shape(y_true)} against the "
            f"model's output of shape {np.shape(y_pred)} ({type(exc).__name__}: {exc}); "
            "choose metrics that fit the task (e.g. 'accuracy' for classes, 'mse' for values)"
        ) from None


def _fails(fn, y_true, y_pred) -> bool:
    try:
        fn(y_true, y_pred)
    except (ValueError, TypeError, IndexError):
        return True
    return False


def _cost(loss_fn, pred, yb, step, epoch, rate, history) -> Tensor:
    """The graph path's cost of a batch, checked: a one-element Tensor, or a divergence."""
    try:
        cost = loss_fn(pred, yb)
    except losses_module._CostOverflow:
        raise _diverged("the cost", "not finite", step, epoch, rate, history) from None
    except ValueError:
        data = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            raise _diverged(
                "the network's output", "not finite", step, epoch, rate, history
            ) from None
        raise
    if not isinstance(cost, Tensor) or cost.data.size != 1:
        raise TypeError(
            f"loss must return a one-element Tensor (the mean cost of the batch), got "
            f"{type(cost).__name__}{f' of shape {cost.shape}' if hasattr(cost, 'shape') else ''}"
        )
    return cost


def _largest_matmul_flops(model: Module, batch_size: int) -> float | None:
    # For a network of Dense layers: the FLOPs of its largest product in one update.
    sizes = [m.in_features * m.out_features for m in model.modules() if isinstance(m, Dense)]
    return 2.0 * batch_size * max(sizes) if sizes else None


def _plain_gd(optimizer) -> bool:
    # theta <- theta - lr * g exactly: no clipping, no weight decay, not a subclass's rule
    return (
        type(optimizer) is optim.GD and optimizer.clip_norm is None and not optimizer.weight_decay
    )


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
    forward = compile_forward(model)
    # A Dense stack checks X for NaN and inf chunk by chunk, as it reads it (below).
    X = check_array(X, finite=forward is None and not isinstance(X, np.memmap))
    _check_features(model, X, "X")
    dtype = model.dtype or np.float32
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    if forward is not None:
        # A Dense stack: computed chunk by chunk in reused buffers, straight into the result,
        # the chunks shared between the cores when each is large (see descend.compile.backend).
        flops = _largest_matmul_flops(model, 1) or 0.0
        if batch_size is None and len(X) * flops >= 2 * PARALLEL_MIN_FLOPS:
            step = PREDICT_BLOCK_ROWS  # blocks the cores can share, and cache-sized
        n_chunks = -(-len(X) // step)
        workers = min(n_workers() if step * flops >= PARALLEL_MIN_FLOPS else 1, n_chunks)
        # as many chunks for each core, none larger than the step: on two cores 49 chunks of
        # 1,024 rows become 50 of 1,000, so that no core is left with one chunk more
        n_chunks = -(-n_chunks // workers) * workers
        chunks = split_rows(len(X), n_chunks)  # equal sizes, each at most the step
        forwards = [forward] + [compile_forward(model) for _ in range(workers - 1)]
        result = np.empty((len(X), model.layers[-1].out_features), dtype)

        check = not isinstance(X, np.memmap)

        def chunk(worker: int, i: int) -> None:
            start, stop = chunks[i]
            rows = _chunk(X, start, stop - start, dtype)
            # NaN, inf and overflow are found and reported below, without NumPy's warnings
            with np.errstate(over="ignore", invalid="ignore"):
                forwards[worker](rows, out=result[start:stop], check_finite=check)

        try:
            map_pieces(chunk, n_chunks, workers=workers)
        except NonFiniteRows:
            check_array(X, finite=True)  # raises, naming the first row that is not finite
            raise
        _check_output(result, 0, "X")
        return result
    outputs = []
    with no_grad():
        for start in range(0, len(X), step):
            out = model(_chunk(X, start, step, dtype))
            out = out.data if isinstance(out, Tensor) else np.asarray(out)
            _check_output(out, start, "X")
            outputs.append(out)
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


# A chunk whose largest product has fewer FLOPs than this is computed on one core (handing it
# to another costs more than it saves); a prediction of all rows at once is cut into blocks of
# PREDICT_BLOCK_ROWS rows when it is large.
PARALLEL_MIN_FLOPS = 5e7
PREDICT_BLOCK_ROWS = 2048


def _chunk(X: np.ndarray, start: int, step: int, dtype) -> np.ndarray:
    rows = X[start : start + step]
    if rows.dtype != dtype:
        _check_range(rows, dtype, "X")
    return np.asarray(rows, dtype=dtype)


def _check_output(out: np.ndarray, start: int, name: str) -> None:
    if out.dtype.kind == "f" and not (np.isfinite(out.min()) and np.isfinite(out.max())):
        row = start + int(np.flatnonzero(~np.isfinite(out).reshape(len(out), -1).all(axis=1))[0])
        raise ValueError(
            f"the model's output for {name} is not finite (NaN or inf, first for row {row} of "
            f"{name}): the model's parameters are not finite, or {name} holds values too "
            "extreme for it; check the model (e.g. ds.load a saved one) and the data"
        )


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
        metric_fns = get_metrics(_check_metrics(metrics), losses_module.is_classification(loss))
    X, y = check_X_y(X, y, finite=not isinstance(X, np.memmap))
    _check_features(model, X, "X")
    dtype = model.dtype or np.float32
    _check_range(y, dtype, "y")
    _check_targets(model, X, y, loss_fn, dtype, "y")
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    total = 0.0
    preds = []
    # The graph is recorded (not no_grad) so that a softmax/sigmoid output meets its cross-entropy
    # in the same fused, exact form as in training; nothing is back-propagated.
    for start in range(0, len(X), step):
        xb = _chunk(X, start, step, dtype)
        yb = y[start : start + step]
        pred = model(xb)
        data = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
        _check_output(data, start, "X")
        cost = loss_fn(pred, yb)
        if not isinstance(cost, Tensor) or cost.data.size != 1:
            raise TypeError(
                f"loss must return a one-element Tensor (the mean cost), got {type(cost).__name__}"
            )
        total += float(cost.data) * len(xb)
        preds.append(data)
    if not np.isfinite(total):
        raise ValueError(
            f"the cost ({getattr(loss_fn, '__name__', 'loss')}) of the model on X and y is "
            f"{total}: not finite for finite predictions; check the loss function and y"
        )
    out = {"loss": total / len(X)}
    y_pred = preds[0] if len(preds) == 1 else np.concatenate(preds)
    for name, score in zip(metric_fns, _scores(list(metric_fns.items()), y, y_pred), strict=True):
        out[name] = float(score)
    return out


__all__ = ["DivergenceError", "evaluate", "fit", "predict"]
