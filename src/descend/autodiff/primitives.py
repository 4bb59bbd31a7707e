"""The table of primitives: each operation's forward and its vector-Jacobian product, side by side.

Every differentiable operation in descend is one row of :data:`PRIMITIVES`. A row holds

* ``forward(*inputs, **params) -> ans``: plain NumPy on arrays;
* ``vjp(g, ans, needs, *inputs, **params) -> tuple``: given the gradient ``g`` of the final scalar
  with respect to ``ans`` (same shape as ``ans``), the gradient with respect to each input.
  ``needs[i]`` says whether input ``i`` wants a gradient; where it does not, the vjp may return
  ``None`` for it and skip the work (the first layer's ``dC/dX`` is never computed in training).

The vjps only read their arguments and may return ``g`` itself (no copy), so one gradient array
can be shared by two inputs; :mod:`descend.autodiff.backward` copies before anything could write
to it.

Some rows take an optional ``out=``: the forward's result (or, for a vjp, a tuple with one array
or None per input) is written into arrays the caller gives, by the same formula, so that the
compiled step (:mod:`descend.compile`) can reuse its buffers from one update to the next. The
formula is written once: without ``out`` the same code allocates its result (``linear``'s vjp
writes ``dC/dx`` into a column-major ``out`` as its row-major transpose ``W g^T``: the same sums).
Broadcasting is undone in one place, :func:`unbroadcast`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Primitive:
    """One differentiable operation: its name, its forward function and its vjp.

    ``fused``, for a cost only: ``fused(*inputs, g=..., out=None, **params) -> (value, grads)``,
    the forward's value and the vjp's gradients for ``g`` in one call that shares their common
    work (the compiled step's ``fuse_cost`` rewrite uses it). It is written from the same
    helpers as ``forward`` and ``vjp``, so that it gives their numbers bit for bit.
    """

    name: str
    forward: Callable[..., np.ndarray]
    vjp: Callable[..., tuple]
    fused: Callable[..., tuple] | None = None

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving an array of ``shape``.

    Parameters
    ----------
    g : ndarray
        Gradient with respect to a broadcast result.
    shape : tuple of int
        Shape of the input before broadcasting.

    Returns
    -------
    ndarray of shape ``shape``

    Examples
    --------
    >>> import numpy as np
    >>> unbroadcast(np.ones((4, 3)), (3,))
    array([4., 4., 4.])
    >>> unbroadcast(np.ones((4, 3)), (4, 1)).shape
    (4, 1)
    """
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g.reshape(shape)


def _shape(x) -> tuple[int, ...]:
    return np.shape(x)


def _expand_reduced(g: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Give ``g`` (the gradient of a reduction over ``axis``) back the reduced axes as size 1."""
    if axis is None or keepdims:
        return g.reshape([1] * len(shape)) if axis is None and not keepdims else g
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    axes = tuple(a % len(shape) for a in axes)
    return np.expand_dims(g, axes)


# --- the vjps that need more than one line ------------------------------------------------------


def _matmul_vjp(g, ans, needs, x, y):
    # Promote 1-D operands to matrices as np.matmul does, so one formula covers every case.
    x2 = x[None, :] if x.ndim == 1 else x
    y2 = y[:, None] if y.ndim == 1 else y
    g2 = g
    # y's axis first: for two vectors g is 0-d, and -2 only exists once -1 has been added.
    if y.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    if x.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    dx = dy = None
    if needs[0]:
        dx = unbroadcast(g2 @ np.swapaxes(y2, -1, -2), x2.shape).reshape(x.shape)
    if needs[1]:
        dy = unbroadcast(np.swapaxes(x2, -1, -2) @ g2, y2.shape).reshape(y.shape)
    return dx, dy


def _out(out, i):
    """The ``i``-th array of a vjp's ``out`` tuple (None: allocate)."""
    return None if out is None else out[i]


def _inplace(op, a, b):
    """``op(a, b)``, written into ``a`` when ``a`` is an array of the result's dtype (the same
    numbers as a new array: in place only saves the allocation)."""
    if isinstance(a, np.ndarray):
        dtype = a.dtype
        # b of a's own dtype (the common case) needs no promotion rules to know it
        if getattr(b, "dtype", None) is dtype or np.result_type(a, b) == dtype:
            return op(a, b, out=a)
    return op(a, b)


# np.dot without its check for other array libraries' overrides (__array_function__), which
# costs about as much as a small product: the same C function, so the same numbers
_dot = getattr(np.dot, "_implementation", np.dot)


def _linear(x, w, b, out=None):
    # z = x @ W + b; the bias added in place to the fresh product (or to out)
    return _inplace(np.add, _dot(x, w, out=out), b)


def _linear_vjp(g, ans, needs, x, w, b, out=None):
    # z = x @ W + b  ->  dC/dx = g W^T,  dC/dW = x^T g,  dC/db = sum of g over the samples.
    # np.dot goes straight to BLAS gemm; np.matmul takes a slow path for the rank-1 case (batch 1).
    out_x, out_w, out_b = (None, None, None) if out is None else out
    dx = None
    if needs[0]:
        if out_x is not None and out_x.flags.f_contiguous and not out_x.flags.c_contiguous:
            # a column-major out_x (the compiled step's transposed_dx rewrite): its transpose
            # is row-major, and (g W^T)^T = W g^T is written there, the same sums through the
            # BLAS kernel for W's own layout
            _dot(w, g.T, out=out_x.T)
            dx = out_x
        else:
            dx = _dot(g, w.T, out=out_x)
    dw = _dot(x.T, g, out=out_w) if needs[1] else None
    db = _sum(g, 0, out=out_b) if needs[2] else None
    return dx, dw, db


def _sum(a, axis, keepdims=False, out=None):
    # the sum of a over an axis; of a 2-D float array over its rows (1^T a) or along them
    # (a 1), as a product with a vector of ones: one BLAS gemv, where NumPy reduces a C-ordered
    # array's rows one short loop at a time (float32: 32 x 128 over the rows 0.6 against 1.7
    # us, 2,048 x 256 20 against 68 us; 10 classes along 32 rows 1.1 against 2.6 us, along
    # 2,048 rows 6 against 45 us). Equal to np.add.reduce up to rounding (the BLAS adds in its
    # own order).
    if a.ndim != 2 or a.dtype not in _BLAS_FLOATS or axis not in (0, 1, -1):
        return _sum_reduce(a, axis=axis, keepdims=keepdims, out=out)
    if axis == 0:
        total = _dot(_ones(a.shape[0], a.dtype), a, out=out)
        return total[None, :] if keepdims else total
    total = _dot(a, _ones(a.shape[1], a.dtype), out=out)
    return total[:, None] if keepdims else total


def _ones(n, dtype):
    return _constant(("ones", n, dtype), lambda: np.ones(n, dtype))


def _constant(key, make):
    # a read-only array made once by make() and kept under key (among the last 64 made)
    value = _CONSTANTS.get(key)
    if value is None:
        if len(_CONSTANTS) >= 64:
            _CONSTANTS.clear()
        value = make()
        value.flags.writeable = False
        _CONSTANTS[key] = value
    return value


_CONSTANTS: dict[tuple, np.ndarray] = {}
_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _max_vjp(g, ans, needs, x, axis=None, keepdims=False):
    # The gradient goes to the maximal entries, split evenly between ties.
    g = _expand_reduced(g, x.shape, axis, keepdims)
    a = _expand_reduced(ans, x.shape, axis, keepdims)
    mask = x == a
    return (g * mask / mask.sum(axis=axis, keepdims=True),)


def _getitem_vjp(g, ans, needs, x, index=None):
    dx = np.zeros(x.shape, dtype=np.result_type(x.dtype, g.dtype))
    # np.add.at handles repeated integer indices (each occurrence adds its share).
    np.add.at(dx, index, g)
    return (dx,)


def _concatenate_vjp(g, ans, needs, *xs, axis=0):
    ends = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return tuple(np.split(g, ends, axis=axis))


def _power_vjp(g, ans, needs, x, y):
    dx = dy = None
    if needs[0]:
        # d(x^y)/dx = y x^(y-1). Where y = 0 it is 0 for every x: the exponent is taken as 0 there,
        # or x = 0 would give 0 * 0^-1 = 0 * inf = nan (and x = inf would give 0 * inf too).
        exponent = np.where(np.equal(y, 0), 0, np.subtract(y, 1))
        dx = unbroadcast(g * y * np.power(x, exponent), _shape(x))
    if needs[1]:
        # d(x^y)/dy = x^y log x, taken as 0 where x <= 0 (where the real power is not smooth in y);
        # x^y is masked too, or 0^y = inf for y < 0 would give inf * 0 = nan.
        positive = x > 0
        safe_log = np.log(np.where(positive, x, 1))
        dy = unbroadcast(g * np.where(positive, ans, 0) * safe_log, _shape(y))
    return dx, dy


def _stable_sigmoid(x, out=None):
    # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: exp never overflows.
    e = np.exp(-np.abs(x))
    return np.divide(np.where(x >= 0, 1.0, e), 1.0 + e, out=out)


def _sigmoid_vjp(g, ans, needs, x, out=None):
    # g * s * (1 - s), in that order
    return (_inplace(np.multiply, np.multiply(g, ans, out=_out(out, 0)), 1 - ans),)


def _tanh_vjp(g, ans, needs, x, out=None):
    # g * (1 - a * a)
    return (np.multiply(g, 1 - ans * ans, out=_out(out, 0)),)


def max_keepdims(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x.max(axis=axis, keepdims=True)``, faster over a short last axis of a 2-D array.

    NumPy reduces along a contiguous axis row by row, one short inner loop each: for 2,000
    rows of 10 logits that takes ten times longer than the exp of the softmax. A transposed
    copy reduced over its first axis gives the same numbers (a maximum is exact, and NaN
    propagates through both) in whole-column passes.

    Parameters
    ----------
    x : ndarray
    axis : int, default -1

    Returns
    -------
    ndarray
        The shape of ``x`` with ``axis`` of length 1.

    Examples
    --------
    >>> max_keepdims(np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.0]]))
    array([[3. ],
           [0.5]])
    """
    if x.ndim == 2 and axis in (-1, 1) and x.shape[0] >= 64 and 1 < x.shape[1] <= 64:
        return np.maximum.reduce(x.T.copy(), axis=0)[:, None]
    # the reductions that ndarray.max and .sum call, without their Python wrappers (the same
    # numbers: the same C loops)
    return _max_reduce(x, axis=axis, keepdims=True)


_max_reduce, _sum_reduce = np.maximum.reduce, np.add.reduce


def _shifted(x, axis=-1, out=None):
    # x - max(x) along the axis: its exponentials never overflow
    return np.subtract(x, max_keepdims(x, axis), out=out)


def _exp_and_total(shifted, axis=-1, out=None):
    # e^shifted and its total along the axis (softmax = e / total; log softmax = shifted
    # minus log total)
    e = np.exp(shifted, out=out)
    return e, _sum(e, axis, keepdims=True)


def _softmax(x, axis=-1, out=None):
    shifted = _shifted(x, axis, out=out)
    e, total = _exp_and_total(shifted, axis, out=shifted)
    e /= total
    return e


def _shifted_and_log_total(x, axis=-1):
    # log softmax(x) = shifted - log_total, with shifted = x - max(x) (stable for any x) and
    # log_total = log sum_k e^shifted_k, kept as its two parts so a cost can pick entries first
    shifted = _shifted(x, axis)
    return shifted, np.log(_exp_and_total(shifted, axis)[1])


def _log_softmax(x, axis=-1):
    shifted, log_total = _shifted_and_log_total(x, axis)
    return shifted - log_total


def _labels_to_onehot(target, n_classes, dtype):
    onehot = np.zeros((target.shape[0], n_classes), dtype=dtype)
    onehot[np.arange(target.shape[0]), target] = 1
    return onehot


def _softmax_cross_entropy(z, target=None):
    # C = -(1/n) sum_i sum_k y_ik log softmax(z)_ik, from the logits: stable for any z.
    shifted, log_total = _shifted_and_log_total(z, -1)
    return _cross_entropy_of_log_softmax(shifted, log_total, target)


def _label_entries(target, n_classes):
    # the flat positions (row * n_classes + label) of each row's label entry in an (n, k)
    # array: one 1-D index picks or changes them (cheaper than an index per axis)
    n = target.shape[0]
    starts = _constant(("row_starts", n, n_classes), lambda: np.arange(0, n * n_classes, n_classes))
    return starts + target


def _cross_entropy_of_log_softmax(shifted, log_total, target, entries=None):
    # C from log softmax(z) = shifted - log_total (see _shifted_and_log_total); entries: the
    # labels' _label_entries, when the caller has them
    if target.ndim == 1:  # integer labels; np.add.reduce(v) / n is what ndarray.mean computes
        # log_softmax(z) at each row's label only: the same subtraction, for the picked entries
        if entries is None:
            entries = _label_entries(target, shifted.shape[1])
        picked = shifted.reshape(-1)[entries]
        return -(np.add.reduce(picked - log_total[:, 0]) / shifted.shape[0])
    return -(target * (shifted - log_total)).sum() / shifted.shape[0]


def _softmax_cross_entropy_vjp(g, ans, needs, z, target=None, out=None):
    # The fused gradient: dC/dz = (softmax(z) - y) / n.
    return (_minus_target(_softmax(z, axis=-1, out=_out(out, 0)), target, g),)


def _minus_target(p, target, g, entries=None):
    # (p - y) * g / n, in p (the softmax's probabilities)
    if target.ndim != 1:
        p -= target
    elif p.flags.c_contiguous:  # its flat view is a view: 1 off each row's label entry
        flat = p.reshape(-1)
        flat[_label_entries(target, p.shape[1]) if entries is None else entries] -= 1
    else:
        p[np.arange(p.shape[0]), target] -= 1
    p *= g / p.shape[0]
    return p


def _softmax_cross_entropy_fused(z, target=None, g=None, out=None):
    # The cost and its gradient from one shift, exponential and total per row: the operations
    # of _softmax_cross_entropy and of its vjp (its _softmax), each once.
    shifted = _shifted(z)
    e, total = _exp_and_total(shifted, out=_out(out, 0))
    entries = _label_entries(target, z.shape[1]) if target.ndim == 1 else None
    cost = _cross_entropy_of_log_softmax(shifted, np.log(total), target, entries)
    e /= total  # softmax(z), as _softmax divides it
    return cost, (_minus_target(e, target, g, entries),)


def _sigmoid_binary_cross_entropy(z, target=None):
    # C = mean(log(1 + e^z) - z y), the form of -y log s - (1-y) log(1-s) with s = sigmoid(z);
    # np.logaddexp(0, z) computes log(1 + e^z) stably, as max(z, 0) + log(1 + e^-|z|).
    terms = np.logaddexp(0, z) - z * target
    return np.add.reduce(terms, axis=None) / terms.size  # what ndarray.mean computes


def _sigmoid_binary_cross_entropy_vjp(g, ans, needs, z, target=None, out=None):
    # The fused gradient: dC/dz = (sigmoid(z) - y) / N over all N entries.
    d = _inplace(np.subtract, _stable_sigmoid(z, out=_out(out, 0)), target)
    return (_inplace(np.multiply, d, g / z.size),)


def _inverse_axes(axes, ndim):
    # Negative axes (-1 for the last) are taken modulo ndim first, or argsort would misorder them.
    return None if axes is None else tuple(np.argsort([a % ndim for a in axes]))


def _inside(x, low, high):
    # The clip gradient passes where x lies inside [low, high], the bounds included.
    low = -np.inf if low is None else low
    high = np.inf if high is None else high
    return (x >= low) & (x <= high)


def _ub2(gx, gy, x, y):
    return unbroadcast(gx, _shape(x)), unbroadcast(gy, _shape(y))


# --- the table ------------------------------------------------------------------------------------
# forward                                              vjp(g, ans, needs, *inputs, **params)

_TABLE = [
    ("add", np.add, lambda g, ans, n, x, y: _ub2(g, g, x, y)),
    ("subtract", np.subtract, lambda g, ans, n, x, y: _ub2(g, -g, x, y)),
    ("multiply", np.multiply, lambda g, ans, n, x, y: _ub2(g * y, g * x, x, y)),
    ("divide", np.divide, lambda g, ans, n, x, y: _ub2(g / y, -g * ans / y, x, y)),
    ("power", np.power, _power_vjp),
    ("negative", np.negative, lambda g, ans, n, x: (-g,)),
    ("matmul", np.matmul, _matmul_vjp),
    ("linear", _linear, _linear_vjp),
    ("sum", lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
     lambda g, ans, n, x, axis=None, keepdims=False:
        (np.broadcast_to(_expand_reduced(g, x.shape, axis, keepdims), x.shape),)),
    ("mean", lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
     lambda g, ans, n, x, axis=None, keepdims=False:
        (np.broadcast_to(_expand_reduced(g, x.shape, axis, keepdims) * (ans.size / x.size),
                         x.shape),)),
    ("max", lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
     _max_vjp),
    ("reshape", lambda x, shape=None: np.reshape(x, shape),
     lambda g, ans, n, x, shape=None: (np.reshape(g, x.shape),)),
    ("transpose", lambda x, axes=None: np.transpose(x, axes),
     lambda g, ans, n, x, axes=None: (np.transpose(g, _inverse_axes(axes, np.ndim(x))),)),
    ("getitem", lambda x, index=None: x[index], _getitem_vjp),
    ("concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis), _concatenate_vjp),
    ("where", lambda c, x, y: np.where(c, x, y),
     lambda g, ans, n, c, x, y: (None, *_ub2(np.where(c, g, 0), np.where(c, 0, g), x, y))),
    ("exp", np.exp, lambda g, ans, n, x: (g * ans,)),
    ("log", np.log, lambda g, ans, n, x: (g / x,)),
    ("sqrt", np.sqrt, lambda g, ans, n, x: (g * 0.5 / ans,)),
    ("abs", np.abs, lambda g, ans, n, x: (g * np.sign(x),)),
    ("clip", lambda x, low=None, high=None: np.clip(x, low, high),
     lambda g, ans, n, x, low=None, high=None: (g * _inside(x, low, high),)),
    # Activations. ReLU has its own vjp: the gradient is 0 at exactly 0, never one half.
    ("relu", lambda x, out=None: np.maximum(x, 0, out=out),
     lambda g, ans, n, x, out=None: (np.multiply(g, x > 0, out=_out(out, 0)),)),
    ("leaky_relu", lambda x, negative_slope=0.01: np.where(x > 0, x, x * negative_slope),
     lambda g, ans, n, x, negative_slope=0.01: (np.where(x > 0, g, g * negative_slope),)),
    ("sigmoid", _stable_sigmoid, _sigmoid_vjp),
    ("tanh", np.tanh, _tanh_vjp),
    ("softmax", _softmax,
     lambda g, ans, n, x, axis=-1: (ans * (g - (g * ans).sum(axis=axis, keepdims=True)),)),
    ("log_softmax", _log_softmax,
     lambda g, ans, n, x, axis=-1: (g - np.exp(ans) * g.sum(axis=axis, keepdims=True),)),
    # Fused cost functions: an output activation and its cross-entropy, gradient (p - y).
    ("softmax_cross_entropy", _softmax_cross_entropy, _softmax_cross_entropy_vjp),
    ("sigmoid_binary_cross_entropy", _sigmoid_binary_cross_entropy,
     _sigmoid_binary_cross_entropy_vjp),
]  # fmt: skip

_FUSED = {"softmax_cross_entropy": _softmax_cross_entropy_fused}

PRIMITIVES: dict[str, Primitive] = {
    name: Primitive(name, f, v, _FUSED.get(name)) for name, f, v in _TABLE
}
"""Every primitive by name (the built-in rows and those added by :func:`register_primitive`)."""

BUILTIN: tuple[str, ...] = tuple(name for name, _, _ in _TABLE)
"""The names of the built-in rows."""


def register_primitive(name: str, forward: Callable, vjp: Callable) -> Primitive:
    """Add a row to the table: a new differentiable operation, usable by the graph and compiled.

    Parameters
    ----------
    name : str
        A name not in the table yet.
    forward : callable ``(*inputs, **params) -> ndarray``
        Plain NumPy on arrays.
    vjp : callable ``(g, ans, needs, *inputs, **params) -> tuple``
        The gradient with respect to each input, given ``g = dC/dans`` (see the module doc);
        ``None`` where ``needs[i]`` is False.

    Returns
    -------
    Primitive
        Apply it with :func:`descend.autodiff.apply`.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> softplus = register_primitive(
    ...     "softplus_example", lambda x: np.logaddexp(0, x),
    ...     lambda g, ans, needs, x: (g * _stable_sigmoid(x),))
    >>> ds.autodiff.apply(softplus, np.zeros(2)).data
    array([0.69314718, 0.69314718])
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if name in PRIMITIVES:
        raise ValueError(
            f"a primitive named {name!r} is already in the table; choose another name (the "
            "table's rows are never replaced)"
        )
    if not callable(forward) or not callable(vjp):
        raise TypeError(
            f"forward and vjp must be callables, got {type(forward).__name__} and "
            f"{type(vjp).__name__}"
        )
    prim = Primitive(name, forward, vjp)
    PRIMITIVES[name] = prim
    return prim


stable_sigmoid = _stable_sigmoid
softmax_array = _softmax
log_softmax_array = _log_softmax
labels_to_onehot = _labels_to_onehot
