"""The Recorder callback: snapshots (bounded), per-layer gradient norms and update ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds


@pytest.fixture
def data():
    X, y = ds.datasets.moons(48, seed=0)
    return X, y


def _model():
    return ds.nn.mlp([2, 5, 2], output_activation="softmax", seed=0)


def _fit(model, X, y, rec, **kw):
    args = dict(loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.2), batch_size=8,
                epochs=2, seed=0, callbacks=[rec], progress=False)  # fmt: skip
    args.update(kw)
    return ds.fit(model, X, y, **args)


def test_snapshots_start_every_update_and_end(data):
    X, y = data
    model = _model()
    start = ds.Recorder().flatten(model)
    rec = ds.Recorder(every=1)
    h = _fit(model, X, y, rec)
    assert h.n_updates == 12
    assert rec.snapshots.shape == (13, 2 * 5 + 5 + 5 * 2 + 2)
    assert rec.snapshot_steps.tolist() == list(range(13))
    np.testing.assert_array_equal(rec.snapshots[0], start)
    np.testing.assert_array_equal(rec.snapshots[-1], rec.flatten(model))
    assert rec.param_names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    back = rec.unflatten(rec.snapshots[-1])
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(back[name], p.data)


def test_every_k_keeps_the_end(data):
    X, y = data
    rec = ds.Recorder(every=5)
    _fit(_model(), X, y, rec)
    assert rec.snapshot_steps.tolist() == [0, 5, 10, 12]


def test_compiled_and_eager_paths_record_the_same(data):
    # The compiled step reuses its .grad buffers: the recorder must reduce them in on_step_end.
    X, y = data
    recs = []
    for compiled in (True, False):
        rec = ds.Recorder()
        _fit(_model(), X, y, rec, compile=compiled)
        recs.append(rec)
    np.testing.assert_array_equal(recs[0].snapshots, recs[1].snapshots)
    for layer in ("0", "1"):
        np.testing.assert_allclose(recs[0].grad_norms[layer], recs[1].grad_norms[layer],
                                   rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(recs[0].update_ratios[layer], recs[1].update_ratios[layer],
                                   rtol=1e-6)  # fmt: skip
    # Not one value repeated for every update (which a kept reference to the buffer would give).
    assert len(np.unique(recs[0].grad_norms["0"])) == len(recs[0].grad_norms["0"])


def test_first_grad_norm_and_ratio_match_backprop(data):
    X, y = data
    model = ds.nn.mlp([2, 5, 2], output_activation="softmax", seed=0, dtype=np.float64)
    view = ds.backprop(model, X, y, "categorical_cross_entropy")
    before = {n: p.data.copy() for n, p in model.named_parameters().items()}
    rec = ds.Recorder()
    _fit(model, X, y, rec, batch_size="full", epochs=1, optimizer=ds.optim.GD(0.5))
    for i, layer in enumerate(view):
        g = math.sqrt(np.sum(layer.dC_dW**2) + np.sum(layer.dC_db**2))
        assert rec.grad_norms[str(i)][0] == pytest.approx(g, rel=1e-10)
        w = math.sqrt(np.sum(before[f"{i}.weight"] ** 2) + np.sum(before[f"{i}.bias"] ** 2))
        # Plain GD: the step is lr * g.
        assert rec.update_ratios[str(i)][0] == pytest.approx(0.5 * g / w, rel=1e-10)


def test_history_gets_the_per_update_numbers(data):
    X, y = data
    rec = ds.Recorder()
    h = _fit(_model(), X, y, rec)
    for key in ("grad_norm/0", "grad_norm/1", "update_ratio/0", "update_ratio/1"):
        assert len(h.step[key]) == h.n_updates == len(h.step["loss"])


def test_memory_is_bounded_by_thinning(data):
    X, y = data
    rec = ds.Recorder(every=1, max_snapshots=5)
    model = _model()
    start = ds.Recorder().flatten(model)
    _fit(model, X, y, rec, batch_size=4, epochs=2)  # 24 updates
    n_params = start.size
    assert len(rec.snapshots) <= 5
    assert rec.memory_bound == 5 * n_params * 4
    assert rec.snapshots.nbytes <= rec.memory_bound
    np.testing.assert_array_equal(rec.snapshots[0], start)
    np.testing.assert_array_equal(rec.snapshots[-1], rec.flatten(model))
    steps = rec.snapshot_steps
    assert steps[0] == 0 and steps[-1] == 24
    # Evenly spaced on the current interval, apart from the final snapshot.
    assert all(s % rec.interval == 0 for s in steps[:-1])
    assert np.all(np.diff(steps) > 0)


def test_a_new_fit_starts_a_new_record(data):
    X, y = data
    rec = ds.Recorder()
    _fit(_model(), X, y, rec)
    _fit(_model(), X, y, rec, epochs=1)
    assert len(rec.snapshots) == 7 and len(rec.grad_norms["0"]) == 6


def test_norms_can_be_switched_off(data):
    X, y = data
    rec = ds.Recorder(norms=False)
    h = _fit(_model(), X, y, rec)
    assert rec.grad_norms == {} and "grad_norm/0" not in h.step
    assert len(rec.snapshots) == 13


@pytest.mark.parametrize(
    "kwargs", [{"every": 0}, {"every": 1.5}, {"max_snapshots": 2}, {"max_snapshots": True}]
)
def test_bad_arguments_are_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ds.Recorder(**kwargs)


def test_exported_from_descend_and_train():
    assert ds.Recorder is ds.train.Recorder
