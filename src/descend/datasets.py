"""Built-in data sets: small, real or synthetic, ready for a network.

Arrays in, arrays out: every loader returns ``(X, y)`` with ``X`` a 2-D float array of shape
``(n_samples, n_features)`` (float32 unless ``dtype=np.float64``) and ``y`` int64 class labels
``0 .. n_classes - 1`` for classification, or floats (in the dtype of ``X``) for regression.
Every call returns new arrays, which the caller may modify freely.

Real data (``digits``, ``breast_cancer``, ``diabetes``) comes from the copies bundled with
scikit-learn, read from disk (no network). scikit-learn is imported only when one of these is
called, so ``descend`` itself works without it; install it with ``pip install "descend[datasets]"``.

Synthetic 2-D sets (``moons``, ``circles``, ``spiral``, ``xor``) are generated with NumPy from a
seed (None, an int, or a ``numpy.random.Generator``): the same seed gives identical arrays. Their
classes are balanced (sizes differ by at most one) and the rows come shuffled.

For splitting and scaling, :func:`train_test_split`, :class:`Standardizer` and
:func:`standardize` from :mod:`descend.data` are available here too.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from descend.data import Standardizer, as_generator, standardize, train_test_split

__all__ = [
    "Standardizer",
    "available",
    "breast_cancer",
    "circles",
    "diabetes",
    "digits",
    "moons",
    "spiral",
    "standardize",
    "train_test_split",
    "xor",
]

Seed = int | np.random.Generator | None


# --- real data, bundled with scikit-learn ------------------------------------------------------


def digits(
    classes: Iterable[int] | None = None, *, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Handwritten digits: 1797 images of 8x8 pixels, flattened, in 10 classes.

    Parameters
    ----------
    classes : sequence of int, optional
        Keep only these digits (each 0-9, no repeats) and relabel them ``0 .. k-1`` in the order
        given: ``classes=(3, 8)`` gives label 0 for a 3 and label 1 for an 8. None keeps all
        ten digits with their own value as label.
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (n_samples, 64)
        Pixel intensities scaled from 0..16 to [0, 1]; row-major 8x8 images
        (``X[i].reshape(8, 8)``).
    y : ndarray of shape (n_samples,), int64
        Labels ``0 .. k-1``.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    TypeError
        If `classes` is not a sequence of ints, or `dtype` is not a dtype.
    ValueError
        If `classes` is empty, repeats a digit or holds one outside 0-9, or `dtype` is not
        float32/float64.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import digits
    >>> X, y = digits()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 64), dtype('float32'), dtype('int64'))
    >>> float(X.min()), float(X.max())
    (0.0, 1.0)
    >>> X, y = digits(classes=(3, 8))
    >>> np.unique(y).tolist()
    [0, 1]
    """
    dtype = _check_dtype(dtype)
    kept = _check_classes(classes)
    X_raw, y_raw = _load_bundled("digits")
    if kept is None:
        X, y = X_raw, y_raw
    else:
        lookup = np.full(10, -1, dtype=np.int64)
        lookup[list(kept)] = np.arange(len(kept))
        mask = lookup[y_raw] >= 0
        X, y = X_raw[mask], lookup[y_raw[mask]]
    # Division makes a new array, so the cached original is never handed out.
    return (X / 16.0).astype(dtype, copy=False), y.astype(np.int64)


def breast_cancer(*, dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer Wisconsin (diagnostic): 569 tumours, 30 features, binary labels.

    Parameters
    ----------
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (569, 30)
        Measurements of the cell nuclei, unscaled (they span several orders of magnitude:
        standardise them before training).
    y : ndarray of shape (569,), int64
        0 = malignant (212 samples), 1 = benign (357 samples), as in scikit-learn.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import breast_cancer
    >>> X, y = breast_cancer()
    >>> X.shape, X.dtype, np.bincount(y).tolist()
    ((569, 30), dtype('float32'), [212, 357])
    """
    dtype = _check_dtype(dtype)
    X, y = _load_bundled("breast_cancer")
    return X.astype(dtype), y.astype(np.int64)


def diabetes(*, dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Diabetes progression: 442 patients, 10 features, a continuous target (regression).

    Parameters
    ----------
    dtype : float32 or float64, default=np.float32
        Dtype of `X` and `y`.

    Returns
    -------
    X : ndarray of shape (442, 10)
        Age, sex, body mass index, blood pressure and six blood serum measurements, each
        already centred and scaled by scikit-learn (column norms of 1).
    y : ndarray of shape (442,)
        Disease progression one year after baseline, between 25 and 346 (not scaled).

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import diabetes
    >>> X, y = diabetes(dtype=np.float64)
    >>> X.shape, y.shape, y.dtype
    ((442, 10), (442,), dtype('float64'))
    """
    dtype = _check_dtype(dtype)
    X, y = _load_bundled("diabetes")
    return X.astype(dtype), y.astype(dtype)


@functools.cache
def _load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    # Cached because available() and repeated calls would otherwise re-read the files; the
    # arrays are made read-only so that no code path can alter the cache.
    try:
        from sklearn import datasets as sk_datasets
    except ImportError as exc:
        raise ImportError(
            f"descend.datasets.{name}() reads the copy of the data bundled with scikit-learn, "
            f'which is not installed; install it with: pip install "descend[datasets]"'
        ) from exc
    loader = {
        "digits": sk_datasets.load_digits,
        "breast_cancer": sk_datasets.load_breast_cancer,
        "diabetes": sk_datasets.load_diabetes,
    }[name]
    X, y = loader(return_X_y=True)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


# --- synthetic 2-D data ---------------------------------------------------------------------


def moons(
    n_samples: int = 200, *, noise: float = 0.1, seed: Seed = None, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: not separable by a line, easy for a small network.

    Class 0 is the upper half circle of radius 1 around (0, 0); class 1 the lower half circle
    around (1, 0.5). Points are evenly spaced along each arc, then Gaussian noise is added.

    Parameters
    ----------
    n_samples : int, default=200
        Total number of points (at least 2), split evenly between the two classes.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to each coordinate.
    seed : None, int or numpy.random.Generator, default=None
        Seed for the noise and the row order.
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64
        Labels 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import moons
    >>> X, y = moons(100, seed=0)
    >>> X.shape, X.dtype, np.bincount(y).tolist()
    ((100, 2), dtype('float32'), [50, 50])
    """
    n_samples = _check_n_samples(n_samples, 2)
    noise = _check_noise(noise)
    dtype = _check_dtype(dtype)
    rng = as_generator(seed)
    sizes = _balanced(n_samples, 2)
    upper = np.linspace(0.0, np.pi, sizes[0])
    lower = np.linspace(0.0, np.pi, sizes[1])
    X = np.concatenate(
        [
            np.column_stack([np.cos(upper), np.sin(upper)]),
            np.column_stack([1.0 - np.cos(lower), 0.5 - np.sin(lower)]),
        ]
    )
    return _finish(X, _labels(sizes), noise, rng, dtype)


def circles(
    n_samples: int = 200,
    *,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: Seed = None,
    dtype: DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """A small circle inside a large one: separable only by a curved boundary.

    Class 0 lies on the circle of radius 1, class 1 on the circle of radius `factor`, both
    around the origin, at evenly spaced angles; then Gaussian noise is added.

    Parameters
    ----------
    n_samples : int, default=200
        Total number of points (at least 2), split evenly between the two circles.
    noise : float, default=0.05
        Standard deviation of the Gaussian noise added to each coordinate.
    factor : float, default=0.5
        Radius of the inner circle relative to the outer one, in (0, 1).
    seed : None, int or numpy.random.Generator, default=None
        Seed for the noise and the row order.
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64
        0 = outer circle, 1 = inner circle.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import circles
    >>> X, y = circles(100, noise=0.0, factor=0.5, seed=0)
    >>> radius = np.linalg.norm(X, axis=1)
    >>> float(radius[y == 0].mean().round(3)), float(radius[y == 1].mean().round(3))
    (1.0, 0.5)
    """
    n_samples = _check_n_samples(n_samples, 2)
    noise = _check_noise(noise)
    if isinstance(factor, bool | np.bool_) or not isinstance(factor, numbers.Real):
        raise TypeError(f"factor must be a float in (0, 1), got {type(factor).__name__}")
    if not 0.0 < factor < 1.0:
        raise ValueError(
            f"factor={factor} must be in (0, 1): it is the inner circle's radius relative to the "
            f"outer one's, e.g. factor=0.5"
        )
    dtype = _check_dtype(dtype)
    rng = as_generator(seed)
    sizes = _balanced(n_samples, 2)
    outer = np.linspace(0.0, 2.0 * np.pi, sizes[0], endpoint=False)
    inner = np.linspace(0.0, 2.0 * np.pi, sizes[1], endpoint=False)
    X = np.concatenate(
        [
            np.column_stack([np.cos(outer), np.sin(outer)]),
            factor * np.column_stack([np.cos(inner), np.sin(inner)]),
        ]
    )
    return _finish(X, _labels(sizes), noise, rng, dtype)


def spiral(
    n_samples: int = 300,
    *,
    n_classes: int = 3,
    noise: float = 0.2,
    seed: Seed = None,
    dtype: DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: the classic test for a non-linear classifier.

    Arm ``j`` starts at the origin and winds outwards: its points have radius ``r`` evenly
    spaced in [0, 1] and angle ``2 pi j / n_classes + 4 r`` plus Gaussian noise, so every arm
    turns through 4 radians and the arms are evenly spaced around the circle.

    Parameters
    ----------
    n_samples : int, default=300
        Total number of points (at least `n_classes`), split evenly between the arms.
    n_classes : int, default=3
        Number of arms (classes), at least 2.
    noise : float, default=0.2
        Standard deviation of the Gaussian noise added to each point's angle, in radians.
    seed : None, int or numpy.random.Generator, default=None
        Seed for the noise and the row order.
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        Points inside the unit disc.
    y : ndarray of shape (n_samples,), int64
        Arm index ``0 .. n_classes - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import spiral
    >>> X, y = spiral(300, n_classes=3, seed=0)
    >>> X.shape, np.bincount(y).tolist()
    ((300, 2), [100, 100, 100])
    """
    if isinstance(n_classes, bool | np.bool_) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"n_classes must be an int >= 2, got {type(n_classes).__name__}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}; the default is 3")
    n_classes = int(n_classes)
    n_samples = _check_n_samples(n_samples, n_classes)
    noise = _check_noise(noise)
    dtype = _check_dtype(dtype)
    rng = as_generator(seed)
    sizes = _balanced(n_samples, n_classes)
    radius = np.concatenate([np.linspace(0.0, 1.0, size) for size in sizes])
    y = _labels(sizes)
    angle = 2.0 * np.pi * y / n_classes + 4.0 * radius + noise * rng.standard_normal(n_samples)
    X = radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return _finish(X, y, 0.0, rng, dtype)


def xor(
    n_samples: int = 200, *, noise: float = 0.1, seed: Seed = None, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: four Gaussian blobs at (+-1, +-1); no line separates the two classes.

    The label is the exclusive or of the signs of the blob's centre: 0 for (1, 1) and (-1, -1),
    1 for (1, -1) and (-1, 1). With large noise a point may cross into a neighbouring quadrant;
    its label is still that of its blob.

    Parameters
    ----------
    n_samples : int, default=200
        Total number of points (at least 4), split evenly between the four blobs.
    noise : float, default=0.1
        Standard deviation of each blob, per coordinate.
    seed : None, int or numpy.random.Generator, default=None
        Seed for the noise and the row order.
    dtype : float32 or float64, default=np.float32
        Dtype of `X`.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64
        Labels 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.datasets import xor
    >>> X, y = xor(200, noise=0.1, seed=0)
    >>> bool(((X[:, 0] * X[:, 1] < 0) == (y == 1)).all())
    True
    """
    n_samples = _check_n_samples(n_samples, 4)
    noise = _check_noise(noise)
    dtype = _check_dtype(dtype)
    rng = as_generator(seed)
    # Order chosen so that, when n_samples is not a multiple of 4, the extra points alternate
    # between the classes and the classes stay balanced.
    centres = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])
    sizes = _balanced(n_samples, 4)
    blob = _labels(sizes)
    return _finish(centres[blob], blob % 2, noise, rng, dtype)


# --- catalogue ----------------------------------------------------------------------------------


def available() -> list[dict[str, Any]]:
    """List the built-in data sets with their sizes.

    Returns
    -------
    list of dict
        One dict per data set, with keys ``name`` (the loader's name in this module), ``task``
        (``"classification"`` or ``"regression"``), ``n_samples``, ``n_features``,
        ``n_classes`` (None for regression) and ``description`` (one line). Synthetic sets are
        described at their default arguments. The scikit-learn sets are listed only when
        scikit-learn is installed. The lists are new on every call.

    Examples
    --------
    >>> from descend.datasets import available
    >>> [d["name"] for d in available()]
    ['digits', 'breast_cancer', 'diabetes', 'moons', 'circles', 'spiral', 'xor']
    >>> next(d for d in available() if d["name"] == "diabetes")["n_classes"] is None
    True
    """
    return [dict(entry) for entry in _catalog()]


_DESCRIPTIONS = {
    "digits": "8x8 images of handwritten digits, pixels in [0, 1]",
    "breast_cancer": "breast cancer Wisconsin: malignant (0) or benign (1) from 30 measurements",
    "diabetes": "diabetes progression after one year from 10 baseline measurements",
    "moons": "two interleaving half circles (synthetic, 2-D)",
    "circles": "a small circle inside a large one (synthetic, 2-D)",
    "spiral": "interleaved spiral arms, one per class (synthetic, 2-D)",
    "xor": "four Gaussian blobs labelled by the xor of their signs (synthetic, 2-D)",
}


@functools.lru_cache(maxsize=1)
def _catalog() -> tuple[dict[str, Any], ...]:
    # Synthetic sets are generated at their defaults (seed=0 only to skip drawing OS entropy;
    # shapes do not depend on the seed).
    calls = [
        (digits, {}),
        (breast_cancer, {}),
        (diabetes, {}),
        (moons, {"seed": 0}),
        (circles, {"seed": 0}),
        (spiral, {"seed": 0}),
        (xor, {"seed": 0}),
    ]
    entries = []
    for loader, kwargs in calls:
        name = loader.__name__
        try:
            X, y = loader(**kwargs)
        except ImportError:
            continue
        regression = y.dtype.kind == "f"
        entries.append(
            {
                "name": name,
                "task": "regression" if regression else "classification",
                "n_samples": X.shape[0],
                "n_features": X.shape[1],
                "n_classes": None if regression else int(np.unique(y).size),
                "description": _DESCRIPTIONS[name],
            }
        )
    return tuple(entries)


# --- helpers -----------------------------------------------------------------------------------


def _check_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from exc
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(
            f"dtype must be np.float32 or np.float64, got {resolved}; float32 is the default "
            f"and fastest, float64 is for gradient checks"
        )
    return resolved


def _check_classes(classes: Iterable[int] | None) -> tuple[int, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, numbers.Integral | str) or not isinstance(classes, Iterable):
        raise TypeError(
            f"classes must be a sequence of digits 0-9, e.g. classes=(0, 1), got "
            f"{type(classes).__name__} {classes!r}"
        )
    kept = tuple(classes)
    for c in kept:
        if isinstance(c, bool | np.bool_) or not isinstance(c, numbers.Integral):
            raise TypeError(
                f"classes must hold ints (digits 0-9), got {type(c).__name__} {c!r}; "
                f"e.g. classes=(0, 1)"
            )
    if not kept:
        raise ValueError("classes is empty; pass at least one digit, e.g. classes=(0, 1)")
    outside = [int(c) for c in kept if not 0 <= c <= 9]
    if outside:
        raise ValueError(f"classes must be digits 0-9, got {outside}")
    repeated = sorted({int(c) for c in kept if kept.count(c) > 1})
    if repeated:
        raise ValueError(
            f"classes repeats {repeated}; list each digit once (its position is its new label)"
        )
    return tuple(int(c) for c in kept)


def _check_n_samples(n_samples: int, minimum: int) -> int:
    if isinstance(n_samples, bool | np.bool_) or not isinstance(n_samples, numbers.Integral):
        raise TypeError(f"n_samples must be an int, got {type(n_samples).__name__} {n_samples!r}")
    if n_samples < minimum:
        raise ValueError(
            f"n_samples must be at least {minimum} (one per class or blob), got {n_samples}"
        )
    return int(n_samples)


def _check_noise(noise: float) -> float:
    if isinstance(noise, bool | np.bool_) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise must be a float >= 0, got {type(noise).__name__} {noise!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite float >= 0 (a standard deviation), got {noise}")
    return float(noise)


def _balanced(n_samples: int, n_groups: int) -> list[int]:
    # The first n_samples % n_groups groups get one extra point.
    base, extra = divmod(n_samples, n_groups)
    return [base + (g < extra) for g in range(n_groups)]


def _labels(sizes: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def _finish(
    X: np.ndarray, y: np.ndarray, noise: float, rng: np.random.Generator, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    # Noise first, then one permutation: the draws, and hence the output, depend only on the seed.
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    order = rng.permutation(len(y))
    return X[order].astype(dtype, copy=False), y[order].astype(np.int64, copy=False)
