"""Hold-out splits: keep some samples away from training to measure generalisation."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from descend.data.validation import _check_bool, as_generator, check_X_y

__all__ = ["train_test_split"]


def train_test_split(
    X: ArrayLike,
    y: ArrayLike | None,
    test_size: float | int = 0.25,
    *,
    stratify: bool = False,
    seed: int | np.random.Generator | None = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Split samples into a training set and a test set.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs (any shape ``(n_samples, ...)`` with at least two dimensions).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        Targets, split with the same rows as `X`. With None, ``y_train`` and ``y_test`` are None.
    test_size : float or int, default=0.25
        A float in (0, 1) is the fraction of samples to hold out, rounded up to a whole sample;
        an int is the number of test samples. Both sides must keep at least one sample.
    stratify : bool, default=False
        Keep each class's share of the samples in both parts: class ``c`` gets
        ``count(c) * n_test / n_samples`` test samples, rounded down or up (so within one sample
        of its exact share) such that the counts add up to ``n_test``. Classes are the values of
        a 1-D `y`, or the distinct rows of a 2-D `y` (one-hot labels). Every class needs at
        least two samples.
    seed : None, int or numpy.random.Generator, default=None
        Source of the random permutation; the same seed gives the same split.
    shuffle : bool, default=True
        Shuffle before splitting. With ``shuffle=False`` the last samples are held out (the last
        ones of each class when stratifying), rows keep their order, and the parts are views
        of the inputs when not stratifying.

    Returns
    -------
    X_train : ndarray of shape (n_samples - n_test, n_features)
    X_test : ndarray of shape (n_test, n_features)
    y_train : ndarray of shape (n_samples - n_test,) or (n_samples - n_test, n_outputs), or None
    y_test : ndarray of shape (n_test,) or (n_test, n_outputs), or None

    Raises
    ------
    TypeError
        If `test_size` is not a float or an int, or `stratify`/`shuffle` is not a bool.
    ValueError
        If `test_size` is out of range, `X` and `y` do not match, `X` has fewer than two
        samples, or `stratify` is set without `y` or with a class of fewer than two samples.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import train_test_split
    >>> X = np.arange(40.0).reshape(20, 2)
    >>> y = np.array([0] * 12 + [1] * 8)
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=True, seed=0)
    >>> X_tr.shape, X_te.shape
    ((15, 2), (5, 2))
    >>> np.bincount(y_te).tolist()
    [3, 2]
    """
    X, y = check_X_y(X, y, allow_nd=True, finite=False)
    stratify = _check_bool(stratify, "stratify")
    shuffle = _check_bool(shuffle, "shuffle")
    n = len(X)
    if n < 2:
        raise ValueError(f"X has {n} sample; splitting needs at least 2 (one for each part)")
    n_test = _resolve_test_size(test_size, n)
    rng = as_generator(seed)

    if stratify:
        if y is None:
            raise ValueError("stratify=True needs the class labels y; pass y or stratify=False")
        test_idx, train_idx = _stratified_indices(y, n_test, rng, shuffle)
    elif shuffle:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    else:
        # Slices: the parts are views, nothing is copied.
        test_idx, train_idx = slice(n - n_test, n), slice(0, n - n_test)

    if y is None:
        return X[train_idx], X[test_idx], None, None
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def _resolve_test_size(test_size: object, n: int) -> int:
    if isinstance(test_size, bool | np.bool_):
        raise TypeError(f"test_size must be a float in (0, 1) or an int, got bool {test_size}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
        if not 1 <= n_test <= n - 1:
            raise ValueError(
                f"test_size={n_test} must be between 1 and {n - 1} (X has {n} samples and both "
                f"parts need at least one); pass a count in that range or a fraction in (0, 1)"
            )
        return n_test
    if isinstance(test_size, numbers.Real):
        fraction = float(test_size)
        if not 0.0 < fraction < 1.0:
            raise ValueError(
                f"test_size={fraction} as a float is the fraction of samples to hold out and "
                f"must be in (0, 1), e.g. 0.25; pass an int to give a number of samples"
            )
        # round() first so that 0.7 * 10 = 7.000000000000001 does not become 8.
        n_test = math.ceil(round(fraction * n, 9))
        if n_test > n - 1:
            raise ValueError(
                f"test_size={fraction} of {n} samples leaves no training samples; use a smaller "
                f"test_size"
            )
        return n_test
    raise TypeError(
        f"test_size must be a float in (0, 1) or an int, got {type(test_size).__name__} "
        f"{test_size!r}"
    )


def _stratified_indices(
    y: np.ndarray, n_test: int, rng: np.random.Generator, shuffle: bool
) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    classes, codes = np.unique(y, axis=0 if y.ndim == 2 else None, return_inverse=True)
    codes = codes.reshape(-1)
    counts = np.bincount(codes, minlength=len(classes))
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))]
        raise ValueError(
            f"stratify=True needs at least 2 samples of every class in y; class {rare} has "
            f"{counts.min()}; remove that class or use stratify=False"
        )
    # Largest-remainder rounding in integers: floor every class's exact share, then give the
    # samples still missing to the classes with the largest remainders.
    share = counts * n_test
    per_class = share // n
    missing = n_test - int(per_class.sum())
    per_class[np.argsort(-(share % n), kind="stable")[:missing]] += 1

    # Stable sort groups the rows by class and keeps their original order inside a class.
    by_class = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)))
    test_parts, train_parts = [], []
    for c in range(len(classes)):
        rows = by_class[starts[c] : starts[c + 1]]
        if shuffle:
            rows = rng.permutation(rows)
        cut = len(rows) - per_class[c]
        train_parts.append(rows[:cut])
        test_parts.append(rows[cut:])
    test_idx = np.concatenate(test_parts)
    train_idx = np.concatenate(train_parts)
    if shuffle:
        # Interleave the classes so that the parts are not sorted by label.
        return rng.permutation(test_idx), rng.permutation(train_idx)
    return np.sort(test_idx), np.sort(train_idx)
