"""What one worker of a data-parallel run does: sums over its own rows of a batch.

A worker holds a shard of the training data (a contiguous range of its rows) and a copy of the
model. For each update it receives the current parameters and which of its rows belong to the
batch, runs the eager step (forward, cost, backward: the same primitives as on one machine, no
formula written again) and returns the *sums* over those rows: the cost times the number of rows,
the gradients times the number of rows, and each metric times the number of rows. The driver adds
the workers' sums in a fixed order and divides by the batch size, which is the cost's mean.

This module does not import Ray: the Ray actor wraps :class:`ShardWorker` (see
:mod:`descend.cluster.ray`), and the tests drive it directly as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from descend.autodiff.tensor import Tensor
from descend.data.validation import check_array
from descend.nn.module import Module


class ShardRows:
    """The rows of one shard, from arrays in memory or from ``.npy`` files opened memory-mapped.

    Row ``i`` of the shard is row ``i`` of the concatenation of its pieces, in order.

    Parameters
    ----------
    X_pieces : ndarray, or sequence of ndarray or str
        One array of shape (n_i, n_features), or several, or paths of ``.npy`` files.
    y_pieces : ndarray, or sequence of ndarray or str
        The matching targets, of shape (n_i,) or (n_i, n_outputs).

    Examples
    --------
    >>> import numpy as np
    >>> rows = ShardRows([np.arange(4.0).reshape(2, 2), np.arange(4.0, 6.0).reshape(1, 2)],
    ...                  [np.array([0, 1]), np.array([2])])
    >>> len(rows), rows.take(np.array([2, 0]))[1].tolist()
    (3, [2, 0])
    """

    def __init__(self, X_pieces: Sequence | np.ndarray, y_pieces: Sequence | np.ndarray) -> None:
        if isinstance(X_pieces, np.ndarray):  # one array: a shard from Ray's object store
            X_pieces, y_pieces = [X_pieces], [y_pieces]
        self.X = [_open(p, "X") for p in X_pieces]
        self.y = [_open(p, "y") for p in y_pieces]
        for i, (a, b) in enumerate(zip(self.X, self.y, strict=True)):
            if len(a) != len(b):
                raise ValueError(
                    f"shard piece {i}: X has {len(a)} rows but y has {len(b)}; each X file "
                    "needs a y file of the same number of rows"
                )
        self.offsets = np.cumsum([0] + [len(a) for a in self.X])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, rows: np.ndarray | slice | None) -> tuple[np.ndarray, np.ndarray]:
        """``(X[rows], y[rows])`` of the shard, in the order of ``rows`` (an array of shard row
        numbers, a slice, or None for all)."""
        if rows is None:
            rows = slice(0, len(self))
        if len(self.X) == 1:
            return self.X[0][rows], self.y[0][rows]
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        piece = np.searchsorted(self.offsets, rows, side="right") - 1
        xb = np.empty((len(rows), *self.X[0].shape[1:]), self.X[0].dtype)
        yb = np.empty((len(rows), *self.y[0].shape[1:]), self.y[0].dtype)
        for i in np.unique(piece):
            mask = piece == i
            local = rows[mask] - self.offsets[i]
            xb[mask], yb[mask] = self.X[i][local], self.y[i][local]
        return xb, yb


def _open(piece, name: str) -> np.ndarray:
    if isinstance(piece, str | os.PathLike):
        path = Path(piece)
        if not path.is_file():
            raise FileNotFoundError(
                f"{name} shard file {str(path)!r} does not exist on worker host "
                f"{os.uname().nodename}; every worker must see the shard files at the same path"
            )
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return piece


class ShardWorker:
    """One worker: a copy of the model and a shard of the data; returns sums over its rows.

    Parameters
    ----------
    model : Module
        A copy of the driver's model (its weights are replaced at every call).
    loss_fn : callable
        The cost ``(pred, target) -> one-element Tensor``, a mean over the rows.
    metric_fns : dict of str to callable
        Metrics ``(y_true, y_pred) -> float``, each a mean over the rows.
    X_pieces, y_pieces : sequence of ndarray or str
        This worker's rows (see :class:`ShardRows`).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 1], seed=0, dtype=np.float64)
    >>> X, y = np.ones((4, 2)), np.zeros(4)
    >>> w = ShardWorker(model, ds.losses.mse, {}, [X], [y])
    >>> out = w.sums([p.data for p in model.parameters()], None)
    >>> out["n"], len(out["grads"])
    (4, 2)
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Callable,
        metric_fns: dict,
        X_pieces: Sequence,
        y_pieces: Sequence,
    ) -> None:
        self.model, self.loss_fn, self.metric_fns = model, loss_fn, metric_fns
        self.params = model.parameters()
        for p in self.params:  # a model from Ray's object store holds read-only arrays
            p.data = np.array(p.data)
        self.dtype = model.dtype or np.float32
        self.rows = ShardRows(X_pieces, y_pieces)
        for a in self.rows.X:
            if not isinstance(a, np.memmap):  # a memory map is checked batch by batch, as in fit
                check_array(a, finite=True, name="X")

    def pid(self) -> int:
        """The worker's process id (the tests kill it)."""
        return os.getpid()

    def describe(self) -> tuple:
        """``(rows, (X row shape, X dtype), (y row shape, y dtype))`` of this worker's shard."""
        x, y = self.rows.X[0], self.rows.y[0]
        return len(self.rows), (x.shape[1:], x.dtype), (y.shape[1:], y.dtype)

    def sums(self, weights: Sequence[np.ndarray], rows: np.ndarray | None) -> dict:
        """The summed cost, gradients and metrics over ``rows`` of this shard, at ``weights``.

        Parameters
        ----------
        weights : sequence of ndarray
            The parameters' values, in the order of ``model.parameters()``.
        rows : ndarray of int, or None
            This worker's rows of the batch (shard-local numbers, in batch order); None for all.

        Returns
        -------
        dict
            ``{"n": rows used, "cost": sum of the per-row costs, "grads": [dC/dp summed over
            the rows, ...], "metrics": {name: metric * n}}``; with ``n == 0``, zeros.
        """
        if rows is not None and len(rows) == 0:
            return {"n": 0, "cost": 0.0, "grads": None, "metrics": {}}
        for p, w in zip(self.params, weights, strict=True):
            p.data[...] = w
        n = len(self.rows) if rows is None else len(rows)
        total = {"n": n, "cost": 0.0, "grads": None, "metrics": dict.fromkeys(self.metric_fns, 0.0)}
        # Blocks of rows, added in order: the memory of one step stays bounded (a shard may
        # be a large memory-mapped file) and each block's arrays stay in cache.
        for start in range(0, n, CHUNK_ROWS):
            block = (
                slice(start, start + CHUNK_ROWS)
                if rows is None
                else rows[start : start + CHUNK_ROWS]
            )
            self._add_block(total, *self.rows.take(block))
        return total

    def _add_block(self, total: dict, xb, yb) -> None:
        xb = np.asarray(xb, dtype=self.dtype)
        n = len(xb)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.model.zero_grad()
            pred = self.model(xb)
            cost = self.loss_fn(pred, yb)
            value = float(cost.data)
            if np.isfinite(value):
                cost.backward()
            # The mean's gradient times the rows is the gradient of the sum over the rows.
            if total["grads"] is None:
                total["grads"] = [_grad_or_zero(p) * n for p in self.params]
            else:
                for g, p in zip(total["grads"], self.params, strict=True):
                    g += _grad_or_zero(p) * n
        total["cost"] += value * n
        output = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
        for name, fn in self.metric_fns.items():
            total["metrics"][name] += float(fn(yb, output)) * n


CHUNK_ROWS = 16_384
"""A worker computes its rows in blocks of at most this many (their sums added in order)."""


def _grad_or_zero(p: Tensor) -> np.ndarray:
    return p.grad if p.grad is not None else np.zeros_like(p.data)
