"""``fit``: epochs of batches through :class:`~descend.train.Trainer` steps, recorded.

One update is the Trainer's step, the textbook loop (see :mod:`descend.train.trainer`)::

    model.zero_grad()                  # forget the previous update's gradients
    pred = model(X_batch)              # forward pass
    cost = loss(pred, y_batch)         # the cost of this batch
    cost.backward()                    # backpropagation: dC/dW, dC/db for every layer
    optimizer.step(model.parameters()) # gradient descent: theta <- theta - lr * dC/dtheta

``fit`` adds what is around it: the batches of each epoch, the records (``History``), the
callbacks, the Ctrl-C guard, checkpoints and the watch for divergence. What it works with is set
up from its arguments in :mod:`~descend.train.setup`; its argument checks live in
:mod:`~descend.train.checks`, resuming in :mod:`~descend.train.resume`, the Ctrl-C guard in
:mod:`~descend.train.interrupt`, the watch in :mod:`~descend.train.divergence`, ``evaluate``
and ``predict`` in :mod:`~descend.train.inference`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from descend import optim
from descend.cluster.ray import Ray
from descend.compile.backend import single_thread_if_small
from descend.nn.module import Module
from descend.train.callbacks import Callback, any_stop
from descend.train.history import History
from descend.train.inference import evaluate, largest_matmul_flops, predict, scores
from descend.train.interrupt import DeferInterrupt
from descend.train.resume import epoch_done
from descend.train.setup import Run
from descend.train.trainer import DivergenceError


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
    run = Run(model, loss, optimizer, lr, epochs, metrics, callbacks, compile, fused, cluster)
    run.prepare(X, y, batch_size, shuffle, seed, validation_data, validation_split, progress)
    run.begin(resume_from)
    for cb in run.callbacks:
        cb.on_train_begin(run.begin_logs)
    guard = run.guard = DeferInterrupt().install()
    start, wall_before, status = time.perf_counter(), run.history.wall_time, "failed"
    try:
        # Overflow on the way to divergence is caught as a non-finite or exploding cost, with a
        # message that says what to do; NumPy's own warnings would only add noise.
        flops = largest_matmul_flops(model, run.loader.batch_size)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            with single_thread_if_small(flops):
                for epoch in range(run.state.epoch, run.epochs):
                    if _epoch(run, epoch):
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
        run.trainer.finish()
        run.state.status = status
        run.history.wall_time = wall_before + time.perf_counter() - start
        for cb in run.callbacks:
            cb.on_train_end(run.epoch_logs)
    return run.history


def _epoch(run: Run, epoch: int) -> bool:
    """One epoch (the rest of it, when resumed): its batches, each one update and its record;
    True when a callback stopped training."""
    state, history, callbacks, guard = run.state, run.history, run.callbacks, run.guard
    trainer, optimizer, dtype, watch = run.trainer, run.optimizer, run.dtype, run.watch
    epoch_start = time.perf_counter()
    for cb in callbacks:
        cb.on_epoch_begin(epoch, {"lr": optimizer.lr})
    watch.start_epoch(epoch)
    metric_items, metric_sums = list(run.metric_fns.items()), state.metric_sums
    step_loss, step_size, cluster = history.step["loss"], history.step["batch_size"], run.cluster
    batch, total, seen = state.batches_done, state.total, state.seen  # zero, unless resumed
    for xb, yb in run.loader.epoch(batch):
        if xb.dtype != dtype and cluster is None:
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
            got = scores(metric_items, yb, trainer.output) if cluster is None else trainer.scores
            for (name, _), score in zip(metric_items, got, strict=True):
                metric_sums[name] += score * n
        step_loss.append(value)
        step_size.append(n)
        total += value * n
        seen += n
        batch += 1
        history.n_updates = step + 1
        if run.checkpointing:  # where the run is, for a Checkpoint's save
            state.step, state.batches_done, state.total, state.seen = step + 1, batch, total, seen
        guard.critical = False
        if guard.pending:
            guard.release()
        if callbacks:
            logs = {"loss": value, "batch_size": n, "epoch": epoch, "lr": rate}
            for cb in callbacks:
                cb.on_step_end(step, logs)
            if any_stop(callbacks):
                break
    return _end_epoch(run, epoch, epoch_start, total, seen)


def _end_epoch(run: Run, epoch: int, epoch_start: float, total: float, seen: int) -> bool:
    """The epoch's record (as one, like an update's) and the callbacks' turn; True when a
    callback stopped training."""
    state, history, guard, callbacks = run.state, run.history, run.guard, run.callbacks
    logs = run.epoch_logs = {"loss": total / seen}
    logs.update({k: v / seen for k, v in state.metric_sums.items()})
    if run.validation is not None:
        val = evaluate(run.model, *run.validation, loss=run.loss, metrics=run.metric_fns)
        logs.update({f"val_{k}": v for k, v in val.items()})
    logs["lr"], logs["time"] = run.optimizer.lr, time.perf_counter() - epoch_start
    guard.critical = True
    history.log_epoch(logs)
    epoch_done(state, epoch, run.rng)
    guard.critical = False
    if guard.pending:
        guard.release()
    for cb in callbacks:
        cb.on_epoch_end(epoch, logs)
    if not any_stop(callbacks):
        return False
    steps = run.epochs * len(run.loader)
    history.stopped_early = epoch < run.epochs - 1 or history.n_updates < steps
    return True


__all__ = ["DivergenceError", "evaluate", "fit", "predict"]
