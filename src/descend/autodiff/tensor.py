"""``Tensor``: a NumPy array that remembers how it was computed, so gradients can flow back."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from descend.autodiff.primitives import PRIMITIVES, Primitive


class _State(threading.local):
    """Per thread: whether a graph is recorded, and the tracer of :mod:`descend.compile` while
    it records one eager step (it sees every primitive call, with or without a graph)."""

    enabled = True
    tracer = None


_state = _State()


def is_grad_enabled() -> bool:
    """Whether operations on tensors currently record a graph (False inside :func:`no_grad`).

    Examples
    --------
    >>> import descend as ds
    >>> with ds.no_grad():
    ...     print(ds.autodiff.is_grad_enabled())
    False
    """
    return _state.enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (or decorator) inside which no graph is recorded.

    Results computed inside are plain tensors with ``requires_grad=False``: faster and lighter,
    for prediction and evaluation.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> w = ds.Tensor(np.ones(3), requires_grad=True)
    >>> with ds.no_grad():
    ...     y = (w * 2).sum()
    >>> y.requires_grad
    False
    """
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


def _unwrap(x):
    return x.data if isinstance(x, Tensor) else x


def apply(prim: Primitive, *args, **params) -> Tensor:
    """Run a primitive on tensors or arrays and, when gradients are wanted, record the node.

    Parameters
    ----------
    prim : Primitive
        A row of :data:`descend.autodiff.primitives.PRIMITIVES`.
    *args : Tensor, ndarray or scalar
        The inputs. Only tensors with ``requires_grad=True`` become parents in the graph.
    **params
        Non-differentiable parameters of the primitive (``axis``, ``shape``, ...).

    Returns
    -------
    Tensor

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> from descend.autodiff.primitives import PRIMITIVES
    >>> apply(PRIMITIVES["exp"], ds.Tensor(np.zeros(2))).data
    array([1., 1.])
    """
    inputs = tuple(a.data if isinstance(a, Tensor) else a for a in args)
    out = prim.forward(*inputs, **params)
    if not isinstance(out, np.ndarray):
        out = np.asarray(out)
    result = Tensor.__new__(Tensor)
    result.data = out
    result.grad = None
    result._retain = False
    tracer = _state.tracer
    if tracer is not None:
        tracer.forward(prim, args, inputs, params, out)
    if is_grad_enabled():
        parents = tuple(a if isinstance(a, Tensor) and a.requires_grad else None for a in args)
        if any(p is not None for p in parents):
            result.requires_grad = True
            result._prim = prim
            result._inputs = inputs
            result._parents = parents
            result._params = params
            return result
    result.requires_grad = False
    result._prim = None
    result._inputs = result._parents = ()
    result._params = None
    return result


class Tensor:
    """An array in the computation graph.

    A tensor wraps a NumPy array (``.data``). When ``requires_grad`` is True, every operation on it
    records how its result was computed, and :meth:`backward` then fills ``.grad`` of every leaf
    tensor (one created by the user, such as a weight) with the partial derivative of a scalar
    with respect to it.

    Parameters
    ----------
    data : array_like
        The values. Lists and scalars are converted with ``np.asarray``; arrays are not copied.
    requires_grad : bool, default False
        Whether gradients with respect to this tensor are wanted.
    dtype : dtype, optional
        Convert the data to this dtype.

    Attributes
    ----------
    data : ndarray
        The values.
    grad : ndarray or None
        After :meth:`backward`, dC/d(this tensor), same shape as ``data``; ``None`` before.
        Gradients accumulate (add up) over calls to ``backward`` until set to ``None`` again, as in
        PyTorch. Treat ``grad`` as read-only: descend may share one array between two gradients
        only where no one can tell, and always assigns new arrays rather than writing into them.
    requires_grad : bool

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> w = ds.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad
    array([2., 4., 6.])
    """

    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "_prim",
        "_inputs",
        "_parents",
        "_params",
        "_retain",
        "__weakref__",
    )
    __array_priority__ = 100.0  # so ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        array = np.asarray(data, dtype=dtype)
        if requires_grad and not np.issubdtype(array.dtype, np.floating):
            raise TypeError(
                f"requires_grad=True needs a floating-point array, got dtype {array.dtype}; "
                f"convert it first, e.g. Tensor(data, requires_grad=True, dtype=np.float64)"
            )
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._prim = None
        self._inputs = ()
        self._parents = ()
        self._params = None
        self._retain = False

    # --- array-like facts ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``data``."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``data``."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements of ``data``."""
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for a tensor the user created (no recorded operation behind it)."""
        return self._prim is None

    @property
    def op(self) -> str | None:
        """The name of the primitive that produced this tensor, or None for a leaf."""
        return None if self._prim is None else self._prim.name

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._prim.name}" if self._prim is not None else ""
        body = np.array2string(self.data, prefix="Tensor(")
        return f"Tensor({body}{grad}{op})"

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (the same array, not a copy)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def detach(self) -> Tensor:
        """A new leaf tensor on the same data, outside the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this intermediate tensor too after :meth:`backward`; returns self."""
        self._retain = True
        return self

    def backward(self, grad=None) -> None:
        """Back-propagate: add dC/dx into ``x.grad`` for every leaf ``x`` this tensor depends on.

        Parameters
        ----------
        grad : array_like, optional
            dC/d(this tensor). May be omitted for a scalar (one element), where it is 1.

        Notes
        -----
        The graph is kept, so calling ``backward`` twice on the same result adds the same
        gradients twice (PyTorch needs ``retain_graph=True`` for this and otherwise raises).
        Call ``model.zero_grad()`` (or set ``.grad = None``) between steps.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> x = ds.Tensor(np.array(3.0), requires_grad=True)
        >>> (x ** 2).backward()
        >>> x.grad
        array(6.)
        """
        from descend.autodiff.backward import backward

        backward(self, grad)

    # --- operators ------------------------------------------------------------------------------
    def __add__(self, other):
        return apply(PRIMITIVES["add"], self, other)

    def __radd__(self, other):
        return apply(PRIMITIVES["add"], other, self)

    def __sub__(self, other):
        return apply(PRIMITIVES["subtract"], self, other)

    def __rsub__(self, other):
        return apply(PRIMITIVES["subtract"], other, self)

    def __mul__(self, other):
        return apply(PRIMITIVES["multiply"], self, other)

    def __rmul__(self, other):
        return apply(PRIMITIVES["multiply"], other, self)

    def __truediv__(self, other):
        return apply(PRIMITIVES["divide"], self, other)

    def __rtruediv__(self, other):
        return apply(PRIMITIVES["divide"], other, self)

    def __pow__(self, other):
        return apply(PRIMITIVES["power"], self, other)

    def __rpow__(self, other):
        return apply(PRIMITIVES["power"], other, self)

    def __matmul__(self, other):
        return apply(PRIMITIVES["matmul"], self, other)

    def __rmatmul__(self, other):
        return apply(PRIMITIVES["matmul"], other, self)

    def __neg__(self):
        return apply(PRIMITIVES["negative"], self)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        return apply(PRIMITIVES["getitem"], self, index=index)

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other):
        return self.data < _unwrap(other)

    def __le__(self, other):
        return self.data <= _unwrap(other)

    def __gt__(self, other):
        return self.data > _unwrap(other)

    def __ge__(self, other):
        return self.data >= _unwrap(other)

    __hash__ = object.__hash__

    # --- methods --------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None)."""
        return apply(PRIMITIVES["sum"], self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes when None)."""
        return apply(PRIMITIVES["mean"], self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; the gradient is split evenly between tied maxima."""
        return apply(PRIMITIVES["max"], self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> Tensor:
        """The same values in a new shape (``-1`` infers one dimension)."""
        if len(shape) == 1 and isinstance(shape[0], Sequence):
            shape = tuple(shape[0])
        return apply(PRIMITIVES["reshape"], self, shape=shape)

    def transpose(self, *axes) -> Tensor:
        """Permute the axes (reverse them when none are given)."""
        if len(axes) == 1 and isinstance(axes[0], Sequence):
            axes = tuple(axes[0])
        return apply(PRIMITIVES["transpose"], self, axes=axes or None)

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        """The transpose (axes reversed)."""
        return self.transpose()

    def exp(self) -> Tensor:
        """Element-wise e**x."""
        return apply(PRIMITIVES["exp"], self)

    def log(self) -> Tensor:
        """Element-wise natural logarithm."""
        return apply(PRIMITIVES["log"], self)

    def relu(self) -> Tensor:
        """max(x, 0), as :func:`descend.autodiff.ops.relu` (gradient 0 at exactly 0).

        Examples
        --------
        >>> Tensor(np.array([-1.0, 2.0])).relu().data
        array([0., 2.])
        """
        return apply(PRIMITIVES["relu"], self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, as :func:`descend.autodiff.ops.tanh`.

        Examples
        --------
        >>> Tensor(np.array([0.0])).tanh().data
        array([0.])
        """
        return apply(PRIMITIVES["tanh"], self)

    def sigmoid(self) -> Tensor:
        """1 / (1 + e^-x) without overflow, as :func:`descend.autodiff.ops.sigmoid`.

        Examples
        --------
        >>> Tensor(np.array([0.0])).sigmoid().data
        array([0.5])
        """
        return apply(PRIMITIVES["sigmoid"], self)

    def sqrt(self) -> Tensor:
        """Element-wise square root."""
        return apply(PRIMITIVES["sqrt"], self)

    def abs(self) -> Tensor:
        """Element-wise absolute value (gradient sign(x), 0 at 0)."""
        return apply(PRIMITIVES["abs"], self)

    def clip(self, low=None, high=None) -> Tensor:
        """Limit values to [low, high]; the gradient is 1 inside (bounds included), 0 outside."""
        if low is None and high is None:
            raise ValueError("clip needs low or high (or both); got neither")
        return apply(PRIMITIVES["clip"], self, low=low, high=high)
