"""Gradients as functions: ``grad``, ``value_and_grad`` and the central-difference ``gradcheck``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from descend.autodiff.tensor import Tensor


def _argnums_tuple(argnums: int | Sequence[int], n_args: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise ValueError(f"argnums={argnums!r} is out of range for a call with {n_args} arrays")
    return tuple(i % n_args for i in nums)


def value_and_grad(f: Callable[..., Tensor], argnums: int | Sequence[int] = 0) -> Callable:
    """Make a function that returns ``(f(*arrays), df/d(arrays[argnums]))``.

    Parameters
    ----------
    f : callable
        Takes tensors and returns a one-element tensor (a scalar such as a cost).
    argnums : int or sequence of int, default 0
        Which positional arguments to differentiate with respect to.

    Returns
    -------
    callable
        ``(*arrays) -> (value, gradient)``: ``value`` a float; ``gradient`` an ndarray of the
        argument's shape, or a tuple of them when ``argnums`` is a sequence.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> value, g = ds.value_and_grad(lambda w: (w ** 2).sum())(np.array([1.0, 2.0]))
    >>> value, g
    (5.0, array([2., 4.]))
    """

    def wrapped(*arrays):
        nums = _argnums_tuple(argnums, len(arrays))
        tensors = [
            Tensor(np.asarray(a, dtype=_float_dtype(a)), requires_grad=True)
            if i in nums
            else (a if isinstance(a, Tensor) else Tensor(a))
            for i, a in enumerate(arrays)
        ]
        out = f(*tensors)
        if not isinstance(out, Tensor) or out.data.size != 1:
            raise ValueError(
                "value_and_grad/grad need f to return a one-element Tensor (a scalar cost); "
                f"got {type(out).__name__} of shape {np.shape(getattr(out, 'data', out))}"
            )
        grads = []
        if out.requires_grad:
            out.backward()
        for i in nums:
            g = tensors[i].grad
            grads.append(np.zeros_like(tensors[i].data) if g is None else g)
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        return out.data.item(), result

    return wrapped


def grad(f: Callable[..., Tensor], argnums: int | Sequence[int] = 0) -> Callable:
    """Make a function that returns the gradient of the scalar ``f`` with respect to its arguments.

    Parameters
    ----------
    f : callable
        Takes tensors and returns a one-element tensor.
    argnums : int or sequence of int, default 0

    Returns
    -------
    callable
        ``(*arrays) -> gradient`` (ndarray, or tuple of them when ``argnums`` is a sequence).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> ds.grad(lambda x: (x ** 3).sum())(np.array([2.0]))
    array([12.])
    """
    vg = value_and_grad(f, argnums)
    return lambda *arrays: vg(*arrays)[1]


def _float_dtype(a) -> np.dtype:
    dtype = np.asarray(a.data if isinstance(a, Tensor) else a).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


@dataclass
class GradcheckResult:
    """What :func:`gradcheck` found.

    Attributes
    ----------
    ok : bool
        True when every entry agreed within the tolerances.
    max_rel_error : float
        The worst relative error |analytic - numeric| / max(|analytic|, |numeric|, 1e-7).
    max_abs_error : float
        The worst absolute error.
    worst : tuple
        (argument number, index) of the worst entry.
    analytic, numeric : list of ndarray
        Both gradients, one per argument.
    """

    ok: bool
    max_rel_error: float
    max_abs_error: float
    worst: tuple
    analytic: list = field(repr=False)
    numeric: list = field(repr=False)

    def __bool__(self) -> bool:
        return self.ok


def gradcheck(
    f: Callable[..., Tensor],
    *arrays,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    raise_on_failure: bool = False,
) -> GradcheckResult:
    """Compare backpropagation's gradient with central differences, in float64.

    For every entry ``x_j`` of every argument, the numeric derivative is
    ``(f(x + eps e_j) - f(x - eps e_j)) / (2 eps)``, with error O(eps^2).

    Parameters
    ----------
    f : callable
        Takes tensors (one per array) and returns a one-element tensor.
    *arrays : array_like
        The point at which to check; converted to float64.
    eps : float, default 1e-6
        The step of the central difference.
    rtol, atol : float
        An entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
    raise_on_failure : bool, default False
        Raise ``AssertionError`` with the report instead of returning a failed result.

    Returns
    -------
    GradcheckResult
        Truthy when the check passed; ``max_rel_error`` is the worst relative error.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> result = ds.gradcheck(lambda x: (ds.autodiff.tanh(x) ** 2).sum(), np.array([0.3, -1.2]))
    >>> result.ok, result.max_rel_error < 1e-8
    (True, True)
    """
    xs = [np.array(a.data if isinstance(a, Tensor) else a, dtype=np.float64) for a in arrays]
    if not xs:
        raise ValueError("gradcheck needs at least one array to differentiate with respect to")

    def scalar(*values) -> float:
        out = f(*[Tensor(v) for v in values])
        return float(np.asarray(out.data if isinstance(out, Tensor) else out).reshape(()))

    _, analytic = value_and_grad(f, argnums=tuple(range(len(xs))))(*xs)
    analytic = [np.asarray(g, dtype=np.float64) for g in analytic]
    numeric = []
    for x in xs:
        num = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            original = x[j]
            x[j] = original + eps
            plus = scalar(*xs)
            x[j] = original - eps
            minus = scalar(*xs)
            x[j] = original
            num[j] = (plus - minus) / (2 * eps)
        numeric.append(num)

    ok, worst_rel, worst_abs, worst = True, 0.0, 0.0, ()
    for k, (a, n) in enumerate(zip(analytic, numeric, strict=True)):
        abs_err = np.abs(a - n)
        # The floor keeps entries whose true gradient is 0 from dividing rounding noise by ~0.
        rel_err = abs_err / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-7)
        if not np.all(abs_err <= atol + rtol * np.abs(n)):
            ok = False
        if rel_err.size and rel_err.max() >= worst_rel:
            idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(rel_err)), rel_err.shape))
            worst_rel, worst = float(rel_err[idx]), (k, idx)
        if abs_err.size:
            worst_abs = max(worst_abs, float(abs_err.max()))
    result = GradcheckResult(ok, worst_rel, worst_abs, worst, analytic, numeric)
    if raise_on_failure and not ok:
        raise AssertionError(
            f"gradcheck failed: worst relative error {worst_rel:.3g} at argument {worst[0]}, "
            f"index {worst[1]} (analytic {analytic[worst[0]][worst[1]]!r}, "
            f"numeric {numeric[worst[0]][worst[1]]!r})"
        )
    return result
