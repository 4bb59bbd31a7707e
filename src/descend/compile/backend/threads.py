"""Independent pieces of one computation, run on the machine's cores at the same time.

NumPy runs element-wise work on one core, and BLAS splits each matrix product between its
threads, which then wait for each other (and pass cache lines between cores) at every product.
When a computation falls into pieces that do not depend on each other (the chunks of a
prediction, the row blocks of a full batch), it is faster to give each core whole pieces: each
piece's products run single-threaded in BLAS, and its element-wise work runs beside the other
core's. NumPy releases the interpreter lock inside both, so Python threads suffice.

The pieces are assigned to the workers in a fixed way (piece ``i`` to worker ``i % k``), so the
results never depend on timing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from descend.compile.backend.blas import blas_threads, release_idle_workers

__all__ = ["map_pieces", "n_workers", "split_rows"]

T = TypeVar("T")

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# Only one parallel section at a time: BLAS's thread count is one setting for the process.
_SECTION = threading.Lock()


def n_workers() -> int:
    """How many workers a parallel section uses: the cores this process may run on (at most 8).

    ``DESCEND_THREADS`` overrides it (``DESCEND_THREADS=1`` runs every section serially).

    Examples
    --------
    >>> n_workers() >= 1
    True
    """
    forced = os.environ.get("DESCEND_THREADS")
    if forced:
        try:
            return max(1, int(forced))
        except ValueError:
            raise ValueError(
                f"DESCEND_THREADS must be a whole number of threads, got {forced!r}; unset it "
                "to use every core"
            ) from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="descend")
        return _POOL


def _forget_pool_after_fork() -> None:
    # A forked child has none of the parent's threads: it makes a pool of its own when needed.
    global _POOL, _POOL_LOCK, _SECTION
    _POOL, _POOL_LOCK, _SECTION = None, threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def map_pieces(work: Callable[[int, int], T], n_pieces: int, workers: int | None = None) -> list[T]:
    """``[work(w, i) for i in pieces]`` with piece ``i`` on worker ``w = i % k``, in parallel.

    ``work(w, i)`` computes piece ``i`` as worker ``w`` (a worker may keep buffers of its own,
    indexed by ``w``); the pieces of one worker run in order. BLAS runs single-threaded during
    the section. With one worker, or one piece, everything runs here, serially, and BLAS keeps
    its threads.

    Parameters
    ----------
    work : callable (worker, piece) -> result
    n_pieces : int
    workers : int, optional
        Default :func:`n_workers`.

    Returns
    -------
    list
        The results, by piece.

    Examples
    --------
    >>> map_pieces(lambda w, i: i * i, 5, workers=2)
    [0, 1, 4, 9, 16]
    """
    k = min(n_workers() if workers is None else workers, n_pieces)
    if k <= 1:
        return [work(0, i) for i in range(n_pieces)]
    results: list = [None] * n_pieces

    def run(w: int) -> None:
        for i in range(w, n_pieces, k):
            results[i] = work(w, i)

    with _SECTION, blas_threads(1):
        release_idle_workers()  # else they spin on the cores our workers need
        futures = [_pool().submit(run, w) for w in range(k)]
        try:
            errors = [f.exception() for f in futures]  # waits for every worker
        except BaseException:
            # Ctrl-C while waiting: let every worker finish its pieces before the section ends,
            # so that nothing still writes into the caller's arrays afterwards.
            wait(futures)
            raise
    for error in errors:
        if error is not None:
            raise error
    return results


def split_rows(n: int, pieces: int) -> Sequence[tuple[int, int]]:
    """``pieces`` contiguous (start, stop) row ranges of nearly equal size covering ``range(n)``.

    Examples
    --------
    >>> split_rows(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    q, r = divmod(n, pieces)
    ranges, start = [], 0
    for i in range(pieces):
        stop = start + q + (i < r)
        ranges.append((start, stop))
        start = stop
    return ranges
