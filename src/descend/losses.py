"""Cost functions: how wrong the predictions are, as one number to minimise.

Every cost takes ``(pred, target, from_logits=False)`` and returns a one-element
:class:`~descend.Tensor` (the mean over samples), so ``cost.backward()`` gives its partial
derivatives. ``pred`` holds probabilities, or raw scores (logits) with ``from_logits=True``.

When ``pred`` comes straight from a softmax (or sigmoid) and the cost is its cross-entropy, descend
computes the cost from the logits behind it, in one fused node whose gradient is ``(p - y) / n``:
exact, and finite for any logits (``log`` of a probability that rounded to 0 never happens).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from descend._names import resolve
from descend.autodiff import ops
from descend.autodiff.primitives import PRIMITIVES
from descend.autodiff.tensor import Tensor, apply

__all__ = [
    "LOSSES", "CostOverflowError", "binary_cross_entropy", "categorical_cross_entropy",
    "check_target", "get", "is_classification", "log_loss", "mse",
]  # fmt: skip


def _as_tensor(pred) -> Tensor:
    tensor = pred if isinstance(pred, Tensor) else None
    array = pred.data if tensor is not None else np.asarray(pred)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"pred must hold numbers (the model's output), got dtype {array.dtype}; convert it "
            "with np.asarray(pred, dtype=float)"
        )
    if array.size == 0:
        raise ValueError(f"pred is empty (shape {array.shape}); a cost needs at least one sample")
    # NaN or inf predictions are caught by the probability check or, from logits, by the cost
    # they make (see _checked): no pass over pred here.
    if tensor is not None:
        return tensor
    if array.dtype not in (np.float32, np.float64):  # ints, bools, float16: in float64
        array = array.astype(np.float64)
    return Tensor(array)


def _check_probabilities(pred: Tensor, activation: str) -> None:
    """Probabilities lie in [0, 1]; anything else is logits or a mistake, not to be clipped."""
    data = pred.data
    low, high = data.min(), data.max()
    if not (low >= 0 and high <= 1):  # NaN fails both comparisons
        if not (np.isfinite(low) and np.isfinite(high)):
            raise _nonfinite_pred()
        # Both ways out: fit takes no from_logits, so a model trained by fit needs the output
        # activation (the cost then works from its logits, fused and stable).
        raise ValueError(
            f"pred holds values from {low:.4g} to {high:.4g}, outside [0, 1]: probabilities "
            f"were expected, and these look like raw scores (logits). Give the model a "
            f'{activation} output (ds.nn.mlp(..., output_activation="{activation}") or '
            f'activation="{activation}" on the last Dense layer); when calling the cost yourself '
            "on logits, pass from_logits=True"
        )


def _nonfinite_pred() -> ValueError:
    return ValueError(
        "pred contains NaN or infinite values; the model's output is not finite (its parameters "
        "diverged, or the inputs are extreme)"
    )


class CostOverflowError(ValueError):
    """The cost of finite predictions is not finite: it overflows the dtype (``fit`` reports it
    as a divergence)."""


def _checked(cost_fn: Callable) -> Callable:
    """Compute a cost without NumPy's overflow warnings, and refuse a result that is not finite
    (``fit`` turns this into a DivergenceError)."""

    @functools.wraps(cost_fn)
    def cost(pred, target, from_logits: bool = False) -> Tensor:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = cost_fn(pred, target, from_logits)
        if not math.isfinite(out.data):
            values = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise _nonfinite_pred()
            raise CostOverflowError(
                f"the cost is {float(out.data)} although pred and target are finite: it "
                f"overflows {out.dtype}; pred or target hold values too large (rescale them, "
                "e.g. standardise the targets) or compute in float64"
            )
        return out

    return cost


def _target_array(target) -> np.ndarray:
    return np.asarray(target.data if isinstance(target, Tensor) else target)


def _check_finite_target(t: np.ndarray) -> None:
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise ValueError(
            "target contains NaN or infinite values; remove or impute those rows before training"
        )


def _fusable_input(pred: Tensor, op: str):
    """The logits behind ``pred`` when ``pred`` is the output of ``op`` (softmax/sigmoid)."""
    if pred.op != op:
        return None
    if op == "softmax" and pred._params.get("axis", -1) not in (-1, pred.ndim - 1):
        return None
    parent = pred._parents[0]
    return parent if parent is not None else pred._inputs[0]


def _match_column(t: np.ndarray, pred: Tensor, arg: str = "target") -> np.ndarray:
    """Let a 1-D target of n values go with predictions of shape (n, 1)."""
    if t.shape == pred.shape:
        return t
    if t.ndim == 1 and pred.shape == (t.shape[0], 1):
        return t.reshape(-1, 1)
    if pred.ndim == 1 and t.shape == (pred.shape[0], 1):
        return t.reshape(-1)
    raise ValueError(
        f"{arg} has shape {t.shape} but pred (the predictions) has shape {pred.shape}; they must "
        "match (a 1-D target of n values also goes with pred of shape (n, 1))"
    )


@_checked
def mse(pred, target, from_logits: bool = False) -> Tensor:
    """Mean squared error: C = (1/N) sum (pred - target)^2 over all N entries.

    The cost for regression. dC/dpred = 2 (pred - target) / N.

    Parameters
    ----------
    pred : Tensor or ndarray of shape (n_samples,) or (n_samples, n_outputs)
    target : ndarray of the same shape (a 1-D target also goes with pred of shape (n, 1))
    from_logits : bool
        Ignored (the squared error has no logits form); accepted so every cost has one signature.

    Returns
    -------
    Tensor
        One element.

    Raises
    ------
    ValueError
        When ``pred`` holds NaN or infinite values; when ``target`` holds values beyond the
        range of ``pred``'s dtype; and when the cost overflows although both are finite (the
        squares exceed the dtype's largest number, about 3.4e38 in float32: for example
        differences above about 1.8e19): rescale the targets (standardise them) or compute in
        float64. Never a NumPy overflow warning and an infinite cost.
    TypeError
        When ``target`` is not numeric.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> ds.losses.mse(np.array([[1.0], [3.0]]), np.array([1.0, 1.0])).item()
    2.0
    >>> try:
    ...     ds.losses.mse(np.array([3e30], dtype=np.float32), np.array([0.0], dtype=np.float32))
    ... except ValueError as err:
    ...     print(str(err)[:40])
    the cost is inf although pred and target
    """
    pred = _as_tensor(pred)
    t = _target_array(target)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target must be numeric for mse, got dtype {t.dtype}")
    _check_finite_target(t)
    t = _match_column(t, pred)
    if t.dtype.kind == "f" and t.dtype.itemsize > pred.dtype.itemsize:
        limit = np.finfo(pred.dtype).max
        if t.max() > limit or t.min() < -limit:
            raise ValueError(
                f"target holds values beyond the range of pred's dtype {pred.dtype}; rescale "
                "the targets (e.g. standardise them) or compute in float64"
            )
    t = t.astype(pred.dtype, copy=False)
    diff = pred - t
    return (diff * diff).mean()


def _binary_target(t: np.ndarray, pred: Tensor) -> np.ndarray:
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target must be numeric 0/1 labels, got dtype {t.dtype}")
    _check_finite_target(t)
    if t.size and (t.min() < 0 or t.max() > 1):
        raise ValueError(
            f"binary cross-entropy needs targets in [0, 1]: target holds values from {t.min()} "
            f"to {t.max()}; for several classes use categorical_cross_entropy with a softmax "
            "output"
        )
    return _match_column(t, pred).astype(pred.dtype, copy=False)


@_checked
def binary_cross_entropy(pred, target, from_logits: bool = False) -> Tensor:
    """Binary cross-entropy: C = -(1/N) sum [y log p + (1 - y) log(1 - p)].

    The cost for yes/no classification with a sigmoid output. From logits z (``from_logits=True``,
    or a ``pred`` that came from a sigmoid) it is computed as
    mean(max(z, 0) - z y + log(1 + e^-|z|)), with gradient dC/dz = (sigmoid(z) - y) / N.
    Probabilities are clipped to [eps, 1 - eps] (eps the dtype's machine epsilon) so that exact
    0 and 1 give finite values.

    Parameters
    ----------
    pred : Tensor or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Probabilities of the positive class, or logits.
    target : ndarray of the same shape, values in [0, 1]
    from_logits : bool, default False

    Returns
    -------
    Tensor
        One element.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> round(ds.losses.binary_cross_entropy(np.array([0.9, 0.2]), np.array([1, 0])).item(), 4)
    0.1643
    """
    pred = _as_tensor(pred)
    t = _binary_target(_target_array(target), pred)
    logits = pred if from_logits else _fusable_input(pred, "sigmoid")
    if logits is not None:
        return apply(PRIMITIVES["sigmoid_binary_cross_entropy"], logits, target=t)
    _check_probabilities(pred, "sigmoid")
    eps = float(np.finfo(pred.dtype).eps)
    p = ops.clip(pred, eps, 1 - eps)
    return -(t * ops.log(p) + (1 - t) * ops.log(1 - p)).mean()


def _categorical_target(t: np.ndarray, pred: Tensor) -> np.ndarray:
    if pred.ndim != 2:
        raise ValueError(
            f"categorical cross-entropy needs pred of shape (n_samples, n_classes), got "
            f"{pred.shape}; use a softmax output layer with one unit per class"
        )
    n, k = pred.shape
    if t.ndim == 1:
        if t.dtype.kind == "f":
            if not np.isfinite(t).all() or not np.all(t == np.round(t)):
                raise ValueError(
                    "target holds non-integer class labels; give integer labels 0..n_classes-1 "
                    "or one-hot rows of shape (n_samples, n_classes)"
                )
        elif t.dtype.kind not in "biu":
            raise TypeError(f"target must hold integer class labels, got dtype {t.dtype}")
        if t.shape[0] != n:
            raise ValueError(f"target has {t.shape[0]} labels but pred has {n} rows")
        if t.size and (t.min() < 0 or t.max() >= k):
            raise ValueError(_labels_out_of_range(t, k))
        return t.astype(np.intp, copy=False)
    if t.shape != (n, k):
        raise ValueError(
            f"target has shape {t.shape}; give integer labels of shape ({n},) or one-hot rows of "
            f"shape ({n}, {k})"
        )
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target must be numeric, got dtype {t.dtype}")
    _check_finite_target(t)
    if t.size and (t.min() < 0 or t.max() > 1):
        raise ValueError(
            f"target rows (one-hot or probabilities) must lie in [0, 1], got values from "
            f"{t.min()} to {t.max()}"
        )
    return t.astype(pred.dtype, copy=False)


def _labels_out_of_range(t: np.ndarray, k: int) -> str:
    """What to do when labels do not index the model's ``k`` outputs."""
    low, high = int(t.min()), int(t.max())
    if k == 1:
        # One output unit cannot hold a distribution over classes: "relabel 0..0" is no fix.
        return (
            f"target holds labels from {low} to {high} but the model has 1 output, and "
            "categorical cross-entropy needs one output per class; for two classes use "
            "binary_cross_entropy with a sigmoid output, or give the last layer "
            f"{high + 1} units with a softmax"
        )
    fix = f"give the last layer {high + 1} units"
    if len(np.unique(t)) <= k:  # as many classes as outputs: the labels can be renumbered
        fix = f"renumber the classes 0..{k - 1}, or " + fix
    return (
        f"target holds labels from {low} to {high} but the model has {k} outputs (classes "
        f"0..{k - 1}); {fix}"
    )


@_checked
def categorical_cross_entropy(pred, target, from_logits: bool = False) -> Tensor:
    """Categorical cross-entropy: C = -(1/n) sum_i sum_k y_ik log p_ik.

    The cost for choosing one of several classes with a softmax output. From logits z
    (``from_logits=True``, or a ``pred`` straight from a softmax) it is computed as
    -(1/n) sum_i log_softmax(z_i)[y_i], with the fused gradient dC/dz = (softmax(z) - y) / n.
    Probabilities are clipped below at the dtype's machine epsilon.

    Parameters
    ----------
    pred : Tensor or ndarray of shape (n_samples, n_classes)
        Class probabilities (rows summing to 1), or logits.
    target : ndarray of shape (n_samples,) with integer labels, or (n_samples, n_classes) one-hot
    from_logits : bool, default False

    Returns
    -------
    Tensor
        One element.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    >>> round(ds.losses.categorical_cross_entropy(p, np.array([0, 1])).item(), 4)
    0.2899
    """
    pred = _as_tensor(pred)
    t = _categorical_target(_target_array(target), pred)
    logits = pred if from_logits else _fusable_input(pred, "softmax")
    if logits is not None:
        return apply(PRIMITIVES["softmax_cross_entropy"], logits, target=t)
    _check_probabilities(pred, "softmax")
    eps = float(np.finfo(pred.dtype).eps)
    if t.ndim == 1:
        picked = pred[np.arange(t.shape[0]), t]
        return -ops.log(ops.clip(picked, eps, None)).mean()
    return -(t * ops.log(ops.clip(pred, eps, None))).sum() / pred.shape[0]


def log_loss(pred, target, from_logits: bool = False) -> Tensor:
    """Log loss, the same quantity as scikit-learn's ``log_loss``: the mean negative log-likelihood.

    Predictions of shape (n,) or (n, 1) are probabilities of the positive class (binary
    cross-entropy); of shape (n, k) with k >= 2, class probabilities (categorical cross-entropy).

    Parameters
    ----------
    pred : Tensor or ndarray of shape (n_samples,), (n_samples, 1) or (n_samples, n_classes)
    target : ndarray of shape (n_samples,)
        Labels (0/1 for binary; 0..k-1 for k classes), or one-hot rows.
    from_logits : bool, default False

    Returns
    -------
    Tensor
        One element.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> round(ds.losses.log_loss(np.array([0.9, 0.1, 0.8]), np.array([1, 0, 1])).item(), 4)
    0.1446
    """
    pred = _as_tensor(pred)
    if pred.ndim == 1 or (pred.ndim == 2 and pred.shape[1] == 1):
        return binary_cross_entropy(pred, target, from_logits=from_logits)
    return categorical_cross_entropy(pred, target, from_logits=from_logits)


LOSSES: dict[str, Callable] = {
    "mse": mse,
    "mean_squared_error": mse,
    "binary_cross_entropy": binary_cross_entropy,
    "bce": binary_cross_entropy,
    "categorical_cross_entropy": categorical_cross_entropy,
    "cross_entropy": categorical_cross_entropy,
    "log_loss": log_loss,
}
_CLASSIFICATION = {binary_cross_entropy, categorical_cross_entropy, log_loss}


def get(loss: str | Callable) -> Callable:
    """A cost function by name (``"mse"``, ``"binary_cross_entropy"``, ...) or the callable itself.

    Examples
    --------
    >>> import descend as ds
    >>> ds.losses.get("cross_entropy").__name__
    'categorical_cross_entropy'
    """
    return resolve(loss, LOSSES, argument="loss", what="cost function",
                   callable_hint="a callable (pred, target) -> one-element Tensor")  # fmt: skip


CLASSIFICATION_COSTS = ("categorical_cross_entropy", "binary_cross_entropy", "log_loss")


def classification_output(loss: str, n_classes: int, *, argument: str = "loss") -> tuple:
    """The cost, output activation and number of output units for ``n_classes`` classes.

    ``"auto"`` picks binary cross-entropy with one sigmoid unit for two classes, categorical
    cross-entropy with one softmax unit per class otherwise.

    Parameters
    ----------
    loss : {"auto", "categorical_cross_entropy", "binary_cross_entropy", "log_loss"}
    n_classes : int
    argument : str, default "loss"
        How the caller names the option, for error messages (``"--loss"`` on the command line).

    Returns
    -------
    (loss, activation, units) : (str, str, int)

    Examples
    --------
    >>> classification_output("auto", 2)
    ('binary_cross_entropy', 'sigmoid', 1)
    >>> classification_output("log_loss", 4)
    ('log_loss', 'softmax', 4)
    """
    if loss not in ("auto", *CLASSIFICATION_COSTS):
        raise ValueError(
            f"{argument} {loss!r} is not a classification cost; use one of "
            f"{', '.join(('auto', *CLASSIFICATION_COSTS))}"
        )
    if loss == "binary_cross_entropy" and n_classes != 2:
        raise ValueError(
            f"{argument} binary_cross_entropy needs two classes, but there are {n_classes}; use "
            "categorical_cross_entropy (or auto)"
        )
    if loss == "auto":
        loss = "binary_cross_entropy" if n_classes == 2 else "categorical_cross_entropy"
    if loss in ("binary_cross_entropy", "log_loss") and n_classes == 2:
        return loss, "sigmoid", 1
    return loss, "softmax", n_classes


def check_target(
    loss: str | Callable, target, output_shape: tuple[int, ...], dtype=np.float32
) -> np.ndarray:
    """Check targets against a built-in cost and the shape of the model's output, and return them
    as the cost computes with them.

    The checks are the cost's own (labels in range, shapes that go together, 0/1 values for the
    binary cost, ...), made once for a whole data set, so that a wrong target is reported before
    training instead of at some batch. A cost given as a callable of your own is not checked.

    Parameters
    ----------
    loss : str or callable
        The cost, as for :func:`get`.
    target : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    output_shape : tuple of int
        The shape of the model's output for all ``n_samples`` rows (``(n_samples, n_outputs)``).
    dtype : dtype, default float32
        The model's dtype.

    Returns
    -------
    ndarray of the shape of ``target``
        Class labels as ``intp`` for categorical cross-entropy, probabilities in ``dtype`` for
        the cross-entropies' other targets, values unchanged for the squared error.

    Raises
    ------
    ValueError, TypeError
        When the targets do not fit the cost and the output; the message says how to fix them.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> ds.losses.check_target("cross_entropy", np.array([0, 2, 1]), (3, 3)).dtype == np.intp
    True
    >>> try:  # label 3 with three outputs
    ...     ds.losses.check_target("cross_entropy", np.array([0, 3]), (2, 3))
    ... except ValueError as err:
    ...     print("refused")
    refused
    """
    fn = get(loss)
    t = np.asarray(target)
    # The helpers read only the prediction's shape and dtype: a zero-stride array has both.
    shape = tuple(output_shape)
    pred = np.ndarray(shape, dtype, np.zeros(1, dtype), strides=(0,) * len(shape))
    if fn is log_loss:
        binary = pred.ndim == 1 or (pred.ndim == 2 and pred.shape[1] == 1)
        fn = binary_cross_entropy if binary else categorical_cross_entropy
    if fn is mse:
        _match_column(t, pred)
        return t
    if fn is binary_cross_entropy:
        return _binary_target(t, pred).reshape(t.shape)
    if fn is categorical_cross_entropy:
        return _categorical_target(t, pred)
    return t


def is_classification(loss: str | Callable) -> bool:
    """Whether a cost is a classification cost (cross-entropy or log loss).

    Examples
    --------
    >>> is_classification("mse"), is_classification("log_loss")
    (False, True)
    """
    return get(loss) in _CLASSIFICATION
