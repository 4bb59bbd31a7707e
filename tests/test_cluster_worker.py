"""A worker's sums, without Ray: in blocks of rows or all at once, from pieces or one array."""

from __future__ import annotations

import numpy as np

import descend as ds
from descend.cluster import worker as worker_module
from descend.cluster.worker import ShardWorker


def test_block_sums_equal_the_sum_of_all_rows_and_the_one_machine_gradient(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    model = ds.nn.mlp([3, 5, 2], output_activation="softmax", seed=0, dtype=np.float64)
    metrics = {"accuracy": ds.train.metrics.accuracy}
    weights = [p.data.copy() for p in model.parameters()]
    rows = rng.permutation(50)[:37]
    whole = ShardWorker(model, ds.losses.categorical_cross_entropy, metrics, X, y)
    expected = whole.sums(weights, rows)
    monkeypatch.setattr(worker_module, "CHUNK_ROWS", 7)
    pieces = ShardWorker(model, ds.losses.categorical_cross_entropy, metrics,
                         [X[:20], X[20:]], [y[:20], y[20:]])  # fmt: skip
    for got in (whole.sums(weights, rows), pieces.sums(weights, rows)):
        assert got["n"] == 37
        np.testing.assert_allclose(got["cost"], expected["cost"], rtol=1e-13)
        np.testing.assert_allclose(got["metrics"]["accuracy"], expected["metrics"]["accuracy"])
        for a, b in zip(got["grads"], expected["grads"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the sums over the rows, divided by their number, are one machine's mean gradient
    model.zero_grad()
    ds.losses.categorical_cross_entropy(model(X[rows]), y[rows]).backward()
    for g, p in zip(expected["grads"], model.parameters(), strict=True):
        np.testing.assert_allclose(g / 37, p.grad, rtol=1e-12, atol=1e-15)
    assert whole.sums(weights, np.array([], dtype=int))["n"] == 0
