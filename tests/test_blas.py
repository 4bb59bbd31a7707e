"""The direct BLAS calls: axpy equals NumPy's arithmetic; small products run on one thread."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descend as ds
from descend.compile.backend import blas as _blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy_equals_the_numpy_formula(dtype):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 7)).astype(dtype), rng.normal(size=(300, 7)).astype(dtype)
    expected = y + dtype(-0.3) * x
    _blas.axpy(-0.3, x, y)
    # BLAS may fuse the multiply and add (one rounding instead of two): equal within an ulp of
    # the operands' size, which near-cancelling entries show as a larger relative error.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(y, expected, rtol=4 * eps, atol=8 * eps)


def test_axpy_falls_back_for_views_it_cannot_pass_to_blas():
    x = np.arange(12.0).reshape(3, 4)
    y = np.ones((4, 3)).T  # not C-contiguous
    expected = y + 2 * x
    _blas.axpy(2.0, x, y)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("rows", [1, 5])
def test_gemm_update_reads_read_only_factors_and_a_reused_b(rows):
    # a: a batch of a read-only file (its address is not taken through a writeable buffer);
    # b: the same buffer at every call, written in between (its address is remembered)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(rows, 4)), rng.normal(size=(rows, 3))
    a.flags.writeable = False
    c = rng.normal(size=(4, 3))
    expected = c.copy()
    update = _blas.GemmUpdate(c)
    for k in range(3):
        b[...] = rng.normal(size=b.shape)
        expected -= 0.5 * (a.T @ b)
        update(-0.5, a, b)
        np.testing.assert_allclose(c, expected, rtol=1e-13, atol=1e-13, err_msg=str(k))


@pytest.mark.skipif(_blas._THREADS is None, reason="NumPy's OpenBLAS thread control not found")
def test_small_networks_train_on_one_blas_thread_and_the_count_is_restored():
    get, put = _blas._THREADS
    before = get()
    if before < 2:
        put(2)
    seen = []

    class Threads(ds.Callback):
        def on_step_end(self, step, logs):
            seen.append(get())

    X, y = ds.datasets.moons(64, seed=0)
    try:
        small = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
        ds.fit(small, X, y, loss="categorical_cross_entropy", batch_size="full", epochs=2,
               callbacks=[Threads()], progress=False)  # fmt: skip
        assert seen == [1, 1] and get() >= 2
        seen.clear()
        big = ds.nn.mlp([2, 2048, 2], output_activation="softmax", seed=0)  # 2*64*2*2048 FLOPs
        Xb = np.repeat(X, 8, axis=0)
        ds.fit(big, Xb, np.repeat(y, 8), loss="categorical_cross_entropy", batch_size="full",
               epochs=1, callbacks=[Threads()], progress=False)  # fmt: skip
        assert seen == [get()] and get() >= 2
    finally:
        put(before)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 33, 100_003])
def test_finite_finds_every_nan_and_inf_and_accepts_large_finite_values(dtype, n):
    # the proof by a sum of squares: NaN or an inf anywhere (the BLAS kernels' blocks and tails)
    # makes it fail; large finite values overflow it, and the fallback says finite, silently
    from descend.compile.backend import finite, squared_norm

    for position in sorted({0, n // 2, n - 1}):
        for bad in (np.nan, np.inf, -np.inf):
            a = np.ones(n, dtype)
            a[position] = bad
            assert not finite(a) and not np.isfinite(squared_norm(a))
            assert not finite(a.reshape(-1, 1)[::-1])  # not contiguous either
    assert finite(np.ones((n, 1), dtype))
    large = np.full(n, np.finfo(dtype).max / 2, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning reaches the user
        assert squared_norm(large) == np.inf and finite(large)


def test_squared_norm_follows_an_array_that_comes_back_changed_or_replaced():
    squared_norm = _blas.squared_norm
    a = np.arange(6, dtype=np.float32)
    assert squared_norm(a) == 55.0
    a[:] = 1.0
    assert squared_norm(a) == 6.0  # the same buffer, new values
    if _blas._DOT is not None:  # its data cannot move while its address is remembered
        with pytest.raises(ValueError):
            a.resize(20, refcheck=False)
    for n in (3, 50, 7):  # new arrays, perhaps at a freed array's id
        b = np.full(n, 3.0)
        assert squared_norm(b) == 9.0 * n
        del b
