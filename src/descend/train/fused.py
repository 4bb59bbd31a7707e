"""The fused training step: one update of a stack of Dense layers without building a graph.

For the networks descend is mostly used for (a :class:`~descend.nn.Sequential` of
:class:`~descend.nn.Dense` layers with built-in activations, and a built-in cost that fits the
output layer), the graph that :mod:`descend.autodiff` records is the same at every update. This
module runs that same computation directly, in buffers that are allocated once per batch size and
reused, with the activations and their derivatives applied in place:

* forward, layer by layer: ``z = a @ W`` written into a buffer, ``z += b``, then the activation
  in place (``a`` overwrites ``z``: ReLU, tanh and the sigmoid's derivatives only need ``a``);
* the cost and dC/dz of the output layer, by the same table entries that the graph uses
  (``softmax_cross_entropy``, ``sigmoid_binary_cross_entropy``) or, for the squared error, the
  same operations in the same order;
* backward, layer by layer: ``dW = a_prev^T dz``, ``db = sum(dz)``, ``da_prev = dz W^T`` into
  buffers, then ``dz_prev = da_prev * f'(z_prev)`` in place. No dC/dX for the first layer.

The results equal the graph's to the last bit in the tests (same formulas, same order, same
BLAS calls); ``ds.fit(..., fused=False)`` always takes the graph.

Two paths differ from the graph only by rounding (float32 about 1e-7 relative per update; the
tests hold trained weights to 1e-5, float64 to 1e-10):

* for plain gradient descent, :meth:`FusedStep.descend` also applies the update: a large weight
  matrix at a small batch takes ``W <- W - lr a_prev^T dz`` in one BLAS call, without dC/dW
  being written out and read back (see its docstring);
* a large batch is cut into row blocks, one share per core, whose partial gradients are added at
  the end (``FusedStep._blocked_gradients``): another order of the same sums.

The parameters' ``.grad`` are set to the reused gradient buffers, so they are overwritten by the
next update: copy them in a callback if you keep them.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite

import numpy as np

from descend import losses
from descend.autodiff.primitives import PRIMITIVES, max_keepdims, stable_sigmoid
from descend.compile.backend import Axpy, GemmUpdate, map_pieces, n_workers, split_rows
from descend.data.validation import all_finite, finite_by_sum
from descend.nn.activations import activation_name
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential

_HIDDEN = ("relu", "leaky_relu", "sigmoid", "tanh", "linear")

# A batch is cut into row blocks for the cores when its forward products have at least
# BLOCKED_MIN_FLOPS and it has at least 2 * MIN_BLOCK_ROWS rows; blocks have about BLOCK_ROWS
# rows (a block's activations then stay in the cache between its forward and backward pass).
# Measured on 2 cores, MLP 784-256-10, per update: 1,024 rows 5.1 ms cut against 4.8 ms whole,
# 2,048 rows 9.0 against 9.7, 4,096 rows 19.2 against 20.1, 20,000 rows 69 against 85.
BLOCKED_MIN_FLOPS = 8e8
MIN_BLOCK_ROWS = 1024
BLOCK_ROWS = 2048


def _head(output_activation: str, loss_fn: Callable, n_outputs: int) -> str | None:
    """Which fused cost fits the output layer and cost, or None (the graph handles the rest)."""
    if loss_fn is losses.log_loss:
        loss_fn = (
            losses.binary_cross_entropy if n_outputs == 1 else losses.categorical_cross_entropy
        )
    if output_activation == "softmax" and loss_fn is losses.categorical_cross_entropy:
        return "softmax_ce"
    if output_activation == "sigmoid" and loss_fn is losses.binary_cross_entropy:
        return "sigmoid_bce"
    if output_activation in _HIDDEN and loss_fn is losses.mse:
        return "mse"
    return None


def compile_step(model: Module, loss: str | Callable) -> FusedStep | None:
    """A fused step for ``model`` and ``loss`` when they qualify, else None.

    Qualify: a ``Sequential`` of ``Dense`` layers with biases, built-in activations (softmax only
    on the last layer) and one dtype, with softmax + categorical cross-entropy, sigmoid + binary
    cross-entropy (or log loss for either), or any of the other activations + squared error.

    Examples
    --------
    >>> import descend as ds
    >>> model = ds.nn.mlp([4, 8, 3], output_activation="softmax", seed=0)
    >>> compile_step(model, "categorical_cross_entropy") is not None
    True
    >>> compile_step(model, "mse") is None   # softmax + squared error: the graph handles it
    True
    """
    found = _dense_stack(model)
    if found is None:
        return None
    names, dtype = found
    try:
        loss_fn = losses.get(loss)
    except ValueError:
        return None
    head = _head(names[-1], loss_fn, model.layers[-1].out_features)
    if head is None:
        return None
    return FusedStep(model, names, head, dtype)


def _dense_stack(model: Module) -> tuple[list[str], np.dtype] | None:
    """The activation names and dtype of a Sequential of Dense layers with biases and built-in
    activations (softmax only last), or None when the model is anything else."""
    if not isinstance(model, Sequential) or not model.layers:
        return None
    names = []
    for layer in model.layers:
        if type(layer) is not Dense or layer.bias is None:
            return None
        names.append(activation_name(layer.activation))
    if any(name not in _HIDDEN for name in names[:-1]) or names[-1] not in (*_HIDDEN, "softmax"):
        return None
    dtypes = {p.dtype for p in model.parameters()}
    return (names, dtypes.pop()) if len(dtypes) == 1 else None


def _forward(
    layers, activations, X, buffers, *, last_activation: bool, inspect_first=None
) -> np.ndarray:
    """Each layer's z = a @ W + b into its buffer, then its activation in place; the last
    layer's activation only when ``last_activation`` (softmax/sigmoid are left to the caller).
    ``inspect_first(z)``, when given, sees the first layer's z before its activation."""
    a = X
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        z = np.dot(a, layer.weight.data, out=buffers[i])
        z += layer.bias.data
        if i == 0 and inspect_first is not None:
            inspect_first(z)
        name = activations[i]
        if i == last and not last_activation:
            return z
        if name == "relu":
            np.maximum(z, 0, out=z)
        elif name == "leaky_relu":
            # The graph's leaky_relu is where(z > 0, z, z * 0.01).
            np.multiply(z, 0.01, out=z, where=z <= 0)
        elif name == "sigmoid":
            np.copyto(z, stable_sigmoid(z))
        elif name == "tanh":
            np.tanh(z, out=z)
        a = z
    return a


def compile_forward(model: Module) -> FusedForward | None:
    """A prediction function with reused buffers for a Sequential of Dense layers, else None.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([4, 8, 3], output_activation="softmax", seed=0)
    >>> forward = compile_forward(model)
    >>> X = np.ones((5, 4), np.float32)
    >>> bool(np.array_equal(forward(X), ds.predict(model, X)))
    True
    """
    found = _dense_stack(model)
    return None if found is None else FusedForward(model, *found)


class FusedForward:
    """The network's output for a batch, computed in buffers kept between calls."""

    def __init__(self, model: Sequential, activations: list[str], dtype) -> None:
        self.layers: list[Dense] = list(model.layers)
        self.activations = activations
        self.dtype = np.dtype(dtype)
        self._buffers: dict[int, list[np.ndarray]] = {}
        self._parameters_finite: bool | None = None  # of the first layer, checked once

    def __call__(
        self, X: np.ndarray, out: np.ndarray | None = None, *, check_finite: bool = False
    ) -> np.ndarray:
        """Output of shape (n, out_features) for X of shape (n, in_features); into ``out``.

        The caller checks X's shape (``predict`` does, once for all chunks). With
        ``check_finite``, a ValueError is raised when X holds NaN or inf (see
        :meth:`_check_rows`)."""
        n = X.shape[0]
        buffers = self._buffers.get(n)
        if buffers is None:
            if len(self._buffers) >= 2:
                self._buffers.clear()
            buffers = [np.empty((n, d.out_features), self.dtype) for d in self.layers]
            self._buffers[n] = buffers
        last = self.activations[-1]
        inspect = (lambda z: self._check_rows(X, z)) if check_finite else None
        z = _forward(
            self.layers, self.activations, X, buffers, last_activation=last != "softmax",
            inspect_first=inspect,
        )  # fmt: skip
        if out is None:
            out = np.empty_like(z)
        if last == "softmax":
            # The table's softmax, written into out: exp(z - max) / sum, same operations.
            np.subtract(z, max_keepdims(z), out=z)
            np.exp(z, out=out)
            out /= out.sum(axis=-1, keepdims=True)
        else:
            np.copyto(out, z)
        return out

    def _check_rows(self, X: np.ndarray, z: np.ndarray) -> None:
        """Raise when X has a value that is not finite, read from the first layer's z = XW + b.

        With finite W and b, a row of X holding NaN or +-inf makes every entry of its row of z
        NaN or +-inf (NaN * w and inf * 0 are NaN, inf * w is inf), so z's first column tells
        which rows of X are finite, at 1/in_features of the cost of reading X. A non-finite
        entry there can also come from an overflow of finite values: X itself then decides.
        """
        first = self.layers[0]
        column = z[:, 0]
        if isfinite(np.add.reduce(column)) or X.shape[1] == 0:
            if self._parameters_finite is None:
                self._parameters_finite = all_finite(first.weight.data) and all_finite(
                    first.bias.data
                )
            if self._parameters_finite:
                return
        if not all_finite(X):
            raise NonFiniteRows(X)


class NonFiniteRows(ValueError):
    """X given to a prediction holds NaN or inf (the caller names the row and the counts)."""

    def __init__(self, X: np.ndarray) -> None:
        super().__init__("X holds values that are not finite")
        self.X = X


class _Buffers:
    """The arrays of one batch size (n rows), allocated once and reused at every update."""

    def __init__(
        self, n: int, sizes: list[int], activations: list[str], dtype, keep: bool = False
    ) -> None:
        outs = sizes[1:]
        # a[l]: layer l's z, then (in place) its activation. After its dC/dW is taken, the
        # buffer of a ReLU-like or linear layer receives dC/da of that layer (its mask is kept
        # apart), so no separate gradient buffer is needed for it, unless ``keep``: the
        # activations are kept to the end of the update (the in-place gradient step reads them).
        self.a = [np.empty((n, m), dtype) for m in outs]
        self.mask = [np.empty((n, m), bool) for m in outs[:-1]]
        # sigmoid and tanh need their activation after dC/da arrives: a buffer of their own
        self.d = [
            np.empty((n, m), dtype) if keep or act in ("sigmoid", "tanh") else None
            for m, act in zip(outs[:-1], activations[:-1], strict=True)
        ]
        # dC/dz of every layer, as the last update left them (the in-place step's record)
        self.dz: list[np.ndarray | None] = [None] * len(outs)
        self.ones = np.ones(n, dtype)  # row sums taken as a product (the row-block path)
        self.tmp = [
            np.empty((n, m), dtype) if act in ("sigmoid", "tanh") else None
            for m, act in zip(outs, activations, strict=True)
        ]


class FusedStep:
    """One training update's forward, cost and backward for a qualifying model (see module doc).

    Call it as ``cost = step(X_batch, y_batch)``: it sets every parameter's ``.grad`` (buffers
    reused between calls); ``step.output`` is then the network's output for the batch.
    """

    def __init__(self, model: Sequential, activations: list[str], head: str, dtype) -> None:
        self.layers: list[Dense] = list(model.layers)
        self.activations = activations
        self.head = head
        self.dtype = np.dtype(dtype)
        self.sizes = [self.layers[0].in_features] + [d.out_features for d in self.layers]
        # Every gradient is a view into one flat buffer, so one pass can check them all.
        self._flat_grads = np.empty(sum(d.weight.size + d.bias.size for d in self.layers), dtype)
        # a network large enough for per-layer finiteness proofs and in-place weight steps
        self._large = self._flat_grads.size > 32768
        self.weight_grads, self.bias_grads, offset = [], [], 0
        for d in self.layers:
            w, b = d.weight.size, d.bias.size
            self.weight_grads.append(self._flat_grads[offset : offset + w].reshape(d.weight.shape))
            self.bias_grads.append(self._flat_grads[offset + w : offset + w + b])
            offset += w + b
        self._offsets = [0]
        for d in self.layers:
            self._offsets.append(self._offsets[-1] + d.weight.size + d.bias.size)
        # max |X| over every batch fit will pass (None: found per batch)
        self.input_bound: float | None = None
        self._record: tuple | None = None
        self._update_plan: tuple | None = None
        self._ones = np.ones_like(self._flat_grads)  # for finite_by_sum
        # the row-blocked path (large batches): per worker, partial gradients and buffers
        self._flops_per_row = 2 * sum(d.weight.size for d in self.layers)
        self._partials: list[tuple[np.ndarray, list]] = []
        self._block_buffers: list[dict[int, _Buffers]] = []
        self._logits: dict[int, np.ndarray] = {}
        self._buffers: dict[int, _Buffers] = {}
        self._one = np.ones((), self.dtype)  # the seed dC/dC of backward, as the graph's
        self._last_out: np.ndarray | None = None
        self._targets_checked = False
        self.grads_finite = True

    @property
    def output(self) -> np.ndarray | None:
        """The network's output for the last batch (computed when asked: metrics need it)."""
        out = self._last_out
        if out is None or self.head == "mse":
            return out
        if self.head == "softmax_ce":
            return PRIMITIVES["softmax"].forward(out)
        return stable_sigmoid(out)

    def check_targets(self, y: np.ndarray) -> np.ndarray:
        """Check every target once, before training, with the cost's own checks; afterwards
        each batch is only converted. Returns ``y`` as the cost wants it (labels as intp)."""
        probe = _Shape(np.empty((len(y), self.sizes[-1]), self.dtype))
        if self.head == "softmax_ce":
            y = losses._categorical_target(np.asarray(y), probe)
        elif self.head == "sigmoid_bce":
            y = losses._binary_target(np.asarray(y), probe).reshape(np.shape(y))
        self._targets_checked = True
        return y

    def _target(self, y, out: np.ndarray, check) -> np.ndarray:
        if not self._targets_checked:
            return check(np.asarray(y), _Shape(out))
        if self.head == "softmax_ce":
            return y if y.ndim == 1 else y.astype(out.dtype, copy=False)
        if y.ndim == 1 and out.shape == (y.shape[0], 1):
            y = y.reshape(-1, 1)  # what losses._match_column does, without its checks
        elif y.shape != out.shape:
            y = losses._match_column(y, _Shape(out))
        return y.astype(out.dtype, copy=False)

    def _buffers_for(self, n: int, keep: bool = False) -> _Buffers:
        buffers = self._buffers.get((n, keep))
        if buffers is None:
            # At most two batch sizes occur per epoch (k and the remainder).
            if len(self._buffers) >= 4:
                self._buffers.clear()
            buffers = _Buffers(n, self.sizes, self.activations, self.dtype, keep)
            self._buffers[(n, keep)] = buffers
        return buffers

    def forward(self, X: np.ndarray, buf: _Buffers) -> np.ndarray:
        """Every layer's activation into ``buf.a``; returns the output layer's pre-activation
        (softmax and sigmoid outputs: their cost takes the logits) or its activation (mse)."""
        return _forward(self.layers, self.activations, X, buf.a, last_activation=self.head == "mse")

    def _derivative_factor(self, i: int, buf: _Buffers) -> None:
        """Before a ReLU-like layer's buffer is reused: remember where its derivative is 1."""
        name, a = self.activations[i], buf.a[i]
        if name == "relu":
            # The graph's relu vjp is g * (z > 0); relu(z) > 0 exactly where z > 0.
            np.greater(a, 0, out=buf.mask[i])
        elif name == "leaky_relu":
            np.less_equal(a, 0, out=buf.mask[i])

    def _activation_grad(self, i: int, d: np.ndarray, buf: _Buffers, mask=None) -> None:
        """dC/da -> dC/dz in place for layer ``i``."""
        name, a = self.activations[i], buf.a[i]
        if name == "relu":
            np.multiply(d, a > 0 if mask is None else mask, out=d)
        elif name == "leaky_relu":
            np.multiply(d, 0.01, out=d, where=a <= 0 if mask is None else mask)
        elif name == "sigmoid":
            # g * s * (1 - s), in that order
            np.multiply(d, a, out=d)
            np.subtract(1, a, out=buf.tmp[i])
            np.multiply(d, buf.tmp[i], out=d)
        elif name == "tanh":
            # g * (1 - a * a)
            t = np.multiply(a, a, out=buf.tmp[i])
            np.subtract(1, t, out=t)
            np.multiply(d, t, out=d)

    def _softmax_cost_and_grad(self, z: np.ndarray, y, n: int) -> tuple[float, np.ndarray]:
        # The table's softmax_cross_entropy forward and vjp, sharing one pass of exp: the same
        # operations in the same order, so the same numbers to the last bit.
        target = self._target(y, z, losses._categorical_target)
        rows = z.shape[0]
        shifted = z - max_keepdims(z)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        if target.ndim == 1:
            picks = np.arange(rows)
            # np.add.reduce(v) / n is what ndarray.mean computes, without its Python overhead
            cost = -(np.add.reduce(shifted[picks, target] - np.log(total)[:, 0]) / n)
            e /= total
            e[picks, target] -= 1
        else:
            cost = -(target * (shifted - np.log(total))).sum() / n
            e /= total
            e -= target
        e *= self._one / n
        return float(cost), e

    def _cost_and_output_grad(
        self, out: np.ndarray, y, n: int | None = None
    ) -> tuple[float, np.ndarray]:
        """The cost and its dC/dz for output ``out`` (rows of a batch of ``n`` rows, all of it
        by default: a row block's share of the batch's mean cost, and of its gradient)."""
        self._last_out = out
        if n is None:
            n = out.shape[0]
        if self.head == "softmax_ce":
            return self._softmax_cost_and_grad(out, y, n)
        if self.head == "sigmoid_bce":
            # The table's sigmoid_binary_cross_entropy forward and vjp (the stable sigmoid):
            # the same operations in the same order.
            target = self._target(y, out, losses._binary_target)
            terms = np.logaddexp(0, out) - out * target
            size = n * out.shape[1]
            cost = np.add.reduce(terms, axis=None) / size
            e = np.exp(-np.abs(out))
            dz = np.where(out >= 0, 1.0, e) / (1.0 + e) - target
            dz *= self._one / size
            return float(cost), dz
        # mse: C = mean(diff * diff), diff = a - y; the graph's gradient is 2 * ((1/N) * diff)
        t = self._target(np.asarray(y), out, lambda t, o: t)
        t = losses._match_column(t, _Shape(out)).astype(out.dtype, copy=False)
        diff = np.subtract(out, t)
        size = n * out.shape[1]
        cost = np.add.reduce(diff * diff, axis=None) / size  # what np.mean computes
        dz = np.multiply(self._one * (1 / size), diff)
        dz += dz
        return float(cost), dz

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        # fit checked X's shape once, before the first update; batches keep it
        if self._row_blocks(X.shape[0]):
            return self._blocked_gradients(X, y)
        buf = self._buffers_for(X.shape[0])
        out = self.forward(X, buf)
        cost, d = self._cost_and_output_grad(out, y)
        last = len(self.layers) - 1
        if self.head == "mse":
            self._activation_grad(last, d, buf)
        self.grads_finite, _ = self._backward(X, d, buf, defer_bounded=False)
        for layer, weight_grad, bias_grad in zip(
            self.layers, self.weight_grads, self.bias_grads, strict=True
        ):
            layer.weight.grad, layer.bias.grad = weight_grad, bias_grad
        return cost

    def _backward(
        self, X: np.ndarray, d: np.ndarray, buf: _Buffers, *, defer_bounded: bool
    ) -> tuple[bool, list[int]]:
        """From the output layer's dC/dz ``d`` down: every layer's dC/db and dC/dW into the
        gradient buffers, and whether they are all finite.

        Proving them finite: a small network's by one pass over all of them at the end, a large
        one's layer by layer, by a bound where that reads fewer numbers (:meth:`_bounded`). With
        ``defer_bounded``, a layer proven so by its bound is not written out: it is listed in
        the second result, to take its step from ``buf.a`` and ``buf.dz`` (:meth:`descend`).
        """
        large = self._large
        finite, deferred = True, []
        for i in range(len(self.layers) - 1, -1, -1):
            buf.dz[i] = d
            a_prev = X if i == 0 else buf.a[i - 1]
            if d.shape[0] == 1:
                np.copyto(self.bias_grads[i], d[0])  # the sum of one row is that row
            else:
                np.add.reduce(d, axis=0, out=self.bias_grads[i])
            bounded = large and finite and self._bounded(i, a_prev, d)
            if bounded and defer_bounded:
                deferred.append(i)
            else:
                np.dot(a_prev.T, d, out=self.weight_grads[i])
                if large and finite and not bounded:
                    finite = self._layer_grads_finite(i)
            if i == 0:
                break
            d = self._delta_below(i, d, buf)
        if not large:
            finite = finite_by_sum(self._flat_grads, self._ones)
        return finite, deferred

    def _row_blocks(self, n: int) -> int:
        """How many row blocks a batch of ``n`` rows is cut into for the cores (0: not cut)."""
        if n < 2 * MIN_BLOCK_ROWS or n * self._flops_per_row < BLOCKED_MIN_FLOPS:
            return 0
        workers = n_workers()
        if workers < 2:
            return 0
        blocks = max(workers, -(-n // BLOCK_ROWS))
        return -(-blocks // workers) * workers  # each worker the same number of blocks

    def _blocked_gradients(self, X: np.ndarray, y: np.ndarray) -> float:
        """The cost and every gradient of a large batch, by row blocks shared between the cores.

        dC/dW and dC/db are sums over the rows, so each worker adds up its blocks' shares in a
        partial gradient of its own, and the partials are added at the end; the cost likewise.
        Each block's forward and backward run in cache-sized buffers with single-threaded BLAS,
        and its element-wise work beside the other cores' (see :mod:`descend._parallel`). The
        blocks and their order are fixed by ``n`` and the number of workers, so the result is
        too; it equals the one-piece computation up to rounding (sums taken in another order).
        """
        n = X.shape[0]
        blocks = split_rows(n, self._row_blocks(n))
        k = min(n_workers(), len(blocks))
        partials = self._worker_partials(k)
        logits = self._logits.get(n)
        if logits is None:
            self._logits = {n: np.empty((n, self.sizes[-1]), self.dtype)}
            logits = self._logits[n]
        last = len(self.layers) - 1

        def block(worker: int, i: int) -> float:
            start, stop = blocks[i]
            flat, updates = partials[worker]
            if i < k:  # the worker's first block
                flat.fill(0)
            buf = self._worker_buffers(worker, stop - start)
            ones = buf.ones  # the sum over rows as a product: one BLAS pass, not a reduction
            rows = X[start:stop]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = self.forward(rows, buf)
                logits[start:stop] = out
                cost, d = self._cost_and_output_grad(out, y[start:stop], n)
                if self.head == "mse":
                    self._activation_grad(last, d, buf)
                for j in range(last, -1, -1):
                    weight_part, bias_part = updates[j]
                    weight_part(1.0, rows if j == 0 else buf.a[j - 1], d)
                    bias_part += np.dot(ones, d)
                    if j == 0:
                        break
                    d = self._delta_below(j, d, buf)
            return cost

        costs = map_pieces(block, len(blocks), workers=k)
        np.copyto(self._flat_grads, partials[0][0])
        for flat, _ in partials[1:]:
            self._flat_grads += flat
        for layer, weight_grad, bias_grad in zip(
            self.layers, self.weight_grads, self.bias_grads, strict=True
        ):
            layer.weight.grad, layer.bias.grad = weight_grad, bias_grad
        self._last_out = logits
        self.grads_finite = finite_by_sum(self._flat_grads, self._ones)
        return float(sum(costs))

    def _worker_partials(self, k: int) -> list[tuple[np.ndarray, list]]:
        """Per worker, a flat partial gradient and, per layer, its weight part's in-place
        update (``+= a_prev^T d``) and its bias part."""
        while len(self._partials) < k:
            flat = np.empty_like(self._flat_grads)
            updates = []
            for i, layer in enumerate(self.layers):
                start, stop = self._offsets[i], self._offsets[i + 1]
                split = start + layer.weight.size  # the weights, then the biases
                weight_part = GemmUpdate(flat[start:split].reshape(layer.weight.shape))
                updates.append((weight_part, flat[split:stop]))
            self._partials.append((flat, updates))
        return self._partials[:k]

    def _worker_buffers(self, worker: int, rows: int) -> _Buffers:
        while len(self._block_buffers) <= worker:
            self._block_buffers.append({})
        mine = self._block_buffers[worker]
        buf = mine.get(rows)
        if buf is None:
            if len(mine) >= 2:  # split_rows makes blocks of two sizes at most
                mine.clear()
            buf = mine[rows] = _Buffers(rows, self.sizes, self.activations, self.dtype)
        return buf

    def _delta_below(self, i: int, d: np.ndarray, buf: _Buffers) -> np.ndarray:
        """dC/dz of layer ``i - 1`` from layer ``i``'s ``d``: ``(d W^T) * f'(z)``, in a buffer.

        A ReLU-like or linear layer without a buffer of its own for it (``buf.d``) keeps its
        mask, then receives it in its activation's buffer."""
        j = i - 1
        self._derivative_factor(j, buf)
        target = buf.a[j] if buf.d[j] is None else buf.d[j]
        d = np.dot(d, self.layers[i].weight.data.T, out=target)
        self._activation_grad(j, d, buf, buf.mask[j])
        return d

    def descend(self, X: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One update of plain gradient descent, ``theta <- theta - lr * dC/dtheta``, in place.

        The same forward pass, cost and dC/dz as a call, but a weight matrix whose gradient
        ``a_prev^T dz`` is large next to its factors (small batches) takes its step straight from
        them, by one BLAS ``gemm`` (``ger`` for one sample) that adds ``-lr a_prev^T dz`` to the
        weights: the gradient is never written out and read back. Nothing is updated before
        every gradient is proven finite (by the bound of ``_bounded``, else by
        reading it), so a diverging update leaves the parameters as they were and sets
        ``grads_finite`` to False. Equal to a call followed by ``GD(lr).step`` up to rounding
        (float32: about 1e-7 relative per update; the tests hold it to 1e-5 after training).

        The weights' ``.grad`` are written only by :meth:`write_grads` (``fit`` calls it when
        training ends), from the last update's record; the biases' ``.grad`` at every update.
        """
        n = X.shape[0]
        if self._row_blocks(n):
            # a large batch: its gradients are written out anyway, by row blocks on the cores
            self._record = None
            cost = self._blocked_gradients(X, y)
            if isfinite(cost) and self.grads_finite:
                for _, weight_from_grad, bias_from_grad in self._updates():
                    weight_from_grad(-lr)
                    bias_from_grad(-lr)
            return cost
        # the activations are kept to the end of the update for the weights it steps in place
        buf = self._buffers_for(n, keep=self._large)
        out = self.forward(X, buf)
        cost, d = self._cost_and_output_grad(out, y)
        self._record = None
        if not isfinite(cost):
            return cost  # fit stops on the cost; nothing was updated or recorded
        last = len(self.layers) - 1
        if self.head == "mse":
            self._activation_grad(last, d, buf)
        finite, in_place = self._backward(X, d, buf, defer_bounded=True)
        self.grads_finite = finite
        self._record = (X, buf, in_place)
        if not finite:
            return cost
        step = -lr
        for i, (weight_in_place, weight_from_grad, bias_from_grad) in enumerate(self._updates()):
            if i in in_place:
                weight_in_place(step, X if i == 0 else buf.a[i - 1], buf.dz[i])
            else:
                weight_from_grad(step)
            bias_from_grad(step)
        return cost

    def _updates(self) -> list[tuple[GemmUpdate | None, Axpy, Axpy]]:
        """Per layer, the in-place updates of its weights (from dz, or from dC/dW) and biases,
        made again when a parameter's array was replaced (``load_state_dict``, the user)."""
        arrays = [p.data for layer in self.layers for p in (layer.weight, layer.bias)]
        cached = self._update_plan
        if cached is not None and all(a is b for a, b in zip(arrays, cached[0], strict=True)):
            return cached[1]
        plan = [
            (
                GemmUpdate(layer.weight.data) if self._large else None,  # in place: large only
                Axpy(self.weight_grads[i], layer.weight.data),
                Axpy(self.bias_grads[i], layer.bias.data),
            )
            for i, layer in enumerate(self.layers)
        ]
        self._update_plan = (arrays, plan)
        return plan

    def write_grads(self) -> None:
        """Set every parameter's ``.grad`` to its gradient of the last :meth:`descend` update.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> model = ds.nn.mlp([3, 2], output_activation="softmax", seed=0)
        >>> step = compile_step(model, "categorical_cross_entropy")
        >>> X, y = np.ones((1, 3), np.float32), np.array([1])
        >>> _ = step.descend(X, step.check_targets(y), lr=0.1)
        >>> step.write_grads(); model.layers[0].weight.grad.shape
        (3, 2)
        """
        if self._record is None:
            return
        X, buf, in_place = self._record
        for i, layer in enumerate(self.layers):
            if i in in_place:
                a_prev = X if i == 0 else buf.a[i - 1]
                np.dot(a_prev.T, buf.dz[i], out=self.weight_grads[i])
            layer.weight.grad = self.weight_grads[i]
            layer.bias.grad = self.bias_grads[i]

    def bounds_inputs(self, n: int) -> bool:
        """Whether :meth:`descend` on batches of ``n`` rows proves the first layer's gradient
        finite by a bound on the inputs (then ``input_bound``, max |X| over the data, saves
        reading each batch for it)."""
        n_in, n_out = self.weight_grads[0].shape
        return self._large and n * (n_in + n_out) < n_in * n_out

    def _bounded(self, i: int, a_prev: np.ndarray, d: np.ndarray) -> bool:
        """Whether layer ``i``'s dC/dW and dC/db are finite by a bound, without reading them.

        dC/dW = a_prev^T d has entries of size at most n * max|a_prev| * max|d|, and dC/db at
        most n * max|d|: when those bounds are finite in the dtype, so is every entry, and they
        read n * (in + out) numbers where dC/dW has in * out. False when the bound is not the
        cheaper proof, or not finite (then :meth:`_layer_grads_finite` reads the gradients).
        Given a finite cost, as ``fit`` checks it first (see :meth:`_activation_bound`).
        """
        n, (n_in, n_out) = d.shape[0], self.weight_grads[i].shape
        if n * (n_in + n_out) >= n_in * n_out:
            return False
        if i == 0:
            a_max = self.input_bound
            if a_max is None:
                a_max = max_abs(a_prev)
        else:
            a_max = self._activation_bound(i - 1, a_prev)
        d_max = max_abs(d)
        limit = 0.5 * float(np.finfo(self.dtype).max)
        return n * a_max * d_max < limit and n * d_max < limit  # NaN compares False

    def _activation_bound(self, i: int, a: np.ndarray) -> float:
        """max |a| for layer ``i``'s activations, given a finite cost (no NaN anywhere: a NaN
        reaches the cost through every product)."""
        name = self.activations[i]
        if name in ("sigmoid", "tanh"):
            return 1.0
        if name == "relu":
            return float(a.max())
        return max_abs(a)

    def _layer_grads_finite(self, i: int) -> bool:
        """Whether layer ``i``'s dC/dW and dC/db, as written out, are finite (one pass)."""
        start, stop = self._offsets[i], self._offsets[i + 1]
        return finite_by_sum(self._flat_grads[start:stop], self._ones[start:stop])


def max_abs(a: np.ndarray) -> float:
    """max |a| by two passes that allocate nothing (``np.abs(a).max()`` would copy ``a``); 0 for
    an empty array, NaN when ``a`` holds NaN.

    Examples
    --------
    >>> max_abs(np.array([[1.0, -3.0], [2.0, 0.5]]))
    3.0
    """
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


class _Shape:
    """The shape facts the cost's target checks read (they take a prediction Tensor)."""

    __slots__ = ("shape", "ndim", "dtype")

    def __init__(self, array: np.ndarray) -> None:
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype
