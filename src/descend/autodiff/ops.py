"""Functions on tensors: the primitives of the table, callable on tensors or plain arrays.

Each function accepts a :class:`Tensor`, a NumPy array or a number, and returns a Tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from descend.autodiff.primitives import PRIMITIVES
from descend.autodiff.tensor import Tensor, apply

__all__ = [
    "abs", "clip", "concatenate", "exp", "leaky_relu", "linear", "log", "log_softmax", "matmul",
    "max", "mean", "relu", "reshape", "sigmoid", "softmax", "sqrt", "sum", "tanh", "transpose",
    "where",
]  # fmt: skip

_P = PRIMITIVES


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def exp(x) -> Tensor:
    """Element-wise e**x.

    Examples
    --------
    >>> import numpy as np
    >>> exp(np.zeros(2)).data
    array([1., 1.])
    """
    return apply(_P["exp"], x)


def log(x) -> Tensor:
    """Element-wise natural logarithm.

    Examples
    --------
    >>> import numpy as np
    >>> log(np.ones(2)).data
    array([0., 0.])
    """
    return apply(_P["log"], x)


def sqrt(x) -> Tensor:
    """Element-wise square root.

    Examples
    --------
    >>> import numpy as np
    >>> sqrt(np.array([4.0, 9.0])).data
    array([2., 3.])
    """
    return apply(_P["sqrt"], x)


def abs(x) -> Tensor:  # noqa: A001 - NumPy's name
    """Element-wise absolute value; its gradient is sign(x) (0 at 0).

    Examples
    --------
    >>> import numpy as np
    >>> abs(np.array([-2.0, 3.0])).data
    array([2., 3.])
    """
    return apply(_P["abs"], x)


def clip(x, low=None, high=None) -> Tensor:
    """Limit values to [low, high]; gradient 1 inside (bounds included) and 0 outside.

    Examples
    --------
    >>> import numpy as np
    >>> clip(np.array([-2.0, 0.5, 3.0]), 0, 1).data
    array([0. , 0.5, 1. ])
    """
    if low is None and high is None:
        raise ValueError("clip needs low or high (or both); got neither")
    return apply(_P["clip"], x, low=low, high=high)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (every axis when None).

    Examples
    --------
    >>> import numpy as np
    >>> sum(np.ones((2, 3)), axis=0).data
    array([2., 2., 2.])
    """
    return apply(_P["sum"], x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (every axis when None).

    Examples
    --------
    >>> import numpy as np
    >>> mean(np.array([[1.0, 3.0]]), axis=1).data
    array([2.])
    """
    return apply(_P["mean"], x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - NumPy's name
    """Maximum over ``axis``; the gradient is shared evenly between tied maxima.

    Examples
    --------
    >>> import numpy as np
    >>> max(np.array([[1.0, 3.0], [5.0, 2.0]]), axis=1).data
    array([3., 5.])
    """
    return apply(_P["max"], x, axis=axis, keepdims=keepdims)


def reshape(x, shape) -> Tensor:
    """The same values in ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> reshape(np.arange(6.0), (2, 3)).shape
    (2, 3)
    """
    return apply(_P["reshape"], x, shape=tuple(shape) if isinstance(shape, Sequence) else shape)


def transpose(x, axes=None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> transpose(np.zeros((2, 3))).shape
    (3, 2)
    """
    return apply(_P["transpose"], x, axes=None if axes is None else tuple(axes))


def matmul(x, y) -> Tensor:
    """Matrix product with NumPy's ``@`` rules (1-D operands and batched stacks included).

    Examples
    --------
    >>> import numpy as np
    >>> matmul(np.ones((2, 3)), np.ones(3)).data
    array([3., 3.])
    """
    return apply(_P["matmul"], x, y)


def linear(x, weight, bias) -> Tensor:
    """The fused affine map of a dense layer: ``x @ weight + bias``, one node in the graph.

    Parameters
    ----------
    x : Tensor or ndarray of shape (n_samples, in_features)
    weight : Tensor of shape (in_features, out_features)
    bias : Tensor of shape (out_features,)

    Returns
    -------
    Tensor of shape (n_samples, out_features)
        The pre-activation z. Its vjp gives dC/dx = g W^T, dC/dW = x^T g, dC/db = sum_i g_i.

    Examples
    --------
    >>> import numpy as np
    >>> linear(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3)).data
    array([[2., 2., 2.]])
    """
    if np.ndim(_data(x)) != 2:
        raise ValueError(
            f"linear needs x of shape (n_samples, in_features), got {np.shape(_data(x))}; "
            "reshape a single sample with x.reshape(1, -1)"
        )
    return apply(_P["linear"], x, weight, bias)


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis.

    Examples
    --------
    >>> import numpy as np
    >>> concatenate([np.zeros(2), np.ones(1)]).data
    array([0., 0., 1.])
    """
    return apply(_P["concatenate"], *tensors, axis=axis)


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``; the gradient goes to the chosen side.

    Examples
    --------
    >>> import numpy as np
    >>> where(np.array([True, False]), np.ones(2), np.zeros(2)).data
    array([1., 0.])
    """
    condition = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    return apply(_P["where"], condition.astype(bool, copy=False), x, y)


def relu(x) -> Tensor:
    """max(x, 0). The derivative is 1 for x > 0 and 0 for x <= 0 (exactly 0 at 0).

    Examples
    --------
    >>> import numpy as np
    >>> relu(np.array([-1.0, 0.0, 2.0])).data
    array([0., 0., 2.])
    """
    return apply(_P["relu"], x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> leaky_relu(np.array([-1.0, 2.0]), negative_slope=0.1).data
    array([-0.1,  2. ])
    """
    return apply(_P["leaky_relu"], x, negative_slope=negative_slope)


def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x), computed without overflow for any x. Derivative s (1 - s).

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid(np.array([0.0, -1e4, 1e4])).data
    array([0.5, 0. , 1. ])
    """
    return apply(_P["sigmoid"], x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent. Derivative 1 - tanh(x)^2.

    Examples
    --------
    >>> import numpy as np
    >>> tanh(np.array([0.0])).data
    array([0.])
    """
    return apply(_P["tanh"], x)


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum so it never overflows.

    A softmax output followed by :func:`descend.losses.categorical_cross_entropy` is fused into one
    stable node whose gradient with respect to the logits is (p - y) / n.

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[0.0, 0.0]])).data
    array([[0.5, 0.5]])
    """
    return apply(_P["softmax"], x, axis=axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) computed stably as x - max - log(sum(exp(x - max))).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(log_softmax(np.array([[0.0, 0.0]])).data, 4)
    array([[-0.6931, -0.6931]])
    """
    return apply(_P["log_softmax"], x, axis=axis)
