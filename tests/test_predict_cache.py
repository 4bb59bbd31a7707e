"""predict keeps a Dense stack's compiled forward passes between calls: never a stale answer."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import descend as ds
from descend.train import inference


def _eager(model, X):
    with ds.no_grad():
        return model(X).data


@pytest.fixture
def data():
    return np.random.default_rng(0).random((3000, 40), dtype=np.float32)


def test_a_second_prediction_uses_the_kept_passes_and_gives_the_same_numbers(data):
    model = ds.nn.mlp([40, 32, 5], output_activation="softmax", seed=0)
    first = ds.predict(model, data, batch_size=500)
    kept = inference._FORWARDS[model]
    second = ds.predict(model, data, batch_size=500)
    assert inference._FORWARDS[model] is kept
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, _eager(model, data), rtol=1e-5, atol=1e-6)


def test_training_between_predictions_is_seen(data):
    model = ds.nn.mlp([40, 32, 5], output_activation="softmax", seed=0)
    before = ds.predict(model, data, batch_size=500)
    y = np.arange(len(data)) % 5
    ds.fit(model, data, y, loss="categorical_cross_entropy", batch_size=100, epochs=1,
           progress=False)  # fmt: skip
    after = ds.predict(model, data, batch_size=500)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _eager(model, data), rtol=1e-5, atol=1e-6)


def test_replaced_parameters_and_activations_are_traced_again(data):
    model = ds.nn.mlp([40, 32, 5], output_activation="softmax", seed=0)
    ds.predict(model, data, batch_size=500)
    layer = model.layers[0]
    layer.weight = ds.Tensor(layer.weight.data * 2, requires_grad=True)  # a new tensor
    np.testing.assert_allclose(
        ds.predict(model, data, batch_size=500), _eager(model, data), rtol=1e-5, atol=1e-6
    )
    layer.activation, layer.activation_fn = "tanh", ds.nn.get_activation("tanh")
    np.testing.assert_allclose(
        ds.predict(model, data, batch_size=500), _eager(model, data), rtol=1e-5, atol=1e-6
    )
    model.layers[1].weight.data = model.layers[1].weight.data.astype(np.float64)  # new dtype
    np.testing.assert_allclose(
        ds.predict(model, data, batch_size=500), _eager(model, data), rtol=1e-5, atol=1e-6
    )


def test_the_kept_passes_go_with_the_model(data):
    model = ds.nn.mlp([40, 32, 5], output_activation="softmax", seed=0)
    ds.predict(model, data, batch_size=500)
    assert any(key is model for key in list(inference._FORWARDS.keys()))
    freed = weakref.ref(model)
    del model
    gc.collect()
    # the cache kept nothing alive: the model is freed, and with it its entry (other tests'
    # models may go at the same collection, so the entries are not counted)
    assert freed() is None


def test_passes_larger_than_the_limit_are_not_kept(data, monkeypatch):
    monkeypatch.setattr(inference, "PREDICT_CACHE_BYTES", 1000)
    model = ds.nn.mlp([40, 32, 5], output_activation="softmax", seed=0)
    ds.predict(model, data, batch_size=500)
    assert model not in inference._FORWARDS


def test_a_model_of_other_layers_is_not_kept(data):
    class Twice(ds.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = ds.nn.Dense(40, 5, seed=0)

        def forward(self, x):
            return self.inner(x) * 2

    model = Twice()
    np.testing.assert_allclose(
        ds.predict(model, data, batch_size=500), _eager(model, data), rtol=1e-5, atol=1e-6
    )
    assert model not in inference._FORWARDS


def test_threads_predicting_with_one_model_at_once_each_get_their_own_answer():
    rng = np.random.default_rng(1)
    model = ds.nn.mlp([40, 64, 5], output_activation="softmax", seed=0)
    inputs = [rng.random((4000, 40), dtype=np.float32) for _ in range(4)]
    expected = [_eager(model, X) for X in inputs]
    got: dict[int, np.ndarray] = {}

    def work(i):
        for _ in range(5):
            got[i] = ds.predict(model, inputs[i], batch_size=300)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_allclose(got[i], expected[i], rtol=1e-5, atol=1e-6)
