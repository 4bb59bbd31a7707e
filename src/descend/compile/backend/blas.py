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
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = [
    "Axpy",
    "GemmUpdate",
    "axpy",
    "blas_available",
    "blas_threads",
    "release_idle_workers",
    "single_thread_if_small",
    "squared_norm",
    "transposed_product_faster",
]


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


def _bind(name: str, returns: bool = False) -> dict | None:
    """``scipy_cblas_sNAME`` and ``..._dNAME`` by dtype, as ``(function, real type, integer
    type)``, the functions without argument types: called with ctypes objects, which the
    callers make once for the arrays that come back at every update (a call then converts
    nothing: about 0.4 against 1.2 us for an axpy given Python numbers); with ``returns``, the
    function returns a real."""
    lib, found = _LIB
    if lib is None:
        return None
    suffix, integer = found
    table = {}
    for dtype, letter, real in (
        (np.float32, "s", ctypes.c_float),
        (np.float64, "d", ctypes.c_double),
    ):
        try:
            fn = lib[f"scipy_cblas_{letter}{name}{suffix}"]  # its own object: no argtypes
        except AttributeError:
            return None
        fn.restype = real if returns else None
        table[np.dtype(dtype)] = (fn, real, integer)
    return table


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


def _load_shutdown():
    lib, found = _LIB
    fn = getattr(lib, "blas_thread_shutdown_", None) if lib is not None else None
    if fn is not None:
        fn.restype, fn.argtypes = ctypes.c_int, []
    return fn


_LIB = _library()
_P, _ORDER = ctypes.c_void_p, ctypes.c_int  # a pointer; a CBLAS enumeration
# n, alpha, x, incx, y, incy
_AXPY = _bind("axpy")
# n, x, incx, y, incy -> the dot product
_DOT = _bind("dot", returns=True)
# called by GemmUpdate with C values of these types (made once):
# gemm: order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc (enumerations:
# C int; sizes: the integer type; alpha, beta: real; A, B, C: pointers)
# ger: order, M, N, alpha, x, incx, y, incy, A, lda
_GEMM, _GER = _bind("gemm"), _bind("ger")
if _GEMM is None or _GER is None:
    _GEMM = _GER = None
_SHUTDOWN = _load_shutdown()
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS enumerations
_THREADS = _load_threads()

# Below this many FLOPs a matrix product is faster on one core than split between threads, and
# splitting it is far slower when the other core is busy (measured on 2 cores: a 540 x 64 x 32
# product took 0.1 ms alone and 15 ms beside another process; a 256 x 100 x 64 product, 3.3
# MFLOP, best of 3,000: 35 us on one thread, 46 us on two beside other work; an out-of-core
# epoch of a 100-64-10 net in batches of 256, 500,000 rows: 0.66 s with one BLAS thread, 4.4 s
# with two, load average 4.7).
SMALL_MATMUL_FLOPS = 4e6


def transposed_product_faster(n: int, q: int, p: int, dtype) -> bool:
    """Whether ``g @ W.T`` (``g`` of shape (n, q), ``W`` of shape (p, q)) is faster computed as
    ``W @ g.T``, written into the row-major transpose of a column-major result.

    The two are the same sums. OpenBLAS's single-precision kernels for the first form are slow
    for a thin ``g``: measured on one core (AVX-512, float32, us, ``g @ W.T`` against
    ``W @ g.T``): n = 32, q = p = 128: 18.9 against 14.3; n = 16: 13.7 against 8.2; n = 64: 29.2
    against 26.0; n = 32, q = p = 256: 77.8 against 52.5; 512: 317 against 200. Not below 16
    rows (1.5 against 1.6 at 2 rows), above 64 (43.7 against 47.8 at 100 rows; 176 against 384
    at 2,048 x 10 x 256), for small sides (q = 10: within 7%) or in float64 (within 7%).

    Parameters
    ----------
    n, q, p : int
        The rows of ``g``, its columns (the rows of ``W.T``), and the rows of ``W``.
    dtype : dtype
        The arrays' dtype.

    Returns
    -------
    bool
        False without NumPy's own OpenBLAS (its kernels are the ones measured).

    Examples
    --------
    >>> isinstance(transposed_product_faster(32, 128, 128, np.float32), bool)
    True
    >>> transposed_product_faster(2048, 128, 128, np.float32)
    False
    """
    return (
        _AXPY is not None  # NumPy's own OpenBLAS, whose kernels were measured
        and np.dtype(dtype) == np.float32
        and 16 <= n <= 64
        and min(q, p) >= 64
    )


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
    bound = _AXPY.get(y.dtype) if _AXPY is not None else None
    if bound is not None and x.shape == y.shape and _blas_ready(x, y):
        fn, real, integer = bound
        one = integer(1)
        fn(integer(y.size), real(alpha), _P(_address(x)), one, _P(_address(y)), one)
        return
    y += np.multiply(x, alpha, out=tmp)


def _address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's data: through the buffer protocol (about a fifth
    of a microsecond), or ``a.ctypes.data`` (about one) for an array that does not export a
    writeable buffer (read-only, or empty)."""
    try:
        return _addressof(_char_at(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


_addressof, _char_at = ctypes.addressof, ctypes.c_char.from_buffer


def _pointer(a: np.ndarray) -> ctypes.c_void_p:
    """The address of ``a``'s data as the C value passed, remembered for the next call with the
    same array (a step's buffer comes back at every update): the last 64 arrays, by weak
    reference. Their data cannot have moved: NumPy does not resize an array that has one."""
    known = _POINTERS.get(id(a))
    if known is not None and known[0]() is a:
        return known[1]
    if len(_POINTERS) >= 64:
        _POINTERS.clear()
    ptr = _P(_address(a))
    # an id is reused only once its array is gone, which the weak reference tells
    _POINTERS[id(a)] = (weakref.ref(a), ptr)
    return ptr


_POINTERS: dict[int, tuple] = {}


def squared_norm(a: np.ndarray) -> float:
    """The sum of the squares of ``a``'s entries (a float array), as one BLAS ``dot``: NaN when
    ``a`` holds NaN, inf when it holds an inf or the sum overflows (silently: no NumPy warning).
    A finite result proves every entry finite (see :func:`~descend.compile.backend.finite`);
    about three times faster than a sum (``np.add.reduce``) on float32.

    Examples
    --------
    >>> squared_norm(np.array([[3.0, 4.0]])), squared_norm(np.array([1.0, np.inf]))
    (25.0, inf)
    >>> squared_norm(np.array([1e300], np.float64))
    inf
    """
    bound = _DOT.get(a.dtype) if _DOT is not None else None
    if bound is not None and a.flags.c_contiguous and a.size:
        fn, _, integer = bound
        ptr, one = _pointer(a), integer(1)
        return fn(integer(a.size), ptr, one, ptr, one)
    v = a.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dot(v, v))


def _blas_ready(*arrays: np.ndarray) -> bool:
    # one dtype, C order, and the last one (the output) writeable (a loop, not all() over a
    # generator: this is asked at every folded update)
    out = arrays[-1]
    for x in arrays:
        if x.dtype != out.dtype or not x.flags.c_contiguous:
            return False
    return out.flags.writeable


class GemmUpdate:
    """``c <- c + alpha * a^T b`` in place, for a fixed ``c`` of shape (p, q), without forming
    ``a^T b``.

    One BLAS call (``gemm`` with beta = 1, or the rank-1 ``ger`` when ``a`` has one row), so a
    weight matrix takes its gradient step without the gradient being written out and read back.
    Equal to ``c += alpha * (a.T @ b)`` up to rounding (the BLAS may fuse the multiply-add). The
    address of ``c`` is looked up once (about a microsecond a lookup); the object keeps ``c``
    alive. Called with ``a`` of shape (n, p) and ``b`` of shape (n, q).

    Examples
    --------
    >>> import numpy as np
    >>> c = np.zeros((2, 2)); update = GemmUpdate(c)
    >>> update(-1.0, np.ones((3, 2)), np.ones((3, 2))); c
    array([[-3., -3.],
           [-3., -3.]])
    """

    __slots__ = ("c", "_fns", "_consts")

    def __init__(self, c: np.ndarray) -> None:
        self.c = c
        ok = _GEMM is not None and c.ndim == 2 and _blas_ready(c)
        self._fns = None
        if ok and c.dtype in _GEMM:
            gemm, real, integer = _GEMM[c.dtype]
            self._fns = (gemm, _GER[c.dtype][0], real, integer)
            p, q = c.shape
            # every argument that does not change between calls, as the C value passed
            self._consts = (
                _ORDER(_ROW_MAJOR), _ORDER(_TRANS), _ORDER(_NO_TRANS), integer(p), integer(q),
                integer(1), real(1.0), _P(_address(c)),
            )  # fmt: skip

    def __call__(self, alpha: float, a: np.ndarray, b: np.ndarray) -> None:
        c, fns = self.c, self._fns
        p, q = c.shape
        n = a.shape[0]
        if a.shape != (n, p) or b.shape != (n, q):
            raise ValueError(f"a has shape {a.shape} and b {b.shape}; expected (n, {p}), (n, {q})")
        if fns is None or not _blas_ready(a, b, c):
            c += np.dot(a.T, b) * c.dtype.type(alpha)
            return
        gemm, ger, real, integer = fns
        order, trans, no_trans, c_p, c_q, one, beta, c_ptr = self._consts
        # b is most often a step's buffer (dC/dz), which comes back at every call
        a_ptr, b_ptr, c_alpha = _P(_address(a)), _pointer(b), real(alpha)
        if n == 1:
            ger(order, c_p, c_q, c_alpha, a_ptr, one, b_ptr, one, c_ptr, c_q)
        else:
            gemm(order, trans, no_trans, c_p, c_q, integer(n), c_alpha, a_ptr, c_p, b_ptr, c_q,
                 beta, c_ptr, c_q)  # fmt: skip


class Axpy:
    """``y <- y + alpha * x`` for two arrays fixed at construction: :func:`axpy` with their
    addresses looked up once (the object keeps both alive).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros(2); update = Axpy(np.ones(2), y)
    >>> update(0.5); update(0.5); y
    array([1., 1.])
    """

    __slots__ = ("x", "y", "_call", "_tmp")

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        if x.shape != y.shape:
            raise ValueError(f"x has shape {x.shape} and y {y.shape}; they must be equal")
        self.x, self.y = x, y
        bound = _AXPY.get(y.dtype) if _AXPY is not None else None
        self._call = None
        self._tmp = None
        if bound is not None and _blas_ready(x, y):
            fn, real, integer = bound
            one = integer(1)
            # every argument but alpha as the C value passed, made once
            self._call = (fn, real, integer(y.size), _P(_address(x)), one, _P(_address(y)))
        else:
            self._tmp = np.empty_like(y)

    def __call__(self, alpha: float) -> None:
        call = self._call
        if call is None:
            self.y += np.multiply(self.x, alpha, out=self._tmp)
            return
        fn, real, size, x_ptr, one, y_ptr = call
        fn(size, real(alpha), x_ptr, one, y_ptr, one)


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` BLAS threads (NumPy's OpenBLAS), then restore the count.

    Examples
    --------
    >>> with blas_threads(1):
    ...     pass
    """
    if _THREADS is None:
        yield
        return
    get, put = _THREADS
    before = get()
    if before == n:
        yield
        return
    put(n)
    try:
        yield
    finally:
        put(before)


def release_idle_workers() -> bool:
    """Stop BLAS's worker threads while BLAS runs single-threaded; True when they were stopped.

    After each multi-threaded product, OpenBLAS's workers keep spinning on their cores for about
    a tenth of a second, waiting for the next one; threads of our own that run single-threaded
    products beside each other then share their cores with them (measured: a 2-core prediction
    35% slower). This stops them; the next multi-threaded product starts them again. It is done
    only with one BLAS thread set and no Python thread but the caller's and ``descend``'s own,
    so that no product of another thread can be running.

    Examples
    --------
    >>> with blas_threads(1):
    ...     isinstance(release_idle_workers(), bool)
    True
    """
    if _SHUTDOWN is None or _THREADS is None or _THREADS[0]() != 1:
        return False
    me = threading.current_thread()
    if any(t is not me and not t.name.startswith("descend") for t in threading.enumerate()):
        return False
    _SHUTDOWN()
    return True


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
    if largest_matmul_flops >= SMALL_MATMUL_FLOPS:
        yield
        return
    with blas_threads(1):
        yield
