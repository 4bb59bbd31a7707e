"""``ClusterTrainer``: the Trainer's update, with the batch's sums computed on Ray workers.

It has the interface of :class:`descend.train.Trainer` that ``fit`` drives (``prepare``,
``step``, ``finish``, ``params``, ``executor``), so ``fit`` runs the same loop, records,
callbacks, checkpoints and Ctrl-C handling on one machine and on a cluster. The one difference
is what a batch is: ``fit`` batches the *row numbers* (the same permutation per epoch as on one
machine, from the same seed), and each worker reads its own rows of each batch from its shard.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite

import numpy as np

from descend import losses
from descend.cluster.ray import DataParallel, Ray, _as_pieces
from descend.compile.backend import finite
from descend.data import check_X_y
from descend.nn.module import Module
from descend.optim import Optimizer
from descend.train import checks


class ClusterTrainer:
    """One update of gradient descent whose cost and gradients are sums over Ray workers.

    Parameters
    ----------
    cluster : Ray
    model : Module
        The driver's model: the optimizer updates it; workers get its parameters every update.
    loss : str or callable
        A cost that is a mean over the rows.
    optimizer : Optimizer
    metric_fns : dict, optional
        Metrics computed on the workers from each update's forward pass (means over rows).

    Attributes
    ----------
    executor : str
        ``"ray"``.
    why_eager : str or None
        After :meth:`prepare`: None when the workers compute with the compiled step, else the
        reason they run the eager one.
    scores : list of float
        The last batch's metrics, in the order of ``metric_fns``.
    data : DataParallel or None
        The workers, between :meth:`prepare` and :meth:`finish`.

    Examples
    --------
    >>> import descend as ds
    >>> t = ClusterTrainer(ds.cluster.Ray(workers=2), ds.nn.mlp([2, 1], seed=0), "mse",
    ...                    ds.optim.GD(0.1))
    >>> t.executor, t.data is None
    ('ray', True)
    """

    executor = "ray"
    why_eager = None
    plan = None
    output = None
    reads_grads = True

    def __init__(
        self,
        cluster: Ray,
        model: Module,
        loss: str | Callable,
        optimizer: Optimizer,
        metric_fns: dict | None = None,
    ) -> None:
        self.cluster, self.model, self.loss = cluster, model, losses.get(loss)
        self.optimizer, self.metric_fns = optimizer, dict(metric_fns or {})
        self.params = model.parameters()
        self.data: DataParallel | None = None
        self.scores: list[float] = []
        self.n_steps = 0

    @staticmethod
    def check_data(model: Module, X, y, validation_data, validation_split, loss_fn):
        """``fit``'s checks of the data: those of one machine for arrays; for shard files, what
        the driver can check without reading them (the workers check their rows)."""
        if not _is_files(X):
            return checks.data(model, X, y, validation_data, validation_split, loss_fn)
        if validation_split:
            raise ValueError(
                "validation_split needs the data on the driver; with shard files pass "
                "validation_data=(X_val, y_val) instead"
            )
        if validation_data is None:
            return X, y, None
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val, y_val = check_X_y(*validation_data, name_X="X_val", name_y="y_val")
        dtype = model.dtype or np.float32
        checks.check_features(model, X_val, "X_val")
        checks.check_range(y_val, dtype, "y_val")
        checks.checked_targets(model, X_val, y_val, loss_fn, dtype, "y_val")
        return X, y, (checks.as_model_dtype(X_val, dtype, "X_val"), y_val)

    def prepare(self, X, y, batch_size: int | None = None) -> np.ndarray:
        """Start the workers on shards of ``(X, y)``; return the row numbers to batch.

        Arrays' targets are checked (and converted) as on one machine first.

        Returns
        -------
        ndarray of shape (n_samples, 1)
            The global row numbers: batching them as ``fit`` batches ``X`` gives the same
            batches of the same samples (pass each batch to :meth:`step`).
        """
        if not _is_files(X):
            dtype = self.model.dtype or np.float32
            y = checks.checked_targets(self.model, X, y, self.loss, dtype, "y")
        if self.data is None:
            self.data = self.cluster.data_parallel(self.model, self.loss, X, y, self.metric_fns)
            self.why_eager = self.data.why_eager
        return np.arange(self.data.n_samples).reshape(-1, 1)

    @property
    def like(self) -> tuple[np.ndarray, np.ndarray]:
        """Zero-row arrays with the data's row shapes and dtypes (what records need of it)."""
        (x_shape, x_dtype), (y_shape, y_dtype) = self.data.shapes
        return np.empty((0, *x_shape), x_dtype), np.empty((0, *y_shape), y_dtype)

    def step(self, rows: np.ndarray, _y=None) -> float:
        """One update on the batch of these rows; returns its cost before the update.

        Raises
        ------
        DivergenceError
            When the cost or a gradient is not finite: nothing was updated.
        """
        value = self.data.gradients(None if rows is None else np.asarray(rows).reshape(-1))
        self.scores = self.data.scores
        if not isfinite(value):
            raise self._diverged("the cost", value)
        if not finite(self.data.grads):
            raise self._diverged("a gradient", "not finite")
        self.optimizer.step(self.params)
        self.n_steps += 1
        return value

    def finish(self) -> None:
        """Stop the workers."""
        if self.data is not None:
            self.data.close()
            self.data = None

    def _diverged(self, what: str, value):
        from descend.train import DivergenceError

        lr = self.optimizer.lr
        err = DivergenceError(
            f"training diverged at update {self.n_steps}: {what} became {value}; nothing was "
            f"updated. Try a smaller learning rate (lr={lr:g} now; e.g. lr={lr / 10:g})",
            step=self.n_steps, epoch=None, lr=lr, history=None,
        )  # fmt: skip
        err.what, err.value = what, value
        return err


def _is_files(X) -> bool:
    return _as_pieces(X) is not None


__all__ = ["ClusterTrainer"]
