"""What one call of ``fit`` works with, set up from its arguments before the first update.

:class:`Run` gathers it: the :class:`~descend.train.Trainer` (or the cluster's), the batches, the
records (:class:`~descend.train.History` and the :class:`~descend.train.TrainingState` a
checkpoint saves), the callbacks and the watch for divergence. The arguments are checked by
:mod:`~descend.train.checks` in the order ``fit`` always checked them, so that the first wrong
argument is the one named; a checkpoint is resumed by :mod:`~descend.train.resume`.
"""

from __future__ import annotations

import warnings

import numpy as np

from descend import losses
from descend.cluster.trainer import ClusterTrainer
from descend.data import batches as make_batches
from descend.data.validation import as_generator
from descend.train import checks
from descend.train.callbacks import with_progress_bar
from descend.train.checkpoint import Checkpoint, TrainingState
from descend.train.divergence import DivergenceWatch
from descend.train.history import History, fit_params
from descend.train.metrics import get_metrics
from descend.train.resume import fit_args, resume
from descend.train.trainer import Trainer


class Run:
    """One call of ``fit``: set up in three steps: ``Run(...)``, :meth:`prepare`, :meth:`begin`.

    Attributes
    ----------
    model : Module
    loss : callable
        The cost, resolved from its name.
    optimizer : Optimizer
    trainer : Trainer or ClusterTrainer
        One update per batch (``trainer.step(xb, yb)``).
    metric_fns : dict of str to callable
    callbacks : list of Callback
        With a :class:`~descend.train.ProgressBar` added when one is wanted.
    epochs : int
    loader : Batches
        The batches of each epoch (on a cluster: of the row numbers).
    rng : numpy.random.Generator
        The generator that orders the batches.
    validation : (X_val, y_val) or None
    history : History
    state : TrainingState
        Where the run is: kept up to date by the loop, saved by a Checkpoint.
    watch : DivergenceWatch
    dtype : numpy dtype
        The model's; each batch is cast to it.
    cluster : descend.cluster.Ray or None
    checkpointing : bool
        Whether a :class:`~descend.train.Checkpoint` is among the callbacks (then the loop
        keeps ``state`` up to date at every update, for its saves).
    guard : DeferInterrupt
        The Ctrl-C guard, installed by ``fit`` for the loop.
    begin_logs : dict
        The logs of ``on_train_begin``.
    epoch_logs : dict
        The last epoch's logs (empty before the first), for ``on_train_end``.
    """

    def __init__(self, model, loss, optimizer, lr, epochs, metrics, callbacks, compile, fused,
                 cluster) -> None:  # fmt: skip
        if fused is not None:
            # stacklevel 3: the line of the user's code that called fit
            warnings.warn("fit(fused=...) is now fit(compile=...)", DeprecationWarning, 3)
            compile = fused
        checks.check_model(model)
        hint = "train for at least one epoch, e.g. epochs=10"
        self.epochs = checks.check_positive_int(epochs, "epochs", hint)
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

    def prepare(self, X, y, batch_size, shuffle, seed, validation_data, validation_split,
                progress) -> None:  # fmt: skip
        """Check the data, batch it and prepare the trainer for it."""
        data_checks = checks.data if self.cluster is None else ClusterTrainer.check_data
        X, y, self.validation = data_checks(
            self.model, X, y, validation_data, validation_split, self.loss
        )
        self.rng = rng = as_generator(seed)
        batched = (X, y)
        if self.cluster is not None:  # the workers hold the rows: fit batches the row numbers
            batched = (self.trainer.prepare(X, y), None)
            X, y = self.trainer.like  # zero rows of the data's shapes, for the records
        self.loader = make_batches(*batched, batch_size=batch_size, shuffle=shuffle, seed=rng)
        callbacks = with_progress_bar(self.callbacks, progress)
        self.trainer.reads_grads = any(getattr(c, "reads_gradients", True) for c in callbacks)
        if self.cluster is None:  # the batches then take the targets as the cost uses them
            y = self.loader.y = self.trainer.prepare(X, y, self.loader.batch_size)
        loader, epochs = self.loader, self.epochs
        params = fit_params(loader, self.optimizer, self.loss, self.trainer, epochs)
        self.history = History(params=params)
        args = fit_args(loader, epochs, X, y, self.dtype, self.loss, self.metric_fns,
                        self.validation)  # fmt: skip
        self.state = TrainingState(self.model, self.optimizer, self.history, args, self.metric_fns)

    def begin(self, resume_from) -> None:
        """Resume from a checkpoint when asked; set up the watch and hand the callbacks the run."""
        loader, state, history = self.loader, self.state, self.history
        if resume_from is not None:
            self.rng = resume(resume_from, state, self.rng, self.epochs, self.model, self.optimizer)
            loader.generator = self.rng
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
        self.begin_logs = {
            "epochs": self.epochs, "steps_per_epoch": len(loader),
            "n_samples": loader.n_samples, "batch_size": loader.batch_size,
        }  # fmt: skip
