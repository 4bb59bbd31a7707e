"""Direct calls into the BLAS that NumPy itself ships, for the few updates NumPy cannot fuse.

NumPy has no single operation for ``y <- y + alpha x`` (BLAS ``axpy``): ``y -= lr * g`` reads
and writes memory twice and runs on one core. On the weight matrices of a network that pass is
memory-bound, so the update of a 784 x 256 weight takes several times longer than it must.
This module finds NumPy's own OpenBLAS (the ``scipy-openblas`` library of NumPy's wheels) with
``ctypes`` and calls its ``axpy``, which does it in one multi-threaded pass. When that library
cannot be found (another NumPy build), or ``DESCEND_NO_BLAS=1`` is set, every function falls
back to plain NumPy with the same result up to rounding (BLAS may use a fused multiply-add).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["axpy", "blas_available", "single_thread_if_small"]


def _library():
    """NumPy's own OpenBLAS and the integer type of its interface, or (None, None)."""
    if os.environ.get("DESCEND_NO_BLAS"):
        return None, None
    root = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(root, "..", "numpy.libs", "*openblas*"))
    candidates += glob.glob(os.path.join(root, ".dylibs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix, int_type in (("64_", ctypes.c_int64), ("", ctypes.c_int)):
            if hasattr(lib, f"scipy_cblas_saxpy{suffix}"):
                return lib, (suffix, int_type)
    return None, None


def _load():
    lib, found = _LIB
    if lib is None:
        return None
    suffix, int_type = found
    s, d = getattr(lib, f"scipy_cblas_saxpy{suffix}"), getattr(lib, f"scipy_cblas_daxpy{suffix}")
    s.argtypes = [int_type, ctypes.c_float, ctypes.c_void_p, int_type, ctypes.c_void_p, int_type]
    d.argtypes = [int_type, ctypes.c_double, ctypes.c_void_p, int_type, ctypes.c_void_p, int_type]
    s.restype = d.restype = None
    return {np.dtype(np.float32): s, np.dtype(np.float64): d}


def _load_threads():
    lib, found = _LIB
    if lib is None:
        return None
    suffix = found[0]
    get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
    put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
    if get is None or put is None:
        return None
    get.restype, get.argtypes = ctypes.c_int, []
    put.restype, put.argtypes = None, [ctypes.c_int]
    return get, put


_LIB = _library()
_AXPY = _load()
_THREADS = _load_threads()

# Below this many FLOPs a matrix product is faster on one core than split between threads, and
# splitting it is far slower when the other core is busy (measured on 2 cores: a 540 x 64 x 32
# product took 0.1 ms alone and 15 ms beside another process).
SMALL_MATMUL_FLOPS = 1.5e6


def blas_available() -> bool:
    """Whether the BLAS ``axpy`` was found (else the NumPy fallback is used).

    Examples
    --------
    >>> isinstance(blas_available(), bool)
    True
    """
    return _AXPY is not None


def axpy(alpha: float, x: np.ndarray, y: np.ndarray, tmp: np.ndarray | None = None) -> None:
    """``y <- y + alpha * x``, in place, in one pass where the BLAS allows it.

    Parameters
    ----------
    alpha : float
    x : ndarray
        Read only.
    y : ndarray of the shape of ``x``
        Updated in place.
    tmp : ndarray of the shape of ``y``, optional
        Scratch space for the NumPy fallback (allocated when missing).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1.0, 2.0]); axpy(-0.5, np.array([2.0, 2.0]), y); y
    array([0., 1.])
    """
    fn = _AXPY.get(y.dtype) if _AXPY is not None else None
    if (
        fn is not None
        and x.dtype == y.dtype
        and x.shape == y.shape
        and x.flags.c_contiguous
        and y.flags.c_contiguous
        and y.flags.writeable
    ):
        fn(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
        return
    y += np.multiply(x, alpha, out=tmp)


@contextmanager
def single_thread_if_small(largest_matmul_flops: float | None) -> Iterator[None]:
    """Run the block with one BLAS thread when its largest matrix product is small.

    Parameters
    ----------
    largest_matmul_flops : float or None
        FLOPs of the largest product one update computes; None leaves the threads alone.

    Examples
    --------
    >>> with single_thread_if_small(1e3):
    ...     pass
    """
    if _THREADS is None or largest_matmul_flops is None:
        yield
        return
    get, put = _THREADS
    before = get()
    if largest_matmul_flops >= SMALL_MATMUL_FLOPS or before <= 1:
        yield
        return
    put(1)
    try:
        yield
    finally:
        put(before)
