"""Callbacks: code that runs at fixed points of training, and sees what happened.

Hooks and the keys of their ``logs``:

``on_train_begin(logs)``
    ``{"epochs", "steps_per_epoch", "n_samples", "batch_size"}``.
``on_epoch_begin(epoch, logs)``
    ``epoch`` counts from 0; ``logs`` is ``{"lr"}``.
``on_step_end(step, logs)``
    ``step`` counts updates from 0 over the whole run; ``logs`` is ``{"loss", "batch_size",
    "epoch", "lr"}`` (``lr`` the rate this update used).
``on_epoch_end(epoch, logs)``
    ``{"loss", <metric>..., "val_loss", "val_<metric>"... (with validation data), "lr", "time"}``:
    the same numbers that go into ``History.epoch``.
``on_train_end(logs)``
    The last epoch's logs (empty if no epoch finished).

A callback stops training by setting ``self.stop_training = True``; ``fit`` stops after the
current update (in ``on_step_end``) or epoch. During training ``self.model`` and ``self.history``
are the model and the :class:`~descend.train.History` being filled.
"""

from __future__ import annotations

import math
import sys

import numpy as np


class Callback:
    """Base class: override the hooks you need (see the module documentation for ``logs``).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> class PrintLoss(ds.Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         print(epoch, logs["loss"] > 0)
    >>> X, y = np.random.default_rng(0).normal(size=(8, 2)), np.zeros(8)
    >>> _ = ds.fit(ds.nn.mlp([2, 1], seed=0), X, y, loss="mse", optimizer=ds.optim.GD(0.1),
    ...            batch_size="full", epochs=2, callbacks=[PrintLoss()], progress=False)
    0 True
    1 True
    """

    model = None
    history = None
    stop_training = False
    #: Whether the hooks may read the parameters' ``.grad`` during training. ``fit`` can apply
    #: plain gradient descent without writing the weights' gradients out at every update (it
    #: writes them once, at the end) only when no callback says True; a subclass that never
    #: looks at gradients may set it to False.
    reads_gradients = True

    def set_context(self, model, history) -> None:
        """Called by ``fit`` before training: the model and the History being filled."""
        self.model = model
        self.history = history
        self.stop_training = False

    def on_train_begin(self, logs: dict) -> None:
        """Before the first epoch."""

    def on_train_end(self, logs: dict) -> None:
        """After the last epoch (also when stopped early)."""

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Before epoch ``epoch`` (from 0)."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After epoch ``epoch``, with its losses and metrics."""

    def on_step_end(self, step: int, logs: dict) -> None:
        """After update ``step`` (from 0 over the run)."""


class EarlyStopping(Callback):
    """Stop when a monitored number has stopped improving, and go back to its best weights.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs: ``"val_loss"``, ``"loss"``, ``"val_accuracy"``, ...
    patience : int, default 5
        Epochs without improvement to wait before stopping.
    min_delta : float, default 0.0
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}, default "auto"
        Whether smaller or larger is better; "auto" is "max" for accuracy-like keys, else "min".
    restore_best : bool, default True
        At the end of training, load the weights of the best epoch.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int
        The epoch it was seen in (from 0), -1 before any.
    stopped_epoch : int or None
        The epoch after which training stopped, None if it ran to the end.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(100, seed=0)
    >>> stop = ds.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    >>> h = ds.fit(ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0), X, y,
    ...            loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.1), batch_size=10,
    ...            epochs=20, callbacks=[stop], progress=False)
    >>> h.n_epochs, stop.stopped_epoch
    (2, 1)
    """

    reads_gradients = False  # fit may fold plain GD into the weight product

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best = restore_best

    def on_train_begin(self, logs: dict) -> None:
        if self.mode == "auto":
            self._sign = -1.0 if "acc" in self.monitor or self.monitor.endswith("r2") else 1.0
        else:
            self._sign = 1.0 if self.mode == "min" else -1.0
        self.best = math.inf * self._sign
        self.best_epoch = -1
        self.stopped_epoch = None
        self._wait = 0
        self._best_state = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            hint = (
                "pass validation_data=(X_val, y_val) or validation_split=0.2 to fit, or "
                if self.monitor.startswith("val_")
                else ""
            )
            raise ValueError(
                f"EarlyStopping(monitor={self.monitor!r}) found no {self.monitor!r} in the epoch "
                f"logs (keys: {sorted(logs)}); {hint}monitor one of those keys"
            )
        value = float(logs[self.monitor])
        # Improvement means smaller in "min" mode and larger in "max" mode, by at least min_delta.
        if self._sign * (self.best - value) > self.min_delta or self.best_epoch < 0:
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best:
                self._best_state = self.model.state_dict()
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs: dict) -> None:
        if self.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # noqa: PLC0415 - only where IPython exists

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_wanted(progress: bool | str) -> bool:
    """Whether to show a progress bar: ``True`` means "in a terminal or a notebook".

    Examples
    --------
    >>> progress_wanted(False)
    False
    """
    if progress == "always":
        return True
    if not progress:
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or _in_notebook()


class ProgressBar(Callback):
    """A progress bar over all updates of the run (tqdm), with the epoch and its loss.

    ``fit(progress=True)`` adds one when it runs in a terminal or a notebook.

    Examples
    --------
    >>> import io
    >>> bar = ProgressBar(file=io.StringIO())
    >>> bar.on_train_begin({"epochs": 1, "steps_per_epoch": 2})
    >>> bar.on_step_end(0, {"loss": 1.0}); bar.on_step_end(1, {"loss": 0.5})
    >>> bar.bar.n
    2
    >>> bar.on_train_end({})
    """

    reads_gradients = False  # fit may fold plain GD into the weight product

    def __init__(self, file=None) -> None:
        self.file = file
        self.bar = None

    def on_train_begin(self, logs: dict) -> None:
        if _in_notebook():
            from tqdm.notebook import tqdm  # noqa: PLC0415
        else:
            from tqdm import tqdm  # noqa: PLC0415
        total = logs.get("epochs", 1) * logs.get("steps_per_epoch", 1)
        # A run resumed from a checkpoint starts where it was.
        done = getattr(self.history, "n_updates", 0) or 0
        self.bar = tqdm(
            total=total, initial=done, unit="update", file=self.file or sys.stderr,
            dynamic_ncols=True, disable=False, leave=True,
        )  # fmt: skip

    def on_step_end(self, step: int, logs: dict) -> None:
        self.bar.update(1)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        shown = {k: v for k, v in logs.items() if k not in ("time", "lr")}
        self.bar.set_postfix(epoch=epoch + 1, **{k: f"{v:.4g}" for k, v in shown.items()})

    def on_train_end(self, logs: dict) -> None:
        if self.bar is not None:
            self.bar.close()


def with_progress_bar(callbacks: list[Callback], progress: bool | str) -> list[Callback]:
    """``callbacks`` with a :class:`ProgressBar` appended when ``progress`` wants one (see
    :func:`progress_wanted`) and none is there yet; the list is changed in place.

    Examples
    --------
    >>> [type(c).__name__ for c in with_progress_bar([], "always")]
    ['ProgressBar']
    >>> with_progress_bar([], False)
    []
    """
    if progress_wanted(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    return callbacks


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.

    Examples
    --------
    >>> seen = []
    >>> cb = LambdaCallback(on_step_end=lambda step, logs: seen.append(step))
    >>> cb.on_step_end(0, {}); seen
    [0]
    """

    def __init__(self, **hooks) -> None:
        valid = {"on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_end"}
        for name, fn in hooks.items():
            if name not in valid:
                raise ValueError(f"unknown hook {name!r}; valid hooks: {sorted(valid)}")
            setattr(self, name, fn)


def any_stop(callbacks) -> bool:
    """Whether any callback asked to stop."""
    return any(cb.stop_training for cb in callbacks)


def finite(value: float) -> bool:
    """Whether a float is neither NaN nor infinite (a cheap scalar check)."""
    return bool(np.isfinite(value))
