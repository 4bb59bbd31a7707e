"""Batching: how much data one gradient-descent step sees.

The three textbook variants of gradient descent differ only in the batch size:

=====================  ==============  ===============================================
variant                ``batch_size``  updates per epoch
=====================  ==============  ===============================================
batch GD               ``"full"``      1, computed from all ``n_samples`` samples
stochastic GD (SGD)    ``1``           ``n_samples``, one sample each
mini-batch GD          ``k``           ``ceil(n_samples / k)`` (``floor`` with ``drop_last``)
=====================  ==============  ===============================================

An epoch is one pass over the data. When shuffling, one permutation of the row indices is drawn
at the start of each epoch and each batch is ``X[idx]`` for its slice of that permutation, so
only the rows of one batch are copied at a time, never the whole data set (at batch size 1,
the row is taken as a one-row view ``X[i:i + 1]`` when ``X`` is an in-memory C-ordered array:
the same values, without the copy). This is also what makes memory-mapped ``.npy`` files work:
only the rows of the current batch are read.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from descend.data.validation import (
    _check_bool,
    as_generator,
    check_batch_finite,
    check_X_y,
    is_memory_mapped,
)

__all__ = ["Batches", "batches"]

Batch = tuple[np.ndarray, np.ndarray | None]


class Batches:
    """A re-iterable sequence of batches; each ``iter()`` is one epoch.

    Build it with :func:`batches`, which documents the parameters.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The inputs, not copied (a memory map is held as a view of the file, not read).
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs), or None
        The targets, not copied.
    n_samples : int
        Number of rows of `X`.
    batch_size : int
        Resolved batch size: ``n_samples`` for ``"full"``.
    shuffle : bool
        Whether each epoch draws a new permutation (never done for a full batch).
    drop_last : bool
        Whether a last, smaller batch is skipped.
    check_finite : bool
        Whether each batch is checked for NaN and inf as it is read (by default, when `X` or
        `y` is memory-mapped).

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import Batches
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> b = Batches(X, batch_size=2, shuffle=False)
    >>> len(b), b.variant
    (3, 'mini-batch')
    >>> [xb.shape[0] for xb, _ in b]
    [2, 2, 1]
    """

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        batch_size: int | Literal["full"] = "full",
        shuffle: bool = True,
        seed: int | np.random.Generator | None = None,
        drop_last: bool = False,
        check_finite: bool | None = None,
    ) -> None:
        # No NaN scan: that reads every value, which fit does once and a memmap must not do.
        self.X, self.y = check_X_y(X, y, finite=False)
        self.n_samples = len(self.X)
        if check_finite is None:  # data too large to scan up front is checked as it is read
            check_finite = is_memory_mapped(self.X) or is_memory_mapped(self.y)
        self.check_finite = _check_bool(check_finite, "check_finite")
        self._full_checked = False
        self.batch_size = _resolve_batch_size(batch_size, self.n_samples)
        self.shuffle = _check_bool(shuffle, "shuffle")
        self.drop_last = _check_bool(drop_last, "drop_last")
        self._rng = as_generator(seed)

    @property
    def generator(self) -> np.random.Generator:
        """The generator that draws each epoch's order (from ``seed``).

        Set it to continue another run's sequence of epochs, e.g. with a generator restored
        from a checkpoint (``fit(..., resume_from=...)`` does).

        Examples
        --------
        >>> import numpy as np
        >>> from descend.data import Batches
        >>> b = Batches(np.arange(8.0).reshape(4, 2), batch_size=2, seed=0)
        >>> b.generator = np.random.default_rng(5)
        >>> [xb[:, 0].tolist() for xb, _ in b] == [
        ...     xb[:, 0].tolist() for xb, _ in Batches(b.X, batch_size=2, seed=5)]
        True
        """
        return self._rng

    @generator.setter
    def generator(self, rng: np.random.Generator) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"generator must be a numpy.random.Generator, got {type(rng).__name__}; e.g. "
                "np.random.default_rng(0)"
            )
        self._rng = rng

    @property
    def variant(self) -> str:
        """Which gradient-descent variant this batching gives.

        ``"batch"`` (all samples per step), ``"stochastic"`` (one sample per step) or
        ``"mini-batch"``. With a single sample, batch and stochastic coincide; ``"batch"`` wins.
        """
        if self.batch_size == self.n_samples:
            return "batch"
        return "stochastic" if self.batch_size == 1 else "mini-batch"

    def __len__(self) -> int:
        """Number of updates (batches) per epoch."""
        if self.drop_last:
            return self.n_samples // self.batch_size
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch()

    def epoch(self, start: int = 0) -> Iterator[Batch]:
        """One epoch, from batch ``start`` on: ``iter(b)`` is ``b.epoch()``.

        The epoch's permutation is drawn first, whatever ``start`` is, so that the generator
        advances exactly as in a whole epoch. Resuming a training run uses this: restore the
        generator's state of the epoch's start, then skip the batches already done (without
        reading their rows).

        Parameters
        ----------
        start : int, default 0
            Batches to skip, ``0 <= start <= len(self)``.

        Examples
        --------
        >>> import numpy as np
        >>> from descend.data import batches
        >>> b = batches(np.arange(10.0).reshape(5, 2), batch_size=2, shuffle=False)
        >>> [xb[:, 0].tolist() for xb, _ in b.epoch(start=1)]
        [[4.0, 6.0], [8.0]]
        """
        if isinstance(start, bool) or not isinstance(start, numbers.Integral):
            raise TypeError(f"start must be an int, got {type(start).__name__} {start!r}")
        if not 0 <= start <= len(self):
            raise ValueError(f"start must be in [0, {len(self)}] (batches per epoch), got {start}")
        if self.batch_size == self.n_samples:
            # A full batch is the data itself: permuting it would only change the summation
            # order inside the loss, so it is neither shuffled nor copied (nor checked twice).
            if self.check_finite and not self._full_checked and start == 0:
                check_batch_finite(self.X, self.y, slice(0, self.n_samples))
                self._full_checked = True
            return iter(((self.X, self.y),)[start:])
        # Drawn here, not lazily in the generator, so that every call is one epoch.
        order = self._rng.permutation(self.n_samples) if self.shuffle else None
        return self._epoch(order, int(start))

    def _epoch(self, order: np.ndarray | None, first: int = 0) -> Iterator[Batch]:
        X, y, k = self.X, self.y, self.batch_size
        if k == 1 and order is not None and _views_of_rows(X, y):
            yield from self._single_rows(order, first)
            return
        with _FileRows.of(X) as x_file, _FileRows.of(y) as y_file:
            take_x = X.__getitem__ if x_file is None else x_file.read
            if order is not None and x_file is None and type(X) is np.ndarray and X.ndim > 1:
                # X.take(rows, axis=0) is X[rows] (the same copy, C-ordered) at a quarter to
                # two thirds of its cost for a few dozen rows: NumPy's fancy indexing prepares
                # an index per axis
                take_x = _taker(X)
            take_y = (lambda rows: None) if y is None else y.__getitem__
            take_y = take_y if y_file is None else y_file.read
            for start in range(first * k, len(self) * k, k):
                rows = slice(start, start + k) if order is None else order[start : start + k]
                xb, yb = take_x(rows), take_y(rows)
                if self.check_finite:
                    check_batch_finite(xb, yb, rows)
                yield xb, yb

    def _single_rows(self, order: np.ndarray, first: int) -> Iterator[Batch]:
        # batch size 1, shuffled: each batch is the row as a one-row view (X[i:i + 1]), the same
        # values as the copy X[[i]] at an eighth of its cost (a few microseconds an update)
        X, y = self.X, self.y
        for i in order[first:].tolist():
            rows = slice(i, i + 1)
            xb, yb = X[rows], None if y is None else y[rows]
            if self.check_finite:
                check_batch_finite(xb, yb, np.array([i]))
            yield xb, yb

    def __repr__(self) -> str:
        return (
            f"Batches(n_samples={self.n_samples}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, n_batches={len(self)}, "
            f"variant={self.variant!r})"
        )


def _taker(X: np.ndarray):
    """``rows -> X.take(rows, axis=0)`` (a closure: faster to call than a ``partial``)."""
    take = X.take
    return lambda rows: take(rows, axis=0)


def _views_of_rows(X: np.ndarray, y: np.ndarray | None) -> bool:
    """Whether a row of ``X`` (and of ``y``) taken as a view is laid out as the copy that
    ``X[[i]]`` makes (C-contiguous), and read from memory rather than a file."""
    return all(
        a is None or (type(a) is np.ndarray and a.flags.c_contiguous and _memmap_of(a) is None)
        for a in (X, y)
    )


def _memmap_of(a: np.ndarray | None) -> np.memmap | None:
    """The memory map ``a`` views (``a`` itself, or one of its bases), or None."""
    while a is not None and not isinstance(a, np.memmap):
        a = getattr(a, "base", None)
    return a


PREAD_MIN_BYTES = 256 << 20
"""Memory-mapped arrays at least this large are read with ``pread`` (memory stays bounded, each
shuffled row costs a system call); smaller ones through the map (about four times faster from
the page cache, and their pages in memory are bounded by the file's size)."""


class _FileRows:
    """Rows of a read-only memory-mapped ``.npy`` file, read with ``pread`` instead of the map.

    Reading a batch's rows through the map leaves the pages it touched in the process's memory,
    and on current Linux kernels a page fault maps a large block around each row: a few shuffled
    batches map most of the file, so the process's memory grows to the file's size. Reading the
    same bytes with ``pread`` into a new array keeps only the batch in memory. The bytes are the
    same: the map is read-only (``mmap_mode="r"``), so the file is what the array shows.
    """

    def __init__(self, fd: int, position: int, n_rows: int, row_bytes: int, dtype, row_shape):
        self.fd, self.position, self.n_rows, self.row_bytes = fd, position, n_rows, row_bytes
        self.dtype, self.row_shape = dtype, row_shape

    @classmethod
    @contextmanager
    def of(cls, a: np.ndarray | None) -> Iterator[_FileRows | None]:
        """A reader for ``a`` when it is a C-contiguous view of a read-only np.memmap, else None."""
        mapped = _memmap_of(a)
        if (
            a is None
            or mapped is None
            or getattr(mapped, "mode", None) != "r"
            or getattr(mapped, "filename", None) is None
            or not a.flags.c_contiguous
            or a.ndim == 0
            or not hasattr(os, "preadv")
            or a.nbytes < PREAD_MIN_BYTES
        ):
            yield None
            return
        start = a.__array_interface__["data"][0] - mapped.__array_interface__["data"][0]
        fd = os.open(mapped.filename, os.O_RDONLY)
        try:
            row_bytes = a.itemsize * int(np.prod(a.shape[1:]))
            yield cls(fd, mapped.offset + start, len(a), row_bytes, a.dtype, a.shape[1:])
        finally:
            os.close(fd)

    def read(self, rows) -> np.ndarray:
        """``a[rows]`` for a slice of consecutive rows or an array of row numbers."""
        if isinstance(rows, slice):
            first, stop = rows.start, min(rows.stop, self.n_rows)
            out = np.empty((stop - first, *self.row_shape), self.dtype)
            self._pread(out, first)
            return out
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        for j, i in enumerate(rows.tolist()):
            self._pread(out[j : j + 1], i)
        return out

    def _pread(self, out: np.ndarray, first_row: int) -> None:
        view = memoryview(out).cast("B")
        got = os.preadv(self.fd, [view], self.position + first_row * self.row_bytes)
        if got != view.nbytes:
            raise OSError(f"the data file ended early (read {got} of {view.nbytes} bytes)")


def batches(
    X: ArrayLike,
    y: ArrayLike | None = None,
    batch_size: int | Literal["full"] = "full",
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    drop_last: bool = False,
    check_finite: bool | None = None,
) -> Batches:
    """Split the data into batches, one gradient-descent update each; iterate once per epoch.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs. Not copied: an ndarray or a memory-mapped ``.npy`` file
        (``np.load(path, mmap_mode="r")``) is indexed in place, one batch at a time.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        Targets, batched with the same rows as `X`. When None, batches are ``(X_batch, None)``.
    batch_size : "full" or int, default="full"
        ``"full"``: batch gradient descent, one update per epoch from all samples.
        ``1``: stochastic gradient descent, one sample per update.
        ``k``: mini-batch gradient descent, ``k`` samples per update. ``k == n_samples`` is
        treated as ``"full"``.
    shuffle : bool, default=True
        Draw a new permutation of the rows at the start of every epoch. A full batch is never
        shuffled: its gradient is the same sum in another order.
    seed : None, int or numpy.random.Generator, default=None
        Source of the permutations. One generator is held for the life of the object, so the
        same seed reproduces the whole sequence of epochs while successive epochs differ. A
        Generator is used as is (not copied).
    drop_last : bool, default=False
        Skip the last batch when it is smaller than `batch_size`.
    check_finite : bool or None, default=None
        Check each batch for NaN and inf as it is read, before it is used: a ValueError names
        the row. None: only when `X` or `y` is memory-mapped (data too large to scan up front),
        so that training stops before an update on a bad batch, not after.

    Returns
    -------
    Batches
        Re-iterable: each ``for X_batch, y_batch in b`` is one epoch. ``len(b)`` is the number
        of updates per epoch. Each ``X_batch`` has shape ``(m, n_features)`` with
        ``m <= batch_size``, also for ``batch_size=1`` (never 1-D). A full batch yields `X`
        and `y` themselves; unshuffled mini-batches are views (slices); shuffled ones are
        copies of just their rows (single rows of an in-memory C-ordered array: views).

    Raises
    ------
    TypeError
        If `batch_size` is not "full" or an int (bools and floats are refused), if `shuffle` or
        `drop_last` is not a bool, if `seed` is of the wrong type, or if `X`/`y` do not hold
        numbers.
    ValueError
        If `X` is empty or not 2-D, `X` and `y` differ in length, or `batch_size` is not
        positive or exceeds the number of samples.

    Notes
    -----
    The values are not checked for NaN or inf here (that would read a memory map whole):
    training checks arrays in memory once, and memory-mapped ones are checked here batch by batch
    (``check_finite``).

    Examples
    --------
    >>> import numpy as np
    >>> from descend.data import batches
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> y = np.arange(10)
    >>> b = batches(X, y, batch_size=4, seed=0)
    >>> len(b)
    3
    >>> [len(yb) for _, yb in b]
    [4, 4, 2]
    >>> sorted(np.concatenate([yb for _, yb in b]).tolist()) == list(range(10))
    True
    >>> len(batches(X, y, batch_size=4, drop_last=True))
    2
    >>> xb, yb = next(iter(batches(X, y, batch_size=1, seed=0)))
    >>> xb.shape, yb.shape
    ((1, 2), (1,))
    """
    return Batches(
        X, y, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
        check_finite=check_finite,
    )  # fmt: skip


def _resolve_batch_size(batch_size: object, n_samples: int) -> int:
    if isinstance(batch_size, str):
        if batch_size == "full":
            return n_samples
        raise ValueError(
            f"batch_size must be 'full' or a positive int, got {batch_size!r}; use 'full' for "
            f"batch gradient descent, 1 for stochastic, or k for mini-batches of k samples"
        )
    if isinstance(batch_size, bool | np.bool_) or not isinstance(batch_size, numbers.Integral):
        hint = f"; use batch_size={int(batch_size)}" if _is_whole_float(batch_size) else ""
        raise TypeError(
            f"batch_size must be 'full' or a positive int, got {type(batch_size).__name__} "
            f"{batch_size!r}{hint}"
        )
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive int, got {batch_size}; use 1 for stochastic "
            f"gradient descent or 'full' for batch gradient descent"
        )
    if batch_size > n_samples:
        raise ValueError(
            f"batch_size={batch_size} is larger than the number of samples ({n_samples}); use "
            f"batch_size='full' to train on all {n_samples} samples at once, or a smaller int"
        )
    return batch_size


def _is_whole_float(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and float(value).is_integer()
        and value > 0
    )
