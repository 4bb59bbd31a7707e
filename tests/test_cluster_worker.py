"""A worker's sums, without Ray: compiled or eager, in blocks of rows or all at once, from
pieces or one array."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds
from descend.cluster import worker as worker_module
from descend.cluster.worker import ShardWorker, power_blocks


def test_power_blocks_cover_the_rows_in_order_with_few_shapes(monkeypatch):
    for n in (0, 1, 7, 8, 13, 100, 16_384, 40_000):
        blocks = power_blocks(n)
        assert [a for a, _ in blocks] == [0] + [b for _, b in blocks[:-1]] if n else blocks == []
        assert sum(b - a for a, b in blocks) == n
        assert all((b - a) & (b - a - 1) == 0 and b - a <= 16_384 for a, b in blocks)
    shapes = {b - a for n in range(1, 300) for a, b in power_blocks(n)}
    assert shapes == {1, 2, 4, 8, 16, 32, 64, 128, 256}


@pytest.mark.parametrize("compile", [True, False])
def test_block_sums_equal_the_sum_of_all_rows_and_the_one_machine_gradient(monkeypatch, compile):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    model = ds.nn.mlp([3, 5, 2], output_activation="softmax", seed=0, dtype=np.float64)
    metrics = {"accuracy": ds.train.metrics.accuracy}
    loss = ds.losses.categorical_cross_entropy
    rows = rng.permutation(50)[:37]
    whole = ShardWorker(model, loss, metrics, X, y, compile=compile)
    assert (whole.why_eager is None) == compile
    weights = whole.weights()
    n, cost, scores, grads = whole.sums(weights, rows)
    grads = grads.copy()  # the worker's buffer: the next call overwrites it
    monkeypatch.setattr(worker_module, "CHUNK_ROWS", 8)
    pieces = ShardWorker(model, loss, metrics, [X[:20], X[20:]], [y[:20], y[20:]],
                         compile=compile)  # fmt: skip
    for got in (whole.sums(weights, rows), pieces.sums(weights, rows)):
        assert got[0] == n == 37
        np.testing.assert_allclose(got[1], cost, rtol=1e-13)
        np.testing.assert_allclose(got[2], scores)
        np.testing.assert_allclose(got[3], grads, rtol=1e-12, atol=1e-15)
    # the sums over the rows, divided by their number, are one machine's mean gradient
    model.zero_grad()
    value = loss(model(X[rows]), y[rows])
    value.backward()
    np.testing.assert_allclose(cost / 37, value.item(), rtol=1e-13)
    expected = np.concatenate([p.grad.ravel() for p in model.parameters()])
    np.testing.assert_allclose(grads / 37, expected, rtol=1e-12, atol=1e-15)
    assert whole.sums(weights, np.array([], dtype=int))[0] == 0


def test_a_model_that_cannot_be_compiled_runs_eagerly_with_the_same_sums():
    class Doubled(ds.nn.Module):  # NumPy on .data with the batch's values: not traceable
        def __init__(self):
            super().__init__()
            self.inner = ds.nn.mlp([3, 1], seed=0, dtype=np.float64)

        def forward(self, x):
            return self.inner(ds.Tensor(np.asarray(x.data if hasattr(x, "data") else x) * 2))

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    worker = ShardWorker(Doubled(), ds.losses.mse, {}, X, y)
    assert worker.why_eager  # the reason, from the trace
    n, cost, _, grads = worker.sums(worker.weights(), None)
    plain = ShardWorker(ds.nn.mlp([3, 1], seed=0, dtype=np.float64), ds.losses.mse, {}, 2 * X, y)
    n2, cost2, _, grads2 = plain.sums(plain.weights(), None)
    assert n == n2 == 20 and plain.why_eager is None
    np.testing.assert_allclose(cost, cost2, rtol=1e-13)
    np.testing.assert_allclose(grads, grads2, rtol=1e-12)


def test_the_compiled_graph_is_kept_only_where_it_is_faster_than_calls(monkeypatch):
    """compiled_graph=None: after GRAPH_TRIAL updates through the graph (the first, which
    compiled it, left out), their median time against the last updates' by calls decides."""
    from descend.cluster import ray as ray_module

    def run(call_ms, graph_ms):
        dp = ray_module.DataParallel.__new__(ray_module.DataParallel)
        dp.cluster = ray_module.Ray(workers=2)
        dp._cycles, dp._last_start, dp._graph_failures = {False: [], True: []}, None, 0
        dp.graph = False
        dp._dag, dropped = object(), []
        dp._drop_graph = lambda: dropped.append(True)
        clock = [0.0]
        monkeypatch.setattr(ray_module.time, "perf_counter", lambda: clock[0])
        for graph, ms in [(False, call_ms)] * 5 + [(True, 500.0)] + [(True, graph_ms)] * 10:
            dp._time_cycle()
            dp.graph, clock[0] = graph, clock[0] + ms / 1e3
        dp._time_cycle()
        return dropped, dp._graph_failures > dp.cluster.max_restarts

    assert run(call_ms=5.0, graph_ms=1.0) == ([], False)  # the compile's 500 ms left out
    assert run(call_ms=5.0, graph_ms=8.0) == ([True], True)  # slower: calls from now on

    dp = ray_module.DataParallel.__new__(ray_module.DataParallel)
    dp.cluster, dp._graph_failures = ray_module.Ray(workers=2), 0
    for updates, seconds, wanted in [(19, 0.01, False), (20, 0.01, True), (20, 0.2, False)]:
        dp.updates, dp._cycles = updates, {False: [seconds] * 10, True: []}
        assert dp._graph_wanted() == wanted  # long updates (computation) keep the calls
