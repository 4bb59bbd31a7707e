"""Pieces of one computation on several cores: the same results as one core, in piece order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import descend as ds
from descend.compile.backend import blas as _blas
from descend.compile.backend import map_pieces, n_workers, split_rows


def test_pieces_come_back_in_order_and_each_worker_takes_its_own():
    seen = []

    def work(worker, piece):
        seen.append((worker, piece, threading.current_thread().name))
        return piece * 10

    assert map_pieces(work, 7, workers=3) == [0, 10, 20, 30, 40, 50, 60]
    assert sorted(p for _, p, _ in seen) == list(range(7))
    assert all(w == p % 3 for w, p, _ in seen)  # piece i on worker i % k
    names = {w: {n for w2, _, n in seen if w2 == w} for w, _, _ in seen}
    assert all(len(v) == 1 for v in names.values())  # a worker is one thread


def test_an_error_in_a_piece_reaches_the_caller_after_every_worker_stopped():
    # worker 1 (pieces 1, 3, 5) stops at its failing piece; worker 0 finishes its own
    done = []

    def work(worker, piece):
        if piece == 3:
            raise ValueError("piece 3 is bad")
        done.append(piece)

    with pytest.raises(ValueError, match="piece 3 is bad"):
        map_pieces(work, 6, workers=2)
    assert sorted(done) == [0, 1, 2, 4]


def test_blas_runs_single_threaded_inside_and_gets_its_threads_back():
    if _blas._THREADS is None:
        pytest.skip("NumPy's OpenBLAS was not found")
    before = _blas._THREADS[0]()
    inside = map_pieces(lambda w, i: _blas._THREADS[0](), 4, workers=2)
    assert inside == [1, 1, 1, 1]
    assert _blas._THREADS[0]() == before


def test_descend_threads_sets_the_workers(monkeypatch):
    monkeypatch.setenv("DESCEND_THREADS", "1")
    assert n_workers() == 1
    names = map_pieces(lambda w, i: threading.current_thread().name, 3)
    assert names == [threading.current_thread().name] * 3  # serial, here
    monkeypatch.setenv("DESCEND_THREADS", "two")
    with pytest.raises(ValueError, match="DESCEND_THREADS must be a whole number"):
        n_workers()


@pytest.mark.parametrize(("n", "k"), [(10, 3), (7, 7), (5, 1), (1000, 4), (3, 5)])
def test_split_rows_covers_every_row_once_in_nearly_equal_parts(n, k):
    ranges = split_rows(n, k)
    assert len(ranges) == k and ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("batch_size", [None, 700, 2048])
def test_parallel_prediction_equals_one_core(monkeypatch, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 300)).astype(np.float32)
    model = ds.nn.mlp([300, 200, 10], output_activation="softmax", seed=0)
    parallel = ds.predict(model, X, batch_size=batch_size)
    monkeypatch.setenv("DESCEND_THREADS", "1")
    serial = ds.predict(model, X, batch_size=batch_size)
    with ds.no_grad():
        graph = model(X).data
    np.testing.assert_allclose(parallel, serial, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(parallel, graph, rtol=1e-5, atol=1e-6)


def test_parallel_prediction_gives_each_core_as_many_chunks_none_above_batch_size(monkeypatch):
    from descend.compile.replay import Executor

    seen, call = [], Executor.__call__

    def record(self, X, *args, **kwargs):
        seen.append(X.shape[0])
        return call(self, X, *args, **kwargs)

    monkeypatch.setattr(Executor, "__call__", record)
    monkeypatch.setenv("DESCEND_THREADS", "2")
    X = np.random.default_rng(0).random((5000, 300), dtype=np.float32)
    model = ds.nn.mlp([300, 200, 10], output_activation="softmax", seed=0)
    ds.predict(model, X, batch_size=2048)  # 3 chunks of 2,048 rows at most: cut into 4
    assert sorted(seen) == [1250] * 4


def test_parallel_prediction_names_the_first_row_that_is_not_finite():
    X = np.zeros((6000, 300), np.float32)
    X[4321, 7] = np.nan
    model = ds.nn.mlp([300, 200, 10], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match=r"X contains 1 NaN value \(first in row 4321\)"):
        ds.predict(model, X, batch_size=1000)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("batch_size", [None, 1000, 1])
def test_prediction_finds_every_kind_of_non_finite_input(bad, batch_size):
    X = np.zeros((3000, 300), np.float32)
    X[2345, 299] = bad
    model = ds.nn.mlp([300, 200, 10], output_activation="softmax", seed=0)
    model.layers[0].weight.data[299, :] = 0.0  # inf * 0 is NaN: still found
    with pytest.raises(ValueError, match=r"X contains 1 .* \(first in row 2345\)"):
        ds.predict(model, X, batch_size=batch_size)


def test_prediction_of_finite_inputs_that_overflow_blames_the_output_not_x():
    X = np.zeros((3000, 300), np.float32)
    X[17] = 3e38  # finite, but X @ W overflows
    model = ds.nn.mlp([300, 200, 10], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="the model's output for X is not finite"):
        ds.predict(model, X, batch_size=1000)


def test_an_interrupt_while_waiting_lets_every_worker_finish_first(monkeypatch):
    import concurrent.futures

    finished = []

    def work(worker, piece):
        import time

        time.sleep(0.05)
        finished.append(piece)

    original = concurrent.futures.Future.exception
    calls = [0]

    def interrupted(self, timeout=None):
        calls[0] += 1
        if calls[0] == 1:
            raise KeyboardInterrupt
        return original(self, timeout)

    monkeypatch.setattr(concurrent.futures.Future, "exception", interrupted)
    with pytest.raises(KeyboardInterrupt):
        map_pieces(work, 4, workers=2)
    assert sorted(finished) == [0, 1, 2, 3]  # no worker was left running


def test_idle_blas_workers_are_released_only_when_no_other_thread_could_be_using_blas():
    if _blas._SHUTDOWN is None or _blas._THREADS is None:
        pytest.skip("NumPy's OpenBLAS was not found")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="someone-else")
    other.start()
    try:
        with _blas.blas_threads(1):
            assert _blas.release_idle_workers() is False  # another thread might be in BLAS
    finally:
        stop.set()
        other.join()
    with _blas.blas_threads(2):
        assert _blas.release_idle_workers() is False  # only with one BLAS thread set
    with _blas.blas_threads(1):
        released = _blas.release_idle_workers()
    a = np.arange(64 * 64, dtype=np.float64).reshape(64, 64)
    np.testing.assert_allclose(a @ a, np.einsum("ij,jk->ik", a, a))  # BLAS still works after
    assert released is True or any(
        t is not threading.current_thread() and not t.name.startswith("descend")
        for t in threading.enumerate()
    )


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_runs_parallel_sections_with_a_pool_of_its_own():
    import multiprocessing

    map_pieces(lambda w, i: i, 4, workers=2)  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_pieces_in_child).get(timeout=60)
    assert result == [0, 1, 4, 9]


def _pieces_in_child():
    return map_pieces(lambda w, i: i * i, 4, workers=2)
