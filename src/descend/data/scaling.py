"""Standardisation: centre each feature on 0 and scale it to unit standard deviation.

Gradient descent converges faster when features share a scale: otherwise the cost surface is a
long narrow valley and one learning rate is too large for one direction and too small for
another. The statistics are learned on the training data only and reused for validation and
test data, so that no information from those leaks into training.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from descend.data.validation import check_array

__all__ = ["NotFittedError", "Standardizer", "standardize"]


class NotFittedError(ValueError, AttributeError):
    """Raised when a transformer is used before ``fit``.

    Subclasses both ``ValueError`` and ``AttributeError`` (as scikit-learn's does), so
    ``hasattr``-style checks and ``except ValueError`` both work.
    """


class Standardizer:
    """Rescale each feature to mean 0 and standard deviation 1: ``(X - mean_) / scale_``.

    Constructing stores nothing but the object; :meth:`fit` learns the per-feature statistics.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Mean of each feature in the training data (float64).
    scale_ : ndarray of shape (n_features,)
        Standard deviation of each feature (population, ``ddof=0``; float64). A constant feature
        gets 1 instead of 0, so it becomes exactly 0 after the transform rather than NaN.
    n_features_in_ : int
        Number of features seen in :meth:`fit`; later inputs must have the same number.

    Notes
    -----
    Float inputs keep their dtype (float32 stays float32); bool and int inputs give float64.
    The statistics are accumulated in float64 whatever the input dtype, on each column divided
    by its largest absolute value: values up to the largest float64 (1.8e308) give finite
    statistics, where squaring them would overflow above about 1e154.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import Standardizer
    >>> X_train = np.array([[1.0, 10.0], [3.0, 10.0]])
    >>> scaler = Standardizer().fit(X_train)
    >>> scaler.mean_.tolist(), scaler.scale_.tolist()
    ([2.0, 10.0], [1.0, 1.0])
    >>> scaler.transform([[5.0, 10.0]]).tolist()
    [[3.0, 0.0]]
    >>> scaler.inverse_transform([[3.0, 0.0]]).tolist()
    [[5.0, 10.0]]
    """

    def fit(self, X: ArrayLike, y: object = None) -> Standardizer:
        """Learn each feature's mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : ignored
            Accepted so that ``fit(X, y)`` works as in scikit-learn.

        Returns
        -------
        self : Standardizer
            The fitted object, so that ``Standardizer().fit(X)`` can be chained.

        Examples
        --------
        >>> from descend.data import Standardizer
        >>> Standardizer().fit([[0.0], [2.0], [4.0]]).mean_.tolist()
        [2.0]
        """
        X = check_array(X)
        mean, scale = _mean_and_std(X)
        # Exact test for constant columns: their computed std can be a rounding error like 1e-17
        # rather than 0, and dividing by it would blow rounding noise up to order one.
        constant = X.max(axis=0) == X.min(axis=0)
        mean[constant] = X[0, constant]
        scale[constant] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Standardise with the statistics learned in :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_std : ndarray of shape (n_samples, n_features)
            ``(X - mean_) / scale_``, a new array.

        Examples
        --------
        >>> from descend.data import Standardizer
        >>> Standardizer().fit([[0.0], [2.0]]).transform([[1.0], [4.0]]).tolist()
        [[0.0], [3.0]]
        """
        return self._transform(X, "X")

    def fit_transform(self, X: ArrayLike, y: object = None) -> np.ndarray:
        """Fit on `X`, then standardise it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        X_std : ndarray of shape (n_samples, n_features)
            Each column has mean 0 and standard deviation 1 (constant columns are all 0).

        Examples
        --------
        >>> from descend.data import Standardizer
        >>> Standardizer().fit_transform([[1.0], [3.0]]).tolist()
        [[-1.0], [1.0]]
        """
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Undo the standardisation: ``X_std * scale_ + mean_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised data.

        Returns
        -------
        X_orig : ndarray of shape (n_samples, n_features)
            Data on the original scale, a new array.

        Examples
        --------
        >>> from descend.data import Standardizer
        >>> scaler = Standardizer().fit([[1.0], [3.0]])
        >>> scaler.inverse_transform([[-1.0], [0.5]]).tolist()
        [[1.0], [2.5]]
        """
        X, mean, scale = self._prepare(X, "X")
        out = X * scale
        out += mean
        return out

    def _transform(self, X: ArrayLike, name: str) -> np.ndarray:
        X, mean, scale = self._prepare(X, name)
        out = X - mean
        out /= scale
        return out

    def _prepare(self, X: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not hasattr(self, "mean_"):
            raise NotFittedError(
                "this Standardizer is not fitted yet; call fit(X_train) (or fit_transform) "
                "before transform or inverse_transform"
            )
        X = check_array(X, name=name)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but this Standardizer was fitted with "
                f"n_features={self.n_features_in_}; pass data with the same columns as in fit"
            )
        # Float data keeps its dtype (float32 stays float32); ints and bools become float64.
        dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
        return X, self.mean_.astype(dtype, copy=False), self.scale_.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return "Standardizer()"


def _mean_and_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) standard deviation in float64, without overflow.

    Each column is divided by a power of two near its largest absolute value (exact: no digit
    is lost), its statistics are computed on values in [-2, 2], then scaled back: the sum of
    squares cannot overflow. A column whose values reach half the largest float64 is refused
    (``X - mean`` could overflow when it is transformed).
    """
    peak = np.abs(X).max(axis=0).astype(np.float64)
    # The power of two at or below the peak (1 for an all-zero column): scaled values in [-2, 2].
    unit = np.ldexp(0.5, np.frexp(np.where(peak > 0, peak, 1.0))[1])
    scaled = X / unit
    mean = scaled.mean(axis=0, dtype=np.float64) * unit
    std = scaled.std(axis=0, dtype=np.float64) * unit
    with np.errstate(over="ignore"):
        reach = peak + np.abs(mean)
    if not np.isfinite(reach).all():
        column = int(np.flatnonzero(~np.isfinite(reach))[0])
        raise ValueError(
            f"X's column {column} holds values too large to standardise in float64 (up to "
            f"{peak[column]:.3g}; X - mean would overflow); rescale that feature first, e.g. "
            "divide it by 1e300"
        )
    return mean, std


def standardize(X_train: ArrayLike, *others: ArrayLike) -> tuple[np.ndarray, ...]:
    """Standardise a training set and apply the same statistics to other sets.

    The mean and standard deviation come from `X_train` only, so validation and test data are
    scaled as the model will see them, without leaking their statistics into training.

    Parameters
    ----------
    X_train : array-like of shape (n_samples, n_features)
        Data the statistics are learned from.
    *others : array-like of shape (n_samples_i, n_features)
        Further sets (validation, test) to transform with the same statistics.

    Returns
    -------
    tuple of ndarray
        ``(X_train_std, *others_std)``, always a tuple, also with no `others`: unpack one
        array with ``(X_std,) = standardize(X)``. Use :class:`Standardizer` to keep the
        statistics (e.g. to transform new data later or undo the transform).

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import standardize
    >>> X_train = np.array([[0.0], [2.0], [4.0]])
    >>> X_test = np.array([[6.0]])
    >>> X_train_std, X_test_std = standardize(X_train, X_test)
    >>> X_test_std.round(4).tolist()
    [[2.4495]]
    """
    scaler = Standardizer().fit(X_train)
    transformed = [scaler._transform(X_train, "X_train")]
    transformed += [scaler._transform(X, f"others[{i}]") for i, X in enumerate(others)]
    return tuple(transformed)
