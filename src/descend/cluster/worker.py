"""What one worker of a data-parallel run does: sums over its own rows of a batch.

A worker holds a shard of the training data (a contiguous range of its rows) and a copy of the
model. For each update it receives the current parameters (one flat vector) and which of its rows
belong to the batch, and returns the *sums* over those rows: the cost times the number of rows,
the gradients times the number of rows (one flat vector, in the order of ``model.parameters()``)
and each metric times the number of rows. The driver adds the workers' sums in a fixed order and
divides by the batch size, which is the cost's mean.

The sums come from the compiled step's "sum of per-shard gradients"
(:func:`descend.compile.rewrites.shard_sums`: the plan traced from the eager step, the same table
functions, no formula written again), run on row blocks whose sizes are powers of two (at most
``CHUNK_ROWS``), so that a worker traces at most 15 batch shapes however the batches fall on its
shard. A model that cannot be compiled runs the eager step (forward, cost, backward) instead, in
blocks of ``CHUNK_ROWS`` rows.

This module does not import Ray: the Ray actor wraps :class:`ShardWorker` (see
:mod:`descend.cluster.ray`), and the tests drive it directly as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from descend.autodiff.tensor import Tensor
from descend.compile.rewrites import shard_sums
from descend.compile.step import compile_step
from descend.compile.trace import NotCompilable, NotFinite
from descend.data.validation import check_array
from descend.nn.module import Module
from descend.optim import GD

CHUNK_ROWS = 16_384
"""A worker computes its rows in blocks of at most this many (their sums added in order)."""


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


class Layout:
    """Where each parameter lives in the flat vector a worker receives and returns.

    Parameters
    ----------
    params : list of Tensor
        ``model.parameters()``: their values, in this order, make the vector.

    Attributes
    ----------
    size : int
        The number of values of every parameter together.
    dtype : numpy dtype
        The vector's (the parameters' common dtype).
    spans : list of (start, stop, shape)

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> layout = Layout(ds.nn.mlp([3, 2], seed=0, dtype=np.float64).parameters())
    >>> layout.size, layout.spans
    (8, [(0, 6, (3, 2)), (6, 8, (2,))])
    """

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.dtype = np.result_type(*[p.data.dtype for p in params]) if params else np.float32
        self.spans = []
        start = 0
        for p in params:
            self.spans.append((start, start + p.data.size, p.data.shape))
            start += p.data.size
        self.size = start

    def views(self, flat: np.ndarray) -> list[np.ndarray]:
        """Each parameter's part of ``flat``, shaped as the parameter (views, not copies)."""
        return [flat[a:b].reshape(shape) for a, b, shape in self.spans]

    def gather(self, arrays: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
        """``arrays`` (one per parameter) written one after the other into ``out``."""
        for view, a in zip(self.views(out), arrays, strict=True):
            np.copyto(view, a)
        return out


def power_blocks(n: int, largest: int | None = None) -> list[tuple[int, int]]:
    """Row blocks ``(start, stop)`` covering ``range(n)`` in order, each a power of two rows.

    Blocks of ``largest`` rows (a power of two; default ``CHUNK_ROWS``) first, then the rest
    by its binary digits, largest first: a compiled worker then meets at most
    ``log2(largest) + 1`` batch shapes.

    Examples
    --------
    >>> power_blocks(13)
    [(0, 8), (8, 12), (12, 13)]
    >>> power_blocks(40, largest=16)
    [(0, 16), (16, 32), (32, 40)]
    """
    largest = CHUNK_ROWS if largest is None else largest
    blocks, start = [], 0
    while n - start >= largest:
        blocks.append((start, start + largest))
        start += largest
    rest = n - start
    while rest:
        size = 1 << (rest.bit_length() - 1)
        blocks.append((start, start + size))
        start, rest = start + size, rest - size
    return blocks


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
    index : int, default 0
        This worker's place among the workers (which part of a message is its own).
    compile : bool, default True
        Compute with the compiled step (eager when the model cannot be compiled:
        ``why_eager`` says why).

    Attributes
    ----------
    why_eager : str or None
        None when the sums come from the compiled step, else the reason they do not.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 1], seed=0, dtype=np.float64)
    >>> X, y = np.ones((4, 2)), np.zeros(4)
    >>> w = ShardWorker(model, ds.losses.mse, {}, [X], [y])
    >>> n, cost, metrics, grads = w.sums(w.weights(), None)
    >>> n, grads.shape, w.why_eager
    (4, (3,), None)
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Callable,
        metric_fns: dict,
        X_pieces: Sequence,
        y_pieces: Sequence,
        index: int = 0,
        compile: bool = True,
    ) -> None:
        self.model, self.loss_fn, self.metric_fns = model, loss_fn, metric_fns
        self.index = index
        self.params = model.parameters()
        self.layout = Layout(self.params)
        # The parameters are views of one flat vector: one copy per update sets them all (and
        # a model from Ray's object store, whose arrays are read-only, gets writable ones).
        self.flat = self.layout.gather([p.data for p in self.params],
                                       np.empty(self.layout.size, self.layout.dtype))  # fmt: skip
        for p, view in zip(self.params, self.layout.views(self.flat), strict=True):
            p.data = view
        self.grads = np.zeros(self.layout.size, self.layout.dtype)
        self._grad_views = self.layout.views(self.grads)
        self.dtype = model.dtype or np.float32
        self.rows = ShardRows(X_pieces, y_pieces)
        for a in self.rows.X:
            if not isinstance(a, np.memmap):  # a memory map is checked batch by batch, as in fit
                check_array(a, finite=True, name="X")
        self.step = None
        self.why_eager: str | None = "compile=False"
        if compile:
            self._compile()

    def _compile(self) -> None:
        if len(self.rows) < 2:  # a trace of one row could not tell the batch from a constant
            self.why_eager = "the shard has fewer than 2 rows"
            return
        xb, yb = self.rows.take(slice(0, 2))
        try:
            self.step = compile_step(self.model, self.loss_fn, GD(0.1),
                                     np.asarray(xb, dtype=self.dtype), yb)  # fmt: skip
        except NotCompilable as exc:  # a custom model or cost: the eager step
            self.why_eager = exc.reason
        else:
            self.why_eager = None
            names = {id(p): i for i, p in enumerate(self.params)}
            self._grad_of = [
                (name, self._grad_views[names[id(p)]])
                for name, p in self.model.named_parameters().items()
            ]

    def pid(self) -> int:
        """The worker's process id (the tests kill it)."""
        return os.getpid()

    def describe(self) -> tuple:
        """``(rows, (X row shape, X dtype), (y row shape, y dtype), why_eager)`` of this
        worker's shard."""
        x, y = self.rows.X[0], self.rows.y[0]
        return len(self.rows), (x.shape[1:], x.dtype), (y.shape[1:], y.dtype), self.why_eager

    def weights(self) -> np.ndarray:
        """The model's parameters as one flat vector (a copy)."""
        return self.flat.copy()

    def run(self, message: tuple) -> tuple:
        """:meth:`sums` of a message ``(weights, rows of every worker or None)``: this
        worker's rows are ``rows[index]``."""
        weights, rows = message
        return self.sums(weights, None if rows is None else rows[self.index])

    def sums(self, weights: np.ndarray | None, rows: np.ndarray | None) -> tuple:
        """The summed cost, gradients and metrics over ``rows`` of this shard, at ``weights``.

        Parameters
        ----------
        weights : ndarray of shape (layout.size,), or None
            The parameters' values, one after the other in the order of
            ``model.parameters()`` (None: keep the current ones).
        rows : ndarray of int, or None
            This worker's rows of the batch (shard-local numbers, in batch order); None for all.

        Returns
        -------
        tuple
            ``(n, cost, metrics, grads)``: the rows used, the sum of their costs, a tuple of
            each metric times ``n`` (in the order of ``metric_fns``), and the gradients summed
            over the rows as one flat vector (this worker's buffer, overwritten by the next
            call); with ``n == 0``: ``(0, 0.0, (), None)``.
        """
        if rows is not None and len(rows) == 0:
            return 0, 0.0, (), None
        if weights is not None:
            self.flat[...] = weights
        n = len(self.rows) if rows is None else len(rows)
        total = [0.0, dict.fromkeys(self.metric_fns, 0.0)]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.step is not None:
                try:
                    self._sums(total, rows, n, power_blocks(n), self._add_compiled)
                except NotFinite:  # a new shape met values that are not finite: diverged
                    return n, float("nan"), tuple(total[1].values()), self.grads
                except NotCompilable as exc:  # a shape the plan cannot take: eager from now on
                    self.step, self.why_eager = None, exc.reason
            if self.step is None:
                total = [0.0, dict.fromkeys(self.metric_fns, 0.0)]
                blocks = [(a, min(a + CHUNK_ROWS, n)) for a in range(0, n, CHUNK_ROWS)]
                self._sums(total, rows, n, blocks, self._add_eager)
        return n, total[0], tuple(total[1].values()), self.grads

    def _sums(self, total: list, rows, n: int, blocks: list, add: Callable) -> None:
        # Blocks of rows, added in order: the memory of one step stays bounded (a shard may
        # be a large memory-mapped file) and each block's arrays stay in cache.
        for i, (start, stop) in enumerate(blocks):
            block = slice(start, stop) if rows is None else rows[start:stop]
            xb, yb = self.rows.take(block)
            add(total, np.asarray(xb, dtype=self.dtype), yb, first=i == 0)

    def _add_compiled(self, total: list, xb, yb, first: bool) -> None:
        (part,) = shard_sums(self.step, xb, yb, 1)  # the compiled plan's sums over the block
        for name, view in self._grad_of:
            g = part.grads.get(name)
            if g is None:  # a parameter the cost does not depend on
                if first:
                    view[...] = 0
            elif first:
                np.copyto(view, g)
            else:
                view += g
        total[0] += part.cost
        if self.metric_fns:
            output = self.step.block_runner(xb, yb, 0).output()
            self._add_metrics(total, yb, output, len(xb))

    def _add_eager(self, total: list, xb, yb, first: bool) -> None:
        n = len(xb)
        self.model.zero_grad()
        pred = self.model(xb)
        cost = self.loss_fn(pred, yb)
        value = float(cost.data)
        if np.isfinite(value):
            cost.backward()
        # The mean's gradient times the rows is the gradient of the sum over the rows.
        for p, view in zip(self.params, self._grad_views, strict=True):
            g = p.grad * n if p.grad is not None else 0
            if first:
                view[...] = g
            else:
                view += g
        total[0] += value * n
        if self.metric_fns:
            output = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
            self._add_metrics(total, yb, output, n)

    def _add_metrics(self, total: list, yb, output, n: int) -> None:
        for name, fn in self.metric_fns.items():
            total[1][name] += float(fn(yb, output)) * n
