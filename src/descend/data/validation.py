"""Input checks shared by batching, splitting, scaling, and by fit / evaluate / predict.

Every check raises an error that names the argument, says what is wrong and how to fix it:
`TypeError` for a value of the wrong kind (strings where numbers belong, a float batch size),
`ValueError` for a value of the right kind that is out of range (wrong shape, NaN, empty).

The checks are cheap. An array that is already fine is returned as is (no copy); a memory-mapped
array is returned as a plain ``ndarray`` view of the same file, so nothing is read. The NaN/inf
scan is two reductions (``min`` and ``max``, which propagate NaN) that allocate nothing; only when
they find a problem is a mask built to say how many values are bad and where the first one is.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_generator", "check_X_y", "check_array", "check_batch_finite", "is_memory_mapped"]

# bool, signed int, unsigned int, float: what a loss or a matmul can consume.
_NUMERIC_KINDS = "biuf"


def as_generator(
    seed: int | np.random.Generator | None, *, name: str = "seed"
) -> np.random.Generator:
    """Turn a seed into a NumPy random generator.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        ``None`` draws fresh entropy from the operating system (not reproducible), a
        non-negative int gives a reproducible stream, a ``Generator`` is used as is (shared, not
        copied, so its state advances for every caller that holds it).
    name : str, default="seed"
        Name of the argument, used in error messages.

    Returns
    -------
    rng : numpy.random.Generator

    Raises
    ------
    TypeError
        If `seed` is not None, an int or a Generator (bools and ``RandomState`` included).
    ValueError
        If `seed` is a negative int.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import as_generator
    >>> a = as_generator(0).integers(100, size=3)
    >>> b = as_generator(0).integers(100, size=3)
    >>> bool((a == b).all())
    True
    >>> rng = np.random.default_rng(1)
    >>> as_generator(rng) is rng
    True
    """
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool | np.bool_):
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got bool {seed}")
    if isinstance(seed, numbers.Integral):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int, got {seed}; use e.g. {name}=0")
        return np.random.default_rng(int(seed))
    if isinstance(seed, np.random.RandomState):
        raise TypeError(
            f"{name} must be None, an int or a numpy.random.Generator, got a legacy RandomState; "
            f"pass {name}=np.random.default_rng(...) instead"
        )
    raise TypeError(
        f"{name} must be None, an int or a numpy.random.Generator, got {type(seed).__name__}"
    )


def check_array(
    X: ArrayLike,
    *,
    name: str = "X",
    allow_nd: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validate a data matrix: an array of numbers with one row per sample.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Lists are converted to arrays; arrays are not copied. With ``allow_nd=True`` any shape
        ``(n_samples, ...)`` with at least two dimensions is accepted (for images, say).
    name : str, default="X"
        Name of the argument, used in error messages.
    allow_nd : bool, default=False
        Accept arrays with more than two dimensions.
    finite : bool, default=True
        Reject NaN and infinite values. Turn off where the values are never read (batching,
        splitting), so that large memory-mapped files are not scanned.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The input itself when it already was an ndarray (a memory map comes back as a plain
        ``ndarray`` view of the same file).

    Raises
    ------
    TypeError
        If the values are not numbers (bool, int or float), e.g. strings or Python objects.
    ValueError
        If `X` is empty, not 2-D (or at least 2-D with `allow_nd`), or holds NaN or inf.

    Examples
    --------
    >>> from descend.data import check_array
    >>> check_array([[1, 2], [3, 4]]).shape
    (2, 2)
    >>> check_array([1.0, 2.0, 3.0])
    Traceback (most recent call last):
        ...
    ValueError: X must be 2-D of shape (n_samples, n_features), got a 1-D array of shape (3,); \
if it is one feature, pass X.reshape(-1, 1); if it is one sample, pass X.reshape(1, -1)
    """
    X = _as_array(X, name)
    if X.ndim == 0:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features), got a scalar; "
            f"pass an array with one row per sample"
        )
    if X.size == 0:
        raise ValueError(
            f"{name} is empty (shape {X.shape}); it needs at least one sample and one feature"
        )
    if X.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features), got a 1-D array of shape "
            f"{X.shape}; if it is one feature, pass {name}.reshape(-1, 1); if it is one sample, "
            f"pass {name}.reshape(1, -1)"
        )
    if X.ndim > 2 and not allow_nd:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features), got {X.ndim}-D shape "
            f"{X.shape}; flatten each sample with {name}.reshape(len({name}), -1)"
        )
    _check_numeric(X, name)
    if finite:
        _check_finite(X, name)
    return X


def check_X_y(
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    name_X: str = "X",
    name_y: str = "y",
    allow_nd: bool = False,
    finite: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate inputs and targets together, before training, evaluating or predicting.

    `X` is checked as in :func:`check_array`. `y`, when given, must be numbers, 1-D
    (labels or a single regression target) or 2-D (one-hot labels or several targets), and
    have one entry per row of `X`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs, one row per sample.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        Targets; ``y[i]`` belongs to ``X[i]``.
    name_X, name_y : str, default="X", "y"
        Names of the arguments, used in error messages (e.g. ``"X_val"``).
    allow_nd : bool, default=False
        Accept `X` with more than two dimensions, shape ``(n_samples, ...)``.
    finite : bool, default=True
        Reject NaN and infinite values in `X` and `y`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs), or None
        The inputs themselves when they already were ndarrays (no copy).

    Raises
    ------
    TypeError
        If `X` or `y` do not hold numbers.
    ValueError
        If a shape is wrong, the lengths differ, an array is empty, or a value is NaN/inf.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import check_X_y
    >>> X, y = check_X_y([[0.0, 1.0], [2.0, 3.0]], [0, 1])
    >>> X.shape, y.shape
    ((2, 2), (2,))
    >>> check_X_y([[0.0, np.nan], [2.0, 3.0]], [0, 1])
    Traceback (most recent call last):
        ...
    ValueError: X contains 1 NaN value (first in row 0); remove those rows or impute the \
missing values (e.g. with the column mean) before training
    """
    X = check_array(X, name=name_X, allow_nd=allow_nd, finite=finite)
    if y is None:
        return X, None
    y = _as_array(y, name_y)
    if y.ndim == 0 or y.ndim > 2:
        got = "a scalar" if y.ndim == 0 else f"{y.ndim}-D shape {y.shape}"
        raise ValueError(
            f"{name_y} must have shape (n_samples,) or (n_samples, n_outputs), got {got}; "
            f"pass one target (or one row of targets) per row of {name_X}"
        )
    if len(y) != len(X):
        raise ValueError(
            f"{name_X} and {name_y} have different numbers of samples: {name_X} has {len(X)}, "
            f"{name_y} has {len(y)}; pass matching arrays ({name_y}[i] is the target of "
            f"{name_X}[i])"
        )
    if y.size == 0:
        raise ValueError(f"{name_y} is empty (shape {y.shape}); it needs at least one output")
    _check_numeric(y, name_y)
    if finite:
        _check_finite(y, name_y)
    return X, y


def _as_array(a: Any, name: str) -> np.ndarray:
    # np.asarray returns an ndarray unchanged and a memmap as a plain view: no copy, no read.
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} could not be converted to a NumPy array ({exc}); pass an array, or a list "
            f"of rows that all have the same length"
        ) from exc


def _check_numeric(a: np.ndarray, name: str) -> None:
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} must hold numbers (bool, int or float), got dtype {a.dtype}; convert text "
            f"or categorical columns to numbers first (e.g. np.unique(column, "
            f"return_inverse=True)[1] gives integer codes)"
        )


def all_finite(a: np.ndarray, ones: np.ndarray | None = None) -> bool:
    """Whether every value of ``a`` is finite (ints and bools always are).

    For float32 and float64 arrays of one or two dimensions, mostly one BLAS pass: the product
    of ``a`` with a vector of ones sums each row, NaN and inf propagate into the sums, so
    finite sums prove finite values (a quarter of the time of ``min`` and ``max``, and one call
    however small ``a`` is). Sums can also overflow from huge finite values; ``min`` and
    ``max``, which propagate NaN, then decide. (A product with zeros would not overflow, but a
    BLAS may skip the columns of a zero entry, NaN or not.)

    Parameters
    ----------
    a : ndarray
    ones : ndarray of shape (a.shape[-1],), optional
        Ones of ``a``'s dtype to use (a caller that checks often keeps them), else made here.

    Examples
    --------
    >>> all_finite(np.array([[1.0, np.inf]])), all_finite(np.arange(3))
    (False, True)
    """
    if a.dtype.kind != "f" or not a.size:
        return True
    if a.dtype in (np.float32, np.float64) and a.ndim in (1, 2):
        if ones is None:
            ones = np.ones(a.shape[-1], a.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            return finite_by_sum(a, ones)
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def finite_by_sum(a: np.ndarray, ones: np.ndarray) -> bool:
    """:func:`all_finite` for a float32/float64 ``a`` of one or two dimensions, without its
    checks: the sum by one BLAS product with ``ones``, then ``min`` and ``max`` if it is not
    finite. The caller sets ``np.errstate`` (a hot loop does so once, not at every call).

    Examples
    --------
    >>> x = np.array([1.0, np.nan]); finite_by_sum(x, np.ones(2))
    False
    """
    total = np.dot(a, ones)
    if a.ndim == 2:
        total = total.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def _check_finite(a: np.ndarray, name: str) -> None:
    # Ints and bools cannot hold NaN or inf.
    if all_finite(a):
        return
    bad = ~np.isfinite(a)
    n_nan = int(np.count_nonzero(np.isnan(a)))
    n_inf = int(np.count_nonzero(bad)) - n_nan
    first_row = int(np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))[0])
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN value{'s' if n_nan > 1 else ''}")
    if n_inf:
        parts.append(f"{n_inf} infinite value{'s' if n_inf > 1 else ''}")
    raise ValueError(
        f"{name} contains {' and '.join(parts)} (first in row {first_row}); remove those rows "
        f"or impute the missing values (e.g. with the column mean) before training"
    )


def is_memory_mapped(a: Any) -> bool:
    """Whether ``a`` is a memory map or a view of one (``np.asarray`` of a map is a plain view).

    >>> import numpy as np, tempfile
    >>> path = tempfile.mkdtemp() + "/x.npy"; np.save(path, np.zeros((2, 2)))
    >>> m = np.load(path, mmap_mode="r")
    >>> is_memory_mapped(np.asarray(m)), is_memory_mapped(np.zeros(2))
    (True, False)
    """
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = getattr(a, "base", None)
    return False


def check_batch_finite(
    xb: np.ndarray, yb: np.ndarray | None, rows: slice | np.ndarray, *, name_X: str = "X",
    name_y: str = "y",
) -> None:  # fmt: skip
    """Raise ValueError when a batch holds NaN or inf, naming the row of the whole data set.

    For data checked as it is read (a memory-mapped file, too large to scan before training):
    called on each batch before it is used, so that no update is made from a bad value.

    Parameters
    ----------
    xb : ndarray of shape (m, ...)
    yb : ndarray of shape (m, ...) or None
    rows : slice or ndarray of int
        Which rows of the data set the batch holds (``X[rows]`` is ``xb``).
    name_X, name_y : str
        Names for messages.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [np.nan]])
    >>> check_batch_finite(X[[0, 1]], None, np.array([0, 1]))
    >>> try:
    ...     check_batch_finite(X[[1, 2]], None, np.array([1, 2]))
    ... except ValueError as err:
    ...     print(str(err).split(";")[0])
    X holds NaN or inf in row 2 (found when its batch was read, before any update with it)
    """
    for a, name in ((xb, name_X), (yb, name_y)):
        if a is None or _batch_finite(a):
            continue
        j = int(np.flatnonzero(~np.isfinite(a).reshape(len(a), -1).all(axis=1))[0])
        row = (rows.start or 0) + j if isinstance(rows, slice) else int(rows[j])
        raise ValueError(
            f"{name} holds NaN or inf in row {row} (found when its batch was read, before any "
            "update with it); remove those rows or impute the missing values before training"
        )


def _batch_finite(a: np.ndarray) -> bool:
    """:func:`all_finite` for a batch: up to ``BATCH_CHECK_DIRECT`` values by ``np.isfinite``
    directly (a few microseconds, and no BLAS call: a multi-threaded one wakes BLAS's threads
    at every batch, which costs more than the check when the other cores are busy)."""
    if a.dtype.kind != "f" or a.size > BATCH_CHECK_DIRECT:
        return all_finite(a)
    return bool(_all(_isfinite(a), axis=None))


_isfinite, _all = np.isfinite, np.logical_and.reduce
BATCH_CHECK_DIRECT = 1 << 16


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)
