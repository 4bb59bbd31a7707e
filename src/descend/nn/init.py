"""Weight initializers: He, Glorot (Xavier), normal and zeros.

Each takes ``(shape, rng, dtype)`` with ``shape = (fan_in, fan_out)`` and returns an array.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from descend._names import resolve


def he_normal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2 / fan_in), the scale that keeps ReLU activations' variance.

    Examples
    --------
    >>> import numpy as np
    >>> w = he_normal((1000, 50), np.random.default_rng(0))
    >>> bool(abs(w.std() - np.sqrt(2 / 1000)) < 0.002)
    True
    """
    return (rng.standard_normal(shape) * np.sqrt(2.0 / shape[0])).astype(dtype)


def he_uniform(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """He uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)).

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.abs(he_uniform((6, 3), np.random.default_rng(0))).max() <= 1.0)
    True
    """
    limit = np.sqrt(6.0 / shape[0])
    return rng.uniform(-limit, limit, shape).astype(dtype)


def glorot_uniform(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot (Xavier) uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.abs(glorot_uniform((3, 3), np.random.default_rng(0))).max() <= 1.0)
    True
    """
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot (Xavier) normal: N(0, 2 / (fan_in + fan_out)).

    Examples
    --------
    >>> import numpy as np
    >>> glorot_normal((4, 2), np.random.default_rng(0)).shape
    (4, 2)
    """
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (shape[0] + shape[1]))).astype(dtype)


def normal(shape, rng: np.random.Generator, dtype=np.float32, std: float = 0.01) -> np.ndarray:
    """N(0, std^2), std 0.01 by default.

    Examples
    --------
    >>> import numpy as np
    >>> float(np.abs(normal((2, 2), np.random.default_rng(0))).max()) < 0.1
    True
    """
    return (rng.standard_normal(shape) * std).astype(dtype)


def zeros(shape, rng: np.random.Generator | None = None, dtype=np.float32) -> np.ndarray:
    """All zeros (a bad choice for weights: every unit stays identical; fine for biases).

    Examples
    --------
    >>> zeros((2, 1))
    array([[0.],
           [0.]], dtype=float32)
    """
    return np.zeros(shape, dtype=dtype)


INITIALIZERS: dict[str, Callable] = {
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot": glorot_uniform,
    "xavier": glorot_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "normal": normal,
    "zeros": zeros,
}


def get_initializer(init: str | Callable) -> Callable:
    """An initializer by name, or the callable itself.

    Examples
    --------
    >>> get_initializer("xavier").__name__
    'glorot_uniform'
    """
    return resolve(init, INITIALIZERS, argument="init", what="initializer",
                   callable_hint="a callable (shape, rng, dtype) -> array")  # fmt: skip
