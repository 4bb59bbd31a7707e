"""The backend: the one door to everything specific to NumPy's BLAS, threads and memory layout.

The plan executor (:mod:`descend.compile.replay`), the trainer and the loop call only the names
below; none of them imports ``ctypes`` or manages threads. Another array library could run the
same plans by providing a module with these names:

* :func:`axpy`, :class:`Axpy`: ``y <- y + alpha x`` in place (the update of ``GD``);
* :func:`gemm_update`, :class:`GemmUpdate`: ``c <- c + alpha a^T b`` in place, without ``a^T b``
  written out (plain gradient descent folded into the weight-gradient product);
* :func:`blas_threads`, :func:`single_thread_if_small`, :func:`release_idle_workers`: how many
  threads the matrix products use;
* :func:`map_pieces`, :func:`n_workers`, :func:`split_rows`: independent pieces of one
  computation (row blocks, prediction chunks) on the cores, in a fixed assignment;
* :func:`transposed_product_faster`: which layout of ``dC/dx = g W^T`` the BLAS computes faster;
* :func:`finite`, :func:`squared_norm`: whether every value of an array is finite, in one pass
  in the common case (the sum of the squares, one BLAS ``dot``).

The two modules behind the door are :mod:`~descend.compile.backend.blas` (NumPy's own OpenBLAS
through ``ctypes``, with a plain NumPy fallback) and :mod:`~descend.compile.backend.threads`
(the thread pool).
"""

from __future__ import annotations

from math import isfinite

import numpy as np

from descend.compile.backend.blas import (
    Axpy,
    GemmUpdate,
    axpy,
    blas_available,
    blas_threads,
    release_idle_workers,
    single_thread_if_small,
    squared_norm,
    transposed_product_faster,
)
from descend.compile.backend.threads import map_pieces, n_workers, split_rows

__all__ = [
    "Axpy", "GemmUpdate", "axpy", "blas_available", "blas_threads", "finite", "gemm_update",
    "map_pieces", "n_workers", "release_idle_workers", "single_thread_if_small", "split_rows",
    "squared_norm", "transposed_product_faster",
]  # fmt: skip


def gemm_update(alpha: float, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``c <- c + alpha * a^T b`` in place, for ``a`` of shape (n, p), ``b`` (n, q), ``c`` (p, q).

    One BLAS call where possible (see :class:`GemmUpdate`); equal to ``c += alpha * (a.T @ b)``
    up to rounding.

    Examples
    --------
    >>> c = np.zeros((2, 2)); gemm_update(-1.0, np.ones((3, 2)), np.ones((3, 2)), c); c
    array([[-3., -3.],
           [-3., -3.]])
    """
    GemmUpdate(c)(alpha, a, b)


def finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite: the sum of the squares is finite only then (NaN
    and inf propagate into it, and no square is negative to cancel an inf), so one pass proves
    the common case; ``min`` and ``max`` decide when it is not finite (it may overflow from
    large finite values).

    Examples
    --------
    >>> finite(np.array([1.0, 2.0])), finite(np.array([[1.0, np.nan]])), finite(np.array([1e200]))
    (True, False, True)
    """
    if a.dtype.kind != "f" or a.size == 0:
        return True
    flat = a.reshape(-1) if a.flags.c_contiguous else a.ravel()
    return isfinite(squared_norm(flat)) or bool(np.isfinite(flat.min()) and np.isfinite(flat.max()))
