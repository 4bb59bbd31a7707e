"""``fit``: epochs of batches through :class:`~descend.train.Trainer` steps, recorded.

One update is the Trainer's step, the textbook loop (see :mod:`descend.train.trainer`)::

    model.zero_grad()                  # forget the previous update's gradients
    pred = model(X_batch)              # forward pass
    cost = loss(pred, y_batch)         # the cost of this batch
    cost.backward()                    # backpropagation: dC/dW, dC/db for every layer
    optimizer.step(model.parameters()) # gradient descent: theta <- theta - lr * dC/dtheta

``fit`` adds what is around it: the batches of each epoch, the records (``History``), the
callbacks, the Ctrl-C guard, checkpoints and the watch for divergence. Its argument checks live
in :mod:`~descend.train.checks`, resuming in :mod:`~descend.train.resume`, ``evaluate`` and
``predict`` in :mod:`~descend.train.inference`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from descend import losses, optim
from descend.cluster.ray import Ray
from descend.cluster.trainer import ClusterTrainer
from descend.compile.backend import single_thread_if_small
from descend.data import batches as make_batches
from descend.data.validation import as_generator
from descend.nn.module import Module
from descend.train import checks
from descend.train.callbacks import Callback, ProgressBar, any_stop, progress_wanted
from descend.train.checkpoint import Checkpoint, TrainingState
from descend.train.divergence import DivergenceWatch
from descend.train.history import History
from descend.train.inference import evaluate, largest_matmul_flops, predict, scores
from descend.train.interrupt import DeferInterrupt
from descend.train.metrics import get_metrics
from descend.train.resume import resume
from descend.train.trainer import DivergenceError, Trainer


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
    compile: bool = True,
    resume_from: str | Path | None = None,
    fused: bool | None = None,
    cluster: Ray | None = None,
) -> History:
    """Train ``model`` on ``(X, y)`` by gradient descent and return what happened.

    Each epoch goes through the data once in batches: ``batch_size="full"`` is batch gradient
    descent (one update per epoch), ``1`` stochastic gradient descent (one update per sample),
    an int ``k`` mini-batch gradient descent (``ceil(n / k)`` updates per epoch). With
    ``shuffle=True`` each epoch visits the samples in a new order drawn from ``seed``. Each
    update is one :class:`~descend.train.Trainer` step.

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
    compile : bool, default True
        Run each update as the compiled form of the eager step (see
        :class:`~descend.train.Trainer`): the same numbers, faster. ``history.params["executor"]``
        says which ran (``"compiled"`` or ``"eager"``, and ``"why_eager"`` why). A compiled
        step reuses its ``.grad`` arrays between updates. With plain ``GD`` (no clipping, no
        weight decay) and no callback that reads gradients (``Callback.reads_gradients``), it
        may fold the update into the weight-gradient product (the weights' ``.grad`` are then
        written once, at the end), and a large batch may be cut into row blocks shared between
        the cores (``DESCEND_THREADS``; see ``docs/determinism.md``): both equal up to
        rounding (float32: about 1e-7 relative per update). ``False`` runs the eager graph.
    resume_from : str or Path, optional
        A checkpoint written by :class:`~descend.train.Checkpoint`: continue that run where it
        was saved. The model's weights, the optimizer's state, the history and the shuffling
        generator are restored, the interrupted epoch's order is drawn again and its finished
        batches skipped, so the result equals an uninterrupted run's bit for bit (the
        wall-clock times aside). The other arguments must be those of the first call, with the
        same data; only ``epochs`` may grow (``seed`` is ignored). A mismatch raises ValueError;
        a damaged file :class:`~descend.io.ModelFileError`.
    fused : bool, optional
        Deprecated: the former name of ``compile``.
    cluster : descend.cluster.Ray, optional
        Compute each batch's cost and gradients on Ray workers, each holding a shard of the
        data (see :mod:`descend.cluster`): the same batches from the same seed, the same
        optimizer, records, callbacks, checkpoints and Ctrl-C handling; the weights equal the
        one-machine run's up to float rounding. ``X`` and ``y`` may then also be lists of
        ``.npy`` shard files that the workers open themselves. ``compile`` does not apply
        (the workers run the eager step); ``history.params["executor"]`` is ``"ray"``.

    Returns
    -------
    History
        ``history.epoch["loss"]`` (per epoch), ``history.step["loss"]`` (per update),
        ``history.n_updates``, ``history.wall_time``. After Ctrl-C, the history so far with
        ``history.interrupted = True`` (see below).

    Raises
    ------
    DivergenceError
        When the cost or a gradient becomes NaN or infinite (training stops before the bad
        update: the model keeps its last finite parameters), or when the cost explodes, rising
        far above its value at the start (:mod:`descend.train.divergence`; the model goes back
        to its parameters from before the explosion). The message names the update and the
        rate. A :class:`~descend.train.Checkpoint` keeps its last save (it does not save on
        divergence).
    ValueError, TypeError
        For bad arguments or data; the message names the argument.

    Notes
    -----
    **Interrupting.** Ctrl-C (``KeyboardInterrupt``) during training ends ``fit`` cleanly: the
    interrupt is held back while an update is being computed and applied (when ``fit`` runs in
    the main thread), so the model holds the parameters of the last completed update, never a
    half-updated mix. The callbacks' ``on_train_end`` run (a ``Checkpoint`` saves the run), and
    ``fit`` *returns* the history, with ``history.interrupted = True``, ``history.n_updates``
    the updates completed and ``history.epoch`` the epochs completed. It does not re-raise.

    **Determinism.** The same data, initial weights, arguments and seed give the same weights
    and history bit for bit, in one process or across processes, on the same machine and
    library versions. What changes results: the dtype (float32 or float64), the number of BLAS
    threads (it changes how matrix products are summed), the BLAS library and the CPU's
    instruction set, the NumPy version, and ``shuffle``/``seed``/``batch_size``. The compiled
    and eager steps (``compile=``) give the same numbers, except plain GD's folded update and
    the row blocks described under ``compile`` (equal up to rounding). See
    ``docs/determinism.md``.

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
    if fused is not None:
        warnings.warn("fit(fused=...) is now fit(compile=...)", DeprecationWarning, stacklevel=2)
        compile = fused
    checks.check_model(model)
    hint = "train for at least one epoch, e.g. epochs=10"
    epochs = checks.check_positive_int(epochs, "epochs", hint)
    run = _Run(model, loss, optimizer, lr, metrics, callbacks, compile, cluster)
    data_checks = checks.data if cluster is None else ClusterTrainer.check_data
    X, y, validation = data_checks(model, X, y, validation_data, validation_split, run.loss)
    run.prepare(X, y, batch_size, shuffle, as_generator(seed), epochs, validation, progress)
    if resume_from is not None:
        run.rng = resume(resume_from, run.state, run.rng, epochs, model, run.optimizer)
        run.loader.generator = run.rng
    run.begin()
    guard = run.guard = DeferInterrupt().install()
    start, wall_before, status = time.perf_counter(), run.history.wall_time, "failed"
    try:
        # Overflow on the way to divergence is caught as a non-finite or exploding cost, with a
        # message that says what to do; NumPy's own warnings would only add noise.
        flops = largest_matmul_flops(model, run.loader.batch_size)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            with single_thread_if_small(flops):
                for epoch in range(run.state.epoch, epochs):
                    if run.epoch(epoch):
                        break
        status = "stopped" if run.history.stopped_early else "completed"
    except KeyboardInterrupt:
        run.history.interrupted, status = True, "interrupted"
    except DivergenceError:
        status = "diverged"
        raise
    finally:
        guard.critical = False
        guard.uninstall()
        run.end(status, wall_before + time.perf_counter() - start)
    return run.history


class _Run:
    """One call of ``fit``: its trainer, batches, records and callbacks."""

    def __init__(self, model, loss, optimizer, lr, metrics, callbacks, compile, cluster) -> None:
        self.model, self.loss = model, losses.get(loss)
        self.metric_fns = get_metrics(checks.check_metrics(metrics), losses.is_classification(loss))
        self.callbacks = checks.check_callbacks(callbacks)
        self.optimizer = checks.resolve_optimizer(optimizer, lr)
        if cluster is None:
            self.trainer = Trainer(model, loss=self.loss, optimizer=self.optimizer, compile=compile)
        else:
            self.trainer = ClusterTrainer(
                cluster, model, self.loss, self.optimizer, self.metric_fns
            )
        self.cluster = cluster
        self.dtype = model.dtype or np.float32
        self.epoch_logs: dict = {}

    def prepare(self, X, y, batch_size, shuffle, rng, epochs, validation, progress) -> None:
        self.rng, self.epochs, self.validation = rng, epochs, validation
        batched = (X, y)
        if self.cluster is not None:  # the workers hold the rows: fit batches the row numbers
            batched = (self.trainer.prepare(X, y), None)
            X, y = self.trainer.like  # zero rows of the data's shapes, for the records
        self.loader = make_batches(*batched, batch_size=batch_size, shuffle=shuffle, seed=rng)
        callbacks = self.callbacks
        if progress_wanted(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        self.trainer.reads_grads = any(getattr(c, "reads_gradients", True) for c in self.callbacks)
        if self.cluster is None:
            y = self.trainer.prepare(X, y, self.loader.batch_size)
            self.loader = make_batches(X, y, batch_size=batch_size, shuffle=shuffle, seed=rng)
        self.history = History(params=checks.fit_params(self, epochs))
        args = checks.fit_args(self, epochs, X, y)
        self.state = TrainingState(self.model, self.optimizer, self.history, args, self.metric_fns)

    def begin(self) -> None:
        loader, state, history = self.loader, self.state, self.history
        # after a resume: the watch finds the run's start in the history restored
        self.watch = DivergenceWatch(self.trainer.params, history)
        self.checkpointing = False
        for cb in self.callbacks:
            cb.set_context(self.model, history)
            if isinstance(cb, Checkpoint):
                cb.set_training_state(state)
                self.checkpointing = True
        if self.checkpointing and not state.batches_done and loader.shuffle:
            if loader.variant != "batch":
                state.rng_state = self.rng.bit_generator.state  # at the start of the epoch
        begin_logs = {
            "epochs": self.epochs, "steps_per_epoch": len(loader),
            "n_samples": loader.n_samples, "batch_size": loader.batch_size,
        }  # fmt: skip
        for cb in self.callbacks:
            cb.on_train_begin(begin_logs)

    def epoch(self, epoch: int) -> bool:
        """One epoch (the rest of it, when resumed); True when a callback stopped training."""
        state, history, callbacks, guard = self.state, self.history, self.callbacks, self.guard
        trainer, optimizer, dtype, watch = self.trainer, self.optimizer, self.dtype, self.watch
        epoch_start = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {"lr": optimizer.lr})
        watch.start_epoch(epoch)
        batch, total, seen = state.batches_done, state.total, state.seen  # zero, unless resumed
        metric_items, metric_sums = list(self.metric_fns.items()), state.metric_sums
        step_loss, step_size = history.step["loss"], history.step["batch_size"]
        for xb, yb in self.loader.epoch(batch):
            if xb.dtype != dtype and self.cluster is None:
                xb = xb.astype(dtype)
            n, rate, step = xb.shape[0], optimizer.lr, history.n_updates
            # The update and its record, as one: Ctrl-C waits until both are done.
            guard.critical = True
            try:
                value = trainer.step(xb, yb)
            except DivergenceError as err:
                raise watch.diverged(err.what, err.value, step, epoch, rate) from None
            if value > watch.limit:
                watch.check(value, n, step, epoch, rate)
            if metric_items:  # from this update's forward pass, before the update
                batch_scores = (scores(metric_items, yb, trainer.output) if self.cluster is None
                                else trainer.scores)  # fmt: skip
                for (name, _), score in zip(metric_items, batch_scores, strict=True):
                    metric_sums[name] += score * n
            step_loss.append(value)
            step_size.append(n)
            total += value * n
            seen += n
            batch += 1
            history.n_updates = step + 1
            if self.checkpointing:
                state.step, state.batches_done = step + 1, batch
                state.total, state.seen = total, seen
            guard.critical = False
            if guard.pending:
                guard.release()
            if callbacks:
                logs = {"loss": value, "batch_size": n, "epoch": epoch, "lr": rate}
                for cb in callbacks:
                    cb.on_step_end(step, logs)
                if any_stop(callbacks):
                    break
        return self.end_epoch(epoch, total / seen, seen, epoch_start)

    def end_epoch(self, epoch: int, loss: float, seen: int, epoch_start: float) -> bool:
        state, history, guard = self.state, self.history, self.guard
        logs = self.epoch_logs = {"loss": loss}
        logs.update({k: v / seen for k, v in state.metric_sums.items()})
        if self.validation is not None:
            val = evaluate(self.model, *self.validation, loss=self.loss, metrics=self.metric_fns)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["lr"] = self.optimizer.lr
        logs["time"] = time.perf_counter() - epoch_start
        guard.critical = True
        history.log_epoch(logs)
        state.epoch, state.batches_done, state.step = epoch + 1, 0, history.n_updates
        state.total, state.seen = 0.0, 0
        state.metric_sums = dict.fromkeys(self.metric_fns, 0.0)
        if state.rng_state is not None:
            state.rng_state = self.rng.bit_generator.state
        guard.critical = False
        if guard.pending:
            guard.release()
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)
        if not any_stop(self.callbacks):
            return False
        steps = len(self.loader)
        history.stopped_early = epoch < self.epochs - 1 or history.n_updates < self.epochs * steps
        return True

    def end(self, status: str, wall_time: float) -> None:
        self.trainer.finish()
        self.state.status = status
        self.history.wall_time = wall_time
        for cb in self.callbacks:
            cb.on_train_end(self.epoch_logs)


__all__ = ["DivergenceError", "evaluate", "fit", "predict"]
