"""``fit`` through the compiled step gives the eager graph's numbers (formerly the fused step's
tests, now run against the plan derived from the table, through ``ds.fit``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import descend as ds
from descend.compile import CompiledStep, compile_forward, rewrites


def _data(n, d, out, task, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    if task == "softmax":
        return X, rng.integers(0, out, n)
    if task == "onehot":
        return X, np.eye(out, dtype=dtype)[rng.integers(0, out, n)]
    if task == "sigmoid":
        return X, rng.integers(0, 2, (n, out)).astype(dtype) if out > 1 else rng.integers(0, 2, n)
    return X, rng.normal(size=(n, out)).astype(dtype) if out > 1 else rng.normal(size=n)


CASES = [
    # hidden activations, output activation, loss, task, outputs
    (["relu"], "softmax", "categorical_cross_entropy", "softmax", 4),
    (["relu", "tanh"], "softmax", "categorical_cross_entropy", "onehot", 3),
    (["sigmoid"], "softmax", "log_loss", "softmax", 3),
    (["leaky_relu"], "sigmoid", "binary_cross_entropy", "sigmoid", 1),
    (["tanh"], "sigmoid", "binary_cross_entropy", "sigmoid", 2),
    (["relu"], "sigmoid", "log_loss", "sigmoid", 1),
    (["relu", "relu"], None, "mse", "regression", 1),
    (["tanh"], "relu", "mse", "regression", 2),
    (["leaky_relu"], "sigmoid", "mse", "regression", 1),
    ([], "softmax", "categorical_cross_entropy", "softmax", 3),
]


def _model(hidden, out_act, out, dtype, seed=0, inputs=5, width=7):
    rng = np.random.default_rng(seed)
    sizes = [inputs] + [width] * len(hidden) + [out]
    layers = [
        ds.nn.Dense(a, b, activation=act, seed=rng, dtype=dtype)
        for a, b, act in zip(sizes[:-1], sizes[1:], [*hidden, out_act], strict=True)
    ]
    return ds.nn.Sequential(*layers)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", ["full", 1, 8])
@pytest.mark.parametrize(("hidden", "out_act", "loss", "task", "out"), CASES)
def test_compiled_and_eager_train_to_the_same_weights(hidden, out_act, loss, task, out, batch_size,
                                                    dtype):  # fmt: skip
    X, y = _data(30, 5, out, task, dtype)
    fused, graph = _model(hidden, out_act, out, dtype), _model(hidden, out_act, out, dtype)
    kwargs = dict(loss=loss, batch_size=batch_size, epochs=3, seed=1, progress=False)
    h_fused = ds.fit(fused, X, y, compile=True, optimizer=ds.optim.Momentum(0.05, 0.9), **kwargs)
    h_graph = ds.fit(graph, X, y, compile=False, optimizer=ds.optim.Momentum(0.05, 0.9), **kwargs)
    assert h_fused.params["executor"] == "compiled" and h_graph.params["executor"] == "eager"
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for name, value in graph.state_dict().items():
        np.testing.assert_allclose(fused.state_dict()[name], value, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(h_fused.step["loss"], h_graph.step["loss"], rtol=rtol)
    for key in h_graph.epoch:
        if key != "time":
            np.testing.assert_allclose(h_fused.epoch[key], h_graph.epoch[key], rtol=rtol)


def test_compiled_gradients_equal_backward_and_backprop_view():
    X, y = _data(16, 5, 3, "softmax", np.float64)
    model = _model(["relu", "sigmoid"], "softmax", 3, np.float64)
    loss = ds.losses.categorical_cross_entropy
    view = ds.backprop(model, X, y, "categorical_cross_entropy")
    before = ds.predict(model, X)
    step = CompiledStep(model, loss, ds.optim.GD(0.1), X, y)
    cost = step.run(X, y)
    compiled = {k: p.grad.copy() for k, p in model.named_parameters().items()}
    assert cost == view.cost
    for i, layer in enumerate(view):
        assert np.array_equal(compiled[f"{i}.weight"], layer.dC_dW)
        assert np.array_equal(compiled[f"{i}.bias"], layer.dC_db)
    np.testing.assert_array_equal(step.output, before)  # the output before the update


@pytest.mark.parametrize(
    ("model", "loss"),
    [
        (ds.nn.mlp([3, 4, 2], output_activation="softmax"), "mse"),
        (ds.nn.mlp([3, 4, 2], output_activation="softmax"), lambda p, t: ((p - t) ** 2).mean()),
        (ds.nn.Sequential(ds.nn.Dense(3, 4), ds.nn.Activation("relu"), ds.nn.Dense(4, 2)), "mse"),
        (ds.nn.Sequential(ds.nn.Dense(3, 2, bias=False)), "mse"),
        (ds.nn.Sequential(ds.nn.Dense(3, 4, activation="softmax"), ds.nn.Dense(4, 2)), "mse"),
        (ds.nn.Sequential(ds.nn.Dense(3, 2, activation=lambda z: z * 2)), "mse"),
    ],
)
def test_models_outside_the_former_fused_set_compile_and_train_as_the_graph(model, loss):
    # the fused step took only Dense stacks with built-in activations and a matching cost
    X, y = _data(12, 3, 2, "regression", np.float32)
    y = np.abs(y) / np.abs(y).max()
    twin = copy.deepcopy(model)
    kwargs = dict(loss=loss, optimizer="gd", lr=0.1, batch_size=4, epochs=2, progress=False, seed=0)
    h = ds.fit(model, X, y, **kwargs)
    h_eager = ds.fit(twin, X, y, compile=False, **kwargs)
    assert h.params["executor"] == "compiled" and h.step["loss"] == h_eager.step["loss"]
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_model_of_activation_layers_trains(blobs):
    X, y = blobs
    model = ds.nn.Sequential(
        ds.nn.Dense(2, 8, seed=0), ds.nn.Activation("tanh"), ds.nn.Dense(8, 3, seed=1),
        ds.nn.Activation("softmax"),
    )  # fmt: skip
    h = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
               batch_size=16, epochs=20, seed=0, progress=False)  # fmt: skip
    assert h.epoch["accuracy"][-1] > 0.95


def test_callbacks_see_the_compiled_gradients(blobs):
    X, y = blobs
    norms = []

    class GradNorms(ds.Callback):
        def on_step_end(self, step, logs):
            norms.append(float(np.linalg.norm(self.model[0].weight.grad)))

    model = ds.nn.mlp([2, 8, 3], output_activation="softmax", seed=0)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.1),
           batch_size=50, epochs=2, callbacks=[GradNorms()], progress=False)  # fmt: skip
    assert len(norms) == 6 and all(n > 0 for n in norms) and len(set(norms)) == 6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("hidden", "out_act", "loss", "task", "out"), CASES)
def test_compiled_prediction_equals_the_graph(hidden, out_act, loss, task, out, dtype):
    X, _ = _data(23, 5, out, task, dtype)
    model = _model(hidden, out_act, out, dtype)
    forward = compile_forward(model, X)
    with ds.no_grad():
        expected = model(X).data
    np.testing.assert_array_equal(forward(X), expected)
    # in chunks (23 rows in chunks of at most 4: five of 4, then 3), as ds.predict does: equal
    # to the graph on the same chunks (a BLAS may round a row differently in a product of
    # another number of rows: OpenBLAS's float32 matrix-vector product does, for one output)
    with ds.no_grad():
        chunked = np.concatenate([model(X[i : i + 4]).data for i in range(0, 20, 4)])
    np.testing.assert_array_equal(ds.predict(model, X, batch_size=4)[:20], chunked)
    np.testing.assert_allclose(ds.predict(model, X, batch_size=4), expected, rtol=1e-6, atol=1e-6)


def test_prediction_of_other_models_is_compiled_too():
    model = ds.nn.Sequential(ds.nn.Dense(3, 4), ds.nn.Activation("relu"), ds.nn.Dense(4, 2))
    X = np.ones((5, 3), np.float32)
    assert [op.prim.name for op in compile_forward(model, X).plan.ops] == [
        "linear",
        "relu",
        "linear",
    ]
    with ds.no_grad():
        np.testing.assert_array_equal(ds.predict(model, X), model(X).data)


# --- plain gradient descent folded into the weight product (the fold_gd rewrite) -----------------
# A weight must be large enough (more than rewrites.FOLD_MIN_WEIGHT entries) to take its step
# straight from a_prev and dC/dz (one gemm, or ger for one sample) instead of from dC/dW. The
# tests lower that bound, so that both layers of a 300-120-k network (36,000 and 1,200 entries)
# take it at small batches: their float32 rounding stays within the tolerances below.

WIDE_CASES = [
    # hidden activations, output activation, loss, task, outputs
    (["relu"], "softmax", "categorical_cross_entropy", "softmax", 10),
    (["relu"], "softmax", "categorical_cross_entropy", "onehot", 4),
    (["tanh", "leaky_relu"], "sigmoid", "binary_cross_entropy", "sigmoid", 1),
    (["sigmoid"], None, "mse", "regression", 2),
]


def _wide_model(hidden, out_act, out, dtype):
    return _model(hidden, out_act, out, dtype, inputs=300, width=120)


@pytest.fixture
def count_in_place(monkeypatch):
    """How many weight updates were applied straight from a_prev and dC/dz."""
    from descend.compile.backend import GemmUpdate

    monkeypatch.setattr(rewrites, "FOLD_MIN_WEIGHT", 1000)

    calls = [0]
    original = GemmUpdate.__call__

    def counting(self, *args):
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(GemmUpdate, "__call__", counting)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 8, "full"])
@pytest.mark.parametrize(("hidden", "out_act", "loss", "task", "out"), WIDE_CASES)
def test_gd_inside_the_step_trains_as_the_graph(hidden, out_act, loss, task, out, batch_size,
                                                 dtype, count_in_place):  # fmt: skip
    X, y = _data(40, 300, out, task, dtype)
    fast, graph = _wide_model(hidden, out_act, out, dtype), _wide_model(hidden, out_act, out, dtype)
    kwargs = dict(loss=loss, batch_size=batch_size, epochs=2, seed=3, progress=False)
    h_fast = ds.fit(fast, X, y, optimizer=ds.optim.GD(0.05), **kwargs)
    h_graph = ds.fit(graph, X, y, compile=False, optimizer=ds.optim.GD(0.05), **kwargs)
    if batch_size != "full":  # small batches: the in-place step was taken
        assert count_in_place[0] >= h_fast.n_updates
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for name, value in graph.state_dict().items():
        # relative to each array's scale: an entry near 0 carries the rounding of its neighbours
        atol = rtol * np.abs(value).max()
        np.testing.assert_allclose(fast.state_dict()[name], value, rtol=rtol, atol=atol)
    # a cost near 0 is a difference of terms near 1: its rounding is absolute, not relative
    np.testing.assert_allclose(h_fast.step["loss"], h_graph.step["loss"], rtol=rtol, atol=rtol / 10)
    # after fit, .grad holds the last update's gradient, as after the graph's last backward()
    for (name, p), q in zip(fast.named_parameters().items(), graph.parameters(), strict=True):
        atol = rtol * np.abs(q.grad).max()
        np.testing.assert_allclose(p.grad, q.grad, rtol=rtol, atol=atol, err_msg=name)
    assert fast.layers[0].weight.grad.shape == fast.layers[0].weight.shape


def test_gd_inside_the_step_follows_a_learning_rate_schedule(count_in_place):
    X, y = _data(32, 300, 10, "softmax", np.float64)
    fast, graph = (_wide_model(["relu"], "softmax", 10, np.float64) for _ in range(2))
    schedule = ds.optim.schedules.ExponentialDecay(0.1, 0.5)
    opts = ds.optim.GD(schedule), ds.optim.GD(schedule)
    for model, opt, compiled in ((fast, opts[0], True), (graph, opts[1], False)):
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=opt, batch_size=4,
               epochs=2, seed=0, progress=False, compile=compiled)  # fmt: skip
    assert count_in_place[0] > 0
    assert opts[0].iterations == opts[1].iterations == 16
    for a, b in zip(fast.parameters(), graph.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)


def test_built_in_callbacks_keep_gd_inside_the_step_and_others_take_the_gradients(
    count_in_place, tmp_path
):
    X, y = _data(32, 300, 10, "softmax", np.float32)
    quiet = [
        ds.EarlyStopping(monitor="loss", patience=5),
        ds.Checkpoint(tmp_path / "run.npz", every=1),
    ]
    ds.fit(_wide_model(["relu"], "softmax", 10, np.float32), X, y, loss="categorical_cross_entropy",
           optimizer=ds.optim.GD(0.1), batch_size=8, epochs=1, callbacks=quiet,
           progress=False)  # fmt: skip
    assert count_in_place[0] == 2 * 4  # both layers, at each of the 4 updates
    norms = []
    reads = ds.LambdaCallback(on_step_end=lambda s, logs: norms.append(float(
        np.linalg.norm(model.layers[0].weight.grad))))  # fmt: skip
    model = _wide_model(["relu"], "softmax", 10, np.float32)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.1),
           batch_size=8, epochs=1, callbacks=[reads], progress=False)  # fmt: skip
    assert count_in_place[0] == 2 * 4  # a callback that may read .grad: gradients written out
    assert len(norms) == 4 and all(n > 0 for n in norms)


def test_a_diverging_update_inside_the_step_changes_nothing():
    # A hidden unit reaches +inf, the next layer sends it to -inf and ReLU to 0: the cost stays
    # finite, but dC/dW of the next layer is inf * 0 = NaN. No parameter may change.
    model = ds.nn.mlp([300, 120, 120, 10], output_activation="softmax", seed=0)
    model.layers[0].weight.data[:, 0] = 1e30
    model.layers[1].weight.data[0, :] = -1.0
    X = np.full((4, 300), 1e10, np.float32)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ds.DivergenceError, match="a gradient"):
        ds.fit(model, X, np.arange(4), loss="categorical_cross_entropy",
               optimizer=ds.optim.GD(0.1), batch_size=2, epochs=1, progress=False)  # fmt: skip
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# --- large batches: the sum of per-shard gradients, row blocks on the cores (the shards rewrite) --


@pytest.fixture
def count_blocked(monkeypatch):
    calls = [0]
    original = CompiledStep._sharded

    def counting(self, X, y, blocks):
        calls[0] += 1
        return original(self, X, y, blocks)

    monkeypatch.setattr(CompiledStep, "_sharded", counting)
    monkeypatch.setenv("DESCEND_THREADS", "2")  # cut into blocks even on one core
    # and batches of the test's size (3,000 rows of a 300-120-k network) cut too
    monkeypatch.setattr(rewrites, "SHARD_MIN_FLOPS", 1e8)
    monkeypatch.setattr(rewrites, "SHARD_MIN_ROWS", 1024)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
@pytest.mark.parametrize(("hidden", "out_act", "loss", "task", "out"), WIDE_CASES)
def test_row_blocks_train_as_the_graph(hidden, out_act, loss, task, out, optimizer, dtype,
                                       count_blocked):  # fmt: skip
    X, y = _data(3000, 300, out, task, dtype)
    fast, graph = _wide_model(hidden, out_act, out, dtype), _wide_model(hidden, out_act, out, dtype)
    kwargs = dict(loss=loss, batch_size="full", epochs=3, progress=False, lr=0.05)
    metrics = ["accuracy"] if task != "regression" else ["mae"]
    h_fast = ds.fit(fast, X, y, optimizer=optimizer, metrics=metrics, **kwargs)
    h_graph = ds.fit(graph, X, y, compile=False, optimizer=optimizer, metrics=metrics, **kwargs)
    assert count_blocked[0] == 3
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for name, value in graph.state_dict().items():
        atol = rtol * np.abs(value).max()
        np.testing.assert_allclose(fast.state_dict()[name], value, rtol=rtol, atol=atol)
    for key in h_graph.epoch:
        if key != "time":
            np.testing.assert_allclose(h_fast.epoch[key], h_graph.epoch[key], rtol=rtol)
    for p, q in zip(fast.parameters(), graph.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=rtol, atol=rtol * np.abs(q.grad).max())


def test_row_blocks_give_the_same_bits_at_every_run(count_blocked):
    X, y = _data(3000, 300, 10, "softmax", np.float32)
    weights = []
    for _ in range(2):
        model = _wide_model(["relu"], "softmax", 10, np.float32)
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="gd", lr=0.1,
               batch_size="full", epochs=3, progress=False)  # fmt: skip
        weights.append(model.state_dict())
    assert count_blocked[0] == 6
    for name, value in weights[0].items():
        np.testing.assert_array_equal(weights[1][name], value, err_msg=name)


def test_a_freed_steps_row_blocks_serve_the_next_model_with_the_same_bits(count_blocked,
                                                                          monkeypatch):  # fmt: skip
    from descend.compile import step as step_module

    monkeypatch.setattr(step_module, "_IDLE", {})
    made = [0]
    original = step_module.rewrites.Runner

    class Counting(original):
        def __init__(self, *args, **kwargs):
            made[0] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(step_module.rewrites, "Runner", Counting)
    X, y = _data(3000, 300, 10, "softmax", np.float32)

    def trained(seed):
        model = _wide_model(["relu"], "softmax", 10, np.float32)
        for i, p in enumerate(model.parameters()):  # another model of the same structure
            p.data[...] = np.random.default_rng(seed + i).normal(0, 0.05, p.shape)
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="gd", lr=0.1,
               batch_size="full", epochs=2, progress=False)  # fmt: skip
        return model

    trained(0)
    first = made[0]
    assert first >= 2  # the blocks' runners (one per worker), made for the first model
    second = trained(1)
    assert made[0] == first  # the second model took them
    monkeypatch.setattr(step_module, "IDLE_BLOCKS_MAX_BYTES", -1)
    step_module._IDLE.clear()
    fresh = trained(1)
    assert made[0] > first
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(second.state_dict()[name], value, err_msg=name)


def test_row_blocks_stop_a_diverging_update_before_it_is_applied(count_blocked):
    X, y = _data(3000, 300, 10, "softmax", np.float32)
    model = _wide_model(["relu"], "softmax", 10, np.float32)
    after_first = {}
    keep = ds.LambdaCallback(on_step_end=lambda s, logs: after_first.update(
        {k: v.copy() for k, v in model.state_dict().items()}))  # fmt: skip
    # the first update makes the weights huge but finite; the second batch's outputs overflow
    with pytest.raises(ds.DivergenceError):
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="gd", lr=1e30,
               batch_size="full", epochs=2, progress=False, callbacks=[keep])  # fmt: skip
    assert count_blocked[0] == 2
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, after_first[name], err_msg=name)


def test_row_blocks_resume_from_a_checkpoint_to_the_same_bits(count_blocked, tmp_path):
    X, y = _data(3000, 300, 10, "softmax", np.float32)
    path = tmp_path / "run.npz"
    kwargs = dict(loss="categorical_cross_entropy", optimizer="gd", lr=0.1, batch_size="full",
                  progress=False)  # fmt: skip
    whole = _wide_model(["relu"], "softmax", 10, np.float32)
    h_whole = ds.fit(whole, X, y, epochs=4, **kwargs)
    first = _wide_model(["relu"], "softmax", 10, np.float32)
    ds.fit(first, X, y, epochs=2, callbacks=[ds.Checkpoint(path, every=1)], **kwargs)
    resumed = _wide_model(["relu"], "softmax", 10, np.float32)
    h_resumed = ds.fit(resumed, X, y, epochs=4, resume_from=path, **kwargs)
    assert count_blocked[0] == 4 + 2 + 2
    assert h_resumed.epoch["loss"] == h_whole.epoch["loss"]
    for name, value in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
