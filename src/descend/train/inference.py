"""``predict`` and ``evaluate``: the model's output and its cost on data, changing nothing."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import numpy as np

from descend import losses
from descend.autodiff.tensor import Tensor, no_grad
from descend.compile import NotCompilable, trace_forward
from descend.compile.backend import finite, map_pieces, n_workers, split_rows
from descend.compile.replay import Executor
from descend.compile.rewrites import reuse_buffers
from descend.data import check_X_y
from descend.data.validation import check_array, is_memory_mapped
from descend.nn.activations import Activation
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential
from descend.train.checks import (
    check_features,
    check_metrics,
    check_model,
    check_positive_int,
    check_range,
    checked_targets,
)
from descend.train.metrics import get_metrics


def predict(model: Module, X, *, batch_size: int | None = None) -> np.ndarray:
    """The model's output for ``X``, as an array (class probabilities for a softmax output).

    The forward pass runs as a compiled plan (:func:`descend.compile.trace_forward`: the
    model's own calls of the primitives table, replayed chunk by chunk in reused buffers, the
    chunks shared between the cores when each is large; for a Sequential of Dense and
    activation layers the compiled passes are kept with the model for the next call); a model
    that cannot be compiled runs eagerly, chunk by chunk.

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
    check_model(model)
    # A Dense stack's output is NaN or inf in every row where X is (NaN and inf propagate
    # through every product and activation), so X is checked only when the output is not
    # finite; any other model's X is checked first.
    dense_stack = isinstance(model, Sequential) and all(type(m) is Dense for m in model.layers)
    X = check_array(X, finite=not dense_stack and not is_memory_mapped(X))
    check_features(model, X, "X")
    dtype = model.dtype or np.float32
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    if len(X):
        flops = largest_matmul_flops(model, 1) or 0.0
        if batch_size is None and len(X) * flops >= 2 * PARALLEL_MIN_FLOPS:
            step = PREDICT_BLOCK_ROWS  # blocks the cores can share, and cache-sized
        try:
            return _compiled_predict(model, X, step, flops, dtype)
        except NotCompilable:
            pass
    outputs = []
    with no_grad():
        for start in range(0, len(X), step):
            out = model(chunk_rows(X, start, step, dtype))
            out = out.data if isinstance(out, Tensor) else np.asarray(out)
            check_output(out, start, "X")
            outputs.append(out)
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def _compiled_predict(model: Module, X, step: int, flops: float, dtype) -> np.ndarray:
    n_chunks = -(-len(X) // step)
    workers = min(n_workers() if step * flops >= PARALLEL_MIN_FLOPS else 1, n_chunks)
    # as many chunks for each core, none larger than the step: on two cores 49 chunks of
    # 1,024 rows become 50 of 1,000, so that no core is left with one chunk more
    n_chunks = -(-n_chunks // workers) * workers
    chunks = split_rows(len(X), n_chunks)  # equal sizes, each at most the step
    sizes = sorted({stop - start for start, stop in chunks}, reverse=True)
    first = chunk_rows(X, 0, sizes[0], dtype)
    with _Forwards(model, first, sizes, workers) as passes:
        plan = passes[0][sizes[0]].plan
        out = plan.slots[plan.output]
        result = np.empty((len(X), *out.shape[1:]), out.dtype)

        def chunk(worker: int, i: int) -> None:
            start, stop = chunks[i]
            rows = chunk_rows(X, start, stop - start, dtype)
            executor = passes[worker][stop - start]
            # NaN, inf and overflow are found and reported below, without NumPy's warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                np.copyto(result[start:stop], executor(rows)[executor.plan.output])

        map_pieces(chunk, n_chunks, workers=workers)
    if not finite(result):
        check_array(X, finite=not is_memory_mapped(X))  # names the first row of X at fault
        check_output(result, 0, "X")
    return result


class _Forwards:
    """The compiled forward passes of one prediction: per worker, one per chunk size.

    Each chunk size is traced once (:func:`~descend.compile.trace_forward`: the model's own
    calls of the primitives table, run eagerly once on the first chunk); each worker replays
    a copy of that plan in buffers of its own (:func:`~descend.compile.rewrites.reuse_buffers`).
    Tracing runs a chunk, so a prediction of 50 chunks on two cores would spend about 4% of its
    time tracing again at every call: the passes of a Sequential of Dense and activation
    layers are kept with the model (weakly: they go when it goes) and used again by the next
    call with the same chunk sizes, parameter tensors and layers, unless their buffers would
    hold more than ``PREDICT_CACHE_BYTES``. They read the parameters' current ``.data`` at
    every call, so training between two predictions changes nothing. A call that finds them
    in use (another thread predicting with the same model) makes its own.

    Used as a context manager, it gives the passes: ``passes[w][rows]`` is worker ``w``'s
    executor for chunks of ``rows`` rows.
    """

    def __init__(self, model: Module, first: np.ndarray, sizes: list[int], workers: int):
        self.model, self.first, self.sizes, self.workers = model, first, sizes, workers
        self.params = model.named_parameters()
        self.key = _forward_key(model, first, sizes, workers, self.params)
        self.lock: threading.Lock | None = None

    def __enter__(self) -> list[dict[int, Executor]]:
        entry = _FORWARDS.get(self.model) if self.key is not None else None
        if entry is not None and entry[0] == self.key and entry[2].acquire(blocking=False):
            self.lock = entry[2]
            return entry[1]
        passes: list[dict[int, Executor]] = [{} for _ in range(self.workers)]
        for rows in self.sizes:
            traced = trace_forward(self.model, self.first[:rows])
            for mine in passes:
                plan = traced.copy()
                reuse_buffers(plan)
                mine[rows] = Executor(plan, self.params)
        if self.key is not None and _buffer_bytes(passes) <= PREDICT_CACHE_BYTES:
            self.lock = threading.Lock()
            self.lock.acquire()
            _FORWARDS[self.model] = (self.key, passes, self.lock)
        return passes

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()


def _forward_key(model: Module, first: np.ndarray, sizes: list[int], workers: int, params):
    """What the kept forward passes of ``model`` depend on; None when they are not kept (any
    model but a Sequential of Dense and Activation layers, whose forward pass is fixed by its
    layers, their activations and its parameter tensors; a Module that cannot be weakly
    referenced)."""
    if type(model) is not Sequential:
        return None
    layers = []
    for layer in model.layers:
        if type(layer) is Dense:
            layers.append((layer, layer.activation_fn))
        elif type(layer) is Activation:
            layers.append((layer, layer.fn))
        else:
            return None
    try:
        weakref.ref(model)
    except TypeError:
        return None
    # the tensors themselves (kept alive by the passes, so their ids are not reused) and the
    # shapes and dtypes of their arrays now (the buffers were made for those)
    tensors = tuple((name, id(p), p.data.shape, p.data.dtype.str) for name, p in params.items())
    return (tuple(layers), tensors, first.shape, first.dtype.str, tuple(sizes), workers)


def _buffer_bytes(passes: list[dict[int, Executor]]) -> int:
    total = 0
    for mine in passes:
        for executor in mine.values():
            for op in executor.plan.ops:
                buffers = op.out_buffers
                for b in buffers if isinstance(buffers, tuple) else (buffers,):
                    total += b.nbytes if isinstance(b, np.ndarray) else 0
    return total


# The compiled forward passes kept per model between predictions (see _Forwards), and the most
# memory their buffers may hold.
_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
PREDICT_CACHE_BYTES = 64 * 2**20

# A chunk whose largest product has fewer FLOPs than this is computed on one core (handing it
# to another costs more than it saves); a prediction of all rows at once is cut into blocks of
# PREDICT_BLOCK_ROWS rows when it is large.
PARALLEL_MIN_FLOPS = 5e7
PREDICT_BLOCK_ROWS = 2048


def chunk_rows(X: np.ndarray, start: int, step: int, dtype) -> np.ndarray:
    rows = X[start : start + step]
    if rows.dtype != dtype:
        check_range(rows, dtype, "X")
    return np.asarray(rows, dtype=dtype)


def check_output(out: np.ndarray, start: int, name: str) -> None:
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
    check_model(model)
    loss_fn = losses.get(loss)
    if isinstance(metrics, dict):
        metric_fns = metrics
    else:
        metric_fns = get_metrics(check_metrics(metrics), losses.is_classification(loss))
    X, y = check_X_y(X, y, finite=not is_memory_mapped(X))
    check_features(model, X, "X")
    dtype = model.dtype or np.float32
    check_range(y, dtype, "y")
    checked_targets(model, X, y, loss_fn, dtype, "y")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size", "e.g. batch_size=1024")
    step = batch_size or len(X)
    total = 0.0
    preds = []
    # The graph is recorded (not no_grad) so that a softmax/sigmoid output meets its cross-entropy
    # in the same fused, exact form as in training; nothing is back-propagated.
    for start in range(0, len(X), step):
        xb = chunk_rows(X, start, step, dtype)
        yb = y[start : start + step]
        pred = model(xb)
        data = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
        check_output(data, start, "X")
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
    for name, score in zip(metric_fns, scores(list(metric_fns.items()), y, y_pred), strict=True):
        out[name] = float(score)
    return out


def scores(metric_items, y_true, y_pred) -> list:
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


def largest_matmul_flops(model: Module, batch_size: int) -> float | None:
    # For a network of Dense layers: the FLOPs of its largest product in one update.
    sizes = [m.in_features * m.out_features for m in model.modules() if isinstance(m, Dense)]
    return 2.0 * batch_size * max(sizes) if sizes else None


__all__ = ["evaluate", "predict"]
