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
BLAS calls); ``ds.fit(..., fused=False)`` always takes the graph. The parameters' ``.grad`` are
set to the reused gradient buffers, so they are overwritten by the next update: copy them in a
callback if you keep them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from descend import losses
from descend.autodiff.primitives import PRIMITIVES, stable_sigmoid
from descend.nn.activations import activation_name
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential

_HIDDEN = ("relu", "leaky_relu", "sigmoid", "tanh", "linear")
_SOFTMAX_CE = PRIMITIVES["softmax_cross_entropy"]
_SIGMOID_BCE = PRIMITIVES["sigmoid_binary_cross_entropy"]


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
    if not isinstance(model, Sequential) or not model.layers:
        return None
    names = []
    for layer in model.layers:
        if type(layer) is not Dense or layer.bias is None:
            return None
        names.append(activation_name(layer.activation))
    if any(name not in _HIDDEN for name in names[:-1]):
        return None
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1:
        return None
    try:
        loss_fn = losses.get(loss)
    except ValueError:
        return None
    head = _head(names[-1], loss_fn, model.layers[-1].out_features)
    if head is None:
        return None
    return FusedStep(model, names, head, dtypes.pop())


class _Buffers:
    """The arrays of one batch size: activations, gradients of z, masks."""

    def __init__(self, n: int, sizes: list[int], dtype) -> None:
        # a[l]: layer l's z, then (in place) its activation a; n x out_l
        self.a = [np.empty((n, m), dtype) for m in sizes[1:]]
        # dz[l]: dC/dz of layer l (dC/da first, made dC/dz in place); the output's comes from
        # the cost's vjp
        self.dz = [np.empty((n, m), dtype) for m in sizes[1:-1]]
        self.mask = [np.empty((n, m), bool) for m in sizes[1:-1]]
        self.tmp = [np.empty((n, m), dtype) for m in sizes[1:]]


class FusedStep:
    """One training update's forward, cost and backward for a qualifying model (see module doc).

    Call it as ``cost = step(X_batch, y_batch)``: it sets every parameter's ``.grad`` (buffers
    reused between calls) and ``step.output`` (the network's output for the batch).
    """

    def __init__(self, model: Sequential, activations: list[str], head: str, dtype) -> None:
        self.model = model
        self.layers: list[Dense] = list(model.layers)
        self.activations = activations
        self.head = head
        self.dtype = np.dtype(dtype)
        self.sizes = [self.layers[0].in_features] + [d.out_features for d in self.layers]
        self.weight_grads = [np.empty_like(d.weight.data) for d in self.layers]
        self.bias_grads = [np.empty_like(d.bias.data) for d in self.layers]
        self._buffers: dict[int, _Buffers] = {}
        self._one = np.ones((), self.dtype)  # the seed dC/dC of backward, as the graph's
        self.output: np.ndarray | None = None
        self._dz_out: np.ndarray | None = None

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._buffers.get(n)
        if buffers is None:
            # At most two batch sizes occur per epoch (k and the remainder).
            if len(self._buffers) >= 4:
                self._buffers.clear()
            buffers = self._buffers[n] = _Buffers(n, self.sizes, self.dtype)
        return buffers

    def forward(self, X: np.ndarray, buf: _Buffers) -> np.ndarray:
        """Every layer's activation into ``buf.a``; returns the output layer's pre-activation."""
        a = X
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            z = np.dot(a, layer.weight.data, out=buf.a[i])
            z += layer.bias.data
            name = self.activations[i]
            if i == last and self.head != "mse":
                return z  # softmax / sigmoid are part of the fused cost
            if name == "relu":
                np.maximum(z, 0, out=z)
            elif name == "leaky_relu":
                # The graph's leaky_relu is where(z > 0, z, z * 0.01).
                np.multiply(z, 0.01, out=z, where=z <= 0)
            elif name == "sigmoid":
                buf.a[i] = stable_sigmoid(z)
            elif name == "tanh":
                np.tanh(z, out=z)
            a = buf.a[i]
        return a

    def _activation_grad(self, i: int, d: np.ndarray, buf: _Buffers) -> None:
        """dC/da -> dC/dz in place for layer ``i``, from its activation a = buf.a[i]."""
        name, a = self.activations[i], buf.a[i]
        if name == "relu":
            # The graph's relu vjp is g * (z > 0); relu(z) > 0 exactly where z > 0.
            mask = np.greater(a, 0, out=buf.mask[i]) if i < len(buf.mask) else a > 0
            np.multiply(d, mask, out=d)
        elif name == "leaky_relu":
            mask = np.less_equal(a, 0, out=buf.mask[i]) if i < len(buf.mask) else a <= 0
            np.multiply(d, 0.01, out=d, where=mask)
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

    def _cost_and_output_grad(self, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        one = self._one
        needs = (True,)
        if self.head == "softmax_ce":
            target = losses._categorical_target(np.asarray(y), _Shape(z))
            cost = _SOFTMAX_CE.forward(z, target=target)
            (dz,) = _SOFTMAX_CE.vjp(one, cost, needs, z, target=target)
            self.output = PRIMITIVES["softmax"].forward(z)
            return float(cost), dz
        if self.head == "sigmoid_bce":
            target = losses._binary_target(np.asarray(y), _Shape(z))
            cost = _SIGMOID_BCE.forward(z, target=target)
            (dz,) = _SIGMOID_BCE.vjp(one, cost, needs, z, target=target)
            self.output = stable_sigmoid(z)
            return float(cost), dz
        # mse: C = mean(diff * diff), diff = a - y; the graph's gradient is 2 * ((1/N) * diff)
        a = z
        t = np.asarray(y)
        t = losses._match_column(t, _Shape(a)).astype(a.dtype, copy=False)
        diff = np.subtract(a, t)
        cost = np.mean(diff * diff)
        scale = one * (1 / diff.size)
        dz = np.multiply(scale, diff)
        dz += dz
        self.output = a
        return float(cost), dz

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        self.layers[0].check_input(X)
        n = X.shape[0]
        buf = self._buffers_for(n)
        z_out = self.forward(X, buf)
        cost, d = self._cost_and_output_grad(z_out, y)
        last = len(self.layers) - 1
        if self.head == "mse":
            self._activation_grad(last, d, buf)
        self._dz_out = d
        for i in range(last, -1, -1):
            layer = self.layers[i]
            a_prev = X if i == 0 else buf.a[i - 1]
            np.dot(a_prev.T, d, out=self.weight_grads[i])
            np.sum(d, axis=0, out=self.bias_grads[i])
            layer.weight.grad = self.weight_grads[i]
            layer.bias.grad = self.bias_grads[i]
            if i > 0:
                d_prev = np.dot(d, layer.weight.data.T, out=buf.dz[i - 1])
                self._activation_grad(i - 1, d_prev, buf)
                d = d_prev
        return cost


class _Shape:
    """The shape facts the cost's target checks read (they take a prediction Tensor)."""

    __slots__ = ("shape", "ndim", "dtype")

    def __init__(self, array: np.ndarray) -> None:
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype
