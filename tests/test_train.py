"""fit / evaluate / predict, History, callbacks, divergence, determinism, accuracy on real data."""

from __future__ import annotations

import io

import numpy as np
import pytest

import descend as ds

CCE = "categorical_cross_entropy"


def small_model(seed=0, dtype=np.float32, out=3, act="softmax"):
    return ds.nn.mlp([2, 8, out], output_activation=act, seed=seed, dtype=dtype)


def test_update_counts_of_the_three_variants(blobs):
    X, y = blobs  # 150 samples
    for batch_size, per_epoch in (("full", 1), (1, 150), (32, 5), (150, 1), (7, 22)):
        h = ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1),
                   batch_size=batch_size, epochs=3, progress=False)  # fmt: skip
        assert h.n_updates == 3 * per_epoch
        assert len(h.step["loss"]) == 3 * per_epoch
        assert len(h.epoch["loss"]) == 3
        assert sum(h.step["batch_size"]) == 3 * 150


def test_epoch_loss_is_the_sample_weighted_mean_of_the_step_losses(blobs):
    X, y = blobs
    h = ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=32,
               epochs=2, progress=False)  # fmt: skip
    steps = np.array(h.step["loss"])[:5]
    sizes = np.array(h.step["batch_size"])[:5]
    assert h.epoch["loss"][0] == pytest.approx(float((steps * sizes).sum() / sizes.sum()))


def test_one_full_batch_step_equals_the_gradient_descent_formula(blobs):
    X, y = blobs
    X = X.astype(np.float64)
    model = small_model(dtype=np.float64)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    cost = ds.losses.categorical_cross_entropy(model(X), y)
    cost.backward()
    grads = {k: p.grad.copy() for k, p in model.named_parameters().items()}
    model.load_state_dict(before)
    ds.fit(model, X, y, loss=CCE, optimizer=ds.optim.GD(0.3), batch_size="full", epochs=1,
           progress=False)  # fmt: skip
    for name, p in model.named_parameters().items():
        np.testing.assert_allclose(p.data, before[name] - 0.3 * grads[name], rtol=1e-12)


def test_same_seed_gives_bit_identical_weights(blobs):
    X, y = blobs
    results = []
    for _ in range(2):
        model = small_model()
        h = ds.fit(model, X, y, loss=CCE, optimizer="adam", lr=0.01, batch_size=16, epochs=3,
                   seed=123, progress=False)  # fmt: skip
        results.append((model.state_dict(), h.step["loss"]))
    for name in results[0][0]:
        assert np.array_equal(results[0][0][name], results[1][0][name])
    assert results[0][1] == results[1][1]
    other = small_model()
    ds.fit(other, X, y, loss=CCE, optimizer="adam", lr=0.01, batch_size=16, epochs=3, seed=124,
           progress=False)  # fmt: skip
    assert not np.array_equal(other.state_dict()["0.weight"], results[0][0]["0.weight"])


def test_each_epoch_gets_a_new_order(blobs):
    X, y = blobs
    orders = []

    class SeeBatches(ds.Callback):
        def on_epoch_begin(self, epoch, logs):
            orders.append([])

    # Record the first label of each batch through the loss (a callable loss sees the batch on
    # the eager path; a compiled step runs the cost's Python only when it traces it).
    def loss(pred, target):
        orders[-1].append(int(target[0]))
        return ds.losses.categorical_cross_entropy(pred, target)

    ds.fit(small_model(), X, y, loss=loss, optimizer=ds.optim.GD(0.01), batch_size=1, epochs=2,
           seed=0, callbacks=[SeeBatches()], progress=False, metrics=None,
           compile=False)  # fmt: skip
    assert orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(y.tolist())


def test_digits_0_to_9_reach_096_test_accuracy_with_mini_batches():
    X, y = ds.datasets.digits()
    X_tr, X_te, y_tr, y_te = ds.datasets.train_test_split(X, y, test_size=0.25, stratify=True,
                                                          seed=0)  # fmt: skip
    model = ds.nn.mlp([64, 64, 10], output_activation="softmax", seed=0)
    ds.fit(model, X_tr, y_tr, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=32, epochs=40,
           seed=0, progress=False)  # fmt: skip
    assert ds.evaluate(model, X_te, y_te, loss=CCE)["accuracy"] >= 0.96


def test_digits_0_to_3_reach_098_test_accuracy_with_mini_batches():
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    X_tr, X_te, y_tr, y_te = ds.datasets.train_test_split(X, y, test_size=0.25, stratify=True,
                                                          seed=0)  # fmt: skip
    model = ds.nn.mlp([64, 32, 4], output_activation="softmax", seed=0)
    ds.fit(model, X_tr, y_tr, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=32, epochs=20,
           seed=0, progress=False)  # fmt: skip
    assert ds.evaluate(model, X_te, y_te, loss=CCE)["accuracy"] >= 0.98


def test_breast_cancer_binary_and_diabetes_regression_learn():
    X, y = ds.datasets.breast_cancer()
    X_tr, X_te, y_tr, y_te = ds.datasets.train_test_split(X, y, stratify=True, seed=0)
    X_tr, X_te = ds.datasets.standardize(X_tr, X_te)
    model = ds.nn.mlp([30, 16, 1], output_activation="sigmoid", seed=0)
    ds.fit(model, X_tr, y_tr, loss="binary_cross_entropy", optimizer="adam", lr=0.01,
           batch_size=32, epochs=20, seed=0, progress=False)  # fmt: skip
    assert ds.evaluate(model, X_te, y_te, loss="binary_cross_entropy")["accuracy"] > 0.94

    X, y = ds.datasets.diabetes()
    X_tr, X_te, y_tr, y_te = ds.datasets.train_test_split(X, y, seed=0)
    X_tr, X_te = ds.datasets.standardize(X_tr, X_te)
    scale = y_tr.std()
    model = ds.nn.mlp([10, 16, 1], seed=0)
    ds.fit(model, X_tr, y_tr / scale, loss="mse", optimizer="adam", lr=0.01, batch_size=32,
           epochs=50, seed=0, progress=False, metrics=["r2"])  # fmt: skip
    assert ds.evaluate(model, X_te, y_te / scale, loss="mse", metrics="r2")["r2"] > 0.35


def test_validation_data_and_split_give_val_keys(blobs):
    X, y = blobs
    h = ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), epochs=2,
               validation_split=0.2, progress=False)  # fmt: skip
    assert set(h.epoch) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert h.params["n_samples"] == 120
    model = small_model()
    h = ds.fit(model, X, y, loss=CCE, optimizer=ds.optim.GD(0.1), epochs=1,
               validation_data=(X[:30], y[:30]), progress=False)  # fmt: skip
    expected = ds.evaluate(model, X[:30], y[:30], loss=CCE)
    assert h.epoch["val_loss"][-1] == pytest.approx(expected["loss"])
    assert h.epoch["val_accuracy"][-1] == pytest.approx(expected["accuracy"])


def test_evaluate_in_chunks_equals_all_at_once(blobs):
    X, y = blobs
    model = small_model()
    whole = ds.evaluate(model, X, y, loss=CCE)
    chunked = ds.evaluate(model, X, y, loss=CCE, batch_size=7)
    assert chunked["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert chunked["accuracy"] == whole["accuracy"]
    np.testing.assert_allclose(ds.predict(model, X, batch_size=7), ds.predict(model, X),
                               rtol=1e-6)  # fmt: skip


def test_predict_gives_probabilities_and_builds_no_graph(blobs):
    X, _ = blobs
    p = ds.predict(small_model(), X)
    assert isinstance(p, np.ndarray) and p.shape == (150, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_callback_hooks_are_called_in_order_with_documented_keys(blobs):
    X, y = blobs
    calls = []

    class Spy(ds.Callback):
        def on_train_begin(self, logs):
            calls.append(("train_begin", set(logs)))

        def on_epoch_begin(self, epoch, logs):
            calls.append(("epoch_begin", epoch, set(logs)))

        def on_step_end(self, step, logs):
            calls.append(("step", step, set(logs)))

        def on_epoch_end(self, epoch, logs):
            calls.append(("epoch_end", epoch, set(logs)))

        def on_train_end(self, logs):
            calls.append(("train_end",))

    ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=75, epochs=2,
           validation_split=0.2, callbacks=[Spy()], progress=False)  # fmt: skip
    kinds = [c[0] for c in calls]
    assert kinds == [
        "train_begin", "epoch_begin", "step", "step", "epoch_end",
        "epoch_begin", "step", "step", "epoch_end", "train_end",
    ]  # fmt: skip
    assert calls[0][1] == {"epochs", "steps_per_epoch", "n_samples", "batch_size"}
    assert calls[1][2] == {"lr"}
    assert calls[2][2] == {"loss", "batch_size", "epoch", "lr"}
    assert [c[1] for c in calls if c[0] == "step"] == [0, 1, 2, 3]
    assert calls[4][2] == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}


def test_early_stopping_stops_and_restores_the_best_weights(blobs):
    X, y = blobs
    snapshots = []

    class Keep(ds.Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots.append((logs["val_loss"], self.model.state_dict()))

    stop = ds.EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    model = small_model()
    # A learning rate this large makes the validation loss go up and down.
    h = ds.fit(model, X, y, loss=CCE, optimizer=ds.optim.GD(3.0), batch_size=8, epochs=60,
               validation_split=0.3, seed=0, callbacks=[Keep(), stop], progress=False)  # fmt: skip
    assert h.stopped_early and h.n_epochs < 60
    assert stop.stopped_epoch == h.n_epochs - 1
    losses = [s[0] for s in snapshots]
    best = int(np.argmin(losses))
    assert stop.best_epoch == best
    for name, value in snapshots[best][1].items():
        assert np.array_equal(model.state_dict()[name], value)


def test_early_stopping_without_validation_data_says_how_to_fix(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="validation_split"):
        ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), epochs=2,
               callbacks=[ds.EarlyStopping()], progress=False)  # fmt: skip


def test_divergence_stops_with_the_step_and_keeps_finite_parameters():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32) * 10
    y = X @ np.array([1.0, -2.0, 3.0], dtype=np.float32)
    model = ds.nn.mlp([3, 16, 1], seed=0)
    finite_states = []

    class Keep(ds.Callback):
        def on_step_end(self, step, logs):
            finite_states.append(self.model.state_dict())

    with pytest.raises(ds.DivergenceError, match=r"update \d+ .*smaller learning rate") as info:
        ds.fit(model, X, y, loss="mse", optimizer=ds.optim.GD(1.0), batch_size=8, epochs=50,
               callbacks=[Keep()], progress=False)  # fmt: skip
    err = info.value
    assert err.lr == 1.0 and err.step == len(finite_states)
    assert err.history.n_updates == err.step
    for name, p in model.named_parameters().items():
        assert np.isfinite(p.data).all()
        assert np.array_equal(p.data, finite_states[-1][name])


def test_progress_bar_is_on_only_when_asked_or_in_a_terminal(blobs, capsys):
    X, y = blobs
    ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), epochs=1, progress=True)
    assert "update" not in capsys.readouterr().err  # pytest's stderr is not a terminal
    out = io.StringIO()
    ds.fit(small_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), epochs=2, progress=False,
           callbacks=[ds.ProgressBar(file=out)])  # fmt: skip
    text = out.getvalue()
    assert "10/10" in text and "epoch=2" in text


def test_a_custom_loss_and_metric_callable_train(blobs):
    X, y = blobs
    onehot = np.eye(3, dtype=np.float32)[y]

    def my_loss(pred, target):
        diff = pred - target
        return (diff * diff).sum() / pred.shape[0]

    def top1(y_true, y_pred):
        return float(np.mean(y_pred.argmax(1) == y_true.argmax(1)))

    model = small_model()
    h = ds.fit(model, X, onehot, loss=my_loss, optimizer=ds.optim.GD(0.5), batch_size=16,
               epochs=30, metrics=[top1], seed=0, progress=False)  # fmt: skip
    assert h.epoch["top1"][-1] > 0.9
    assert h.epoch["loss"][-1] < h.epoch["loss"][0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1000}, "batch_size"),
        ({"batch_size": "half"}, "batch_size"),
        ({"loss": "hinge"}, "not a known cost.*categorical_cross_entropy"),
        ({"optimizer": "adamax"}, "adamax"),
        ({"optimizer": "gd", "lr": -0.1}, "lr"),
        ({"optimizer": "gd", "lr": 0.0}, "lr"),
        ({"validation_split": 1.5}, "validation_split"),
        ({"metrics": ["f1"]}, "not a known metric"),
    ],
)
def test_bad_arguments_name_the_argument(blobs, kwargs, match):
    X, y = blobs
    args = {"loss": CCE, "optimizer": "gd", "epochs": 1, "progress": False} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        ds.fit(small_model(), X, y, **args)


def test_bad_data_names_the_argument(blobs):
    X, y = blobs
    fit = lambda X, y, **kw: ds.fit(  # noqa: E731
        small_model(**kw), X, y, loss=CCE, optimizer="gd", progress=False
    )
    with pytest.raises(ValueError, match="X"):
        fit(X[:, 0], y)  # 1-D X
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="X"):
        fit(bad, y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        fit(X, y[:-1])
    with pytest.raises(ValueError, match="labels from 0 to 5 but the model has 3 outputs"):
        fit(X, np.where(y == 2, 5, y))
    with pytest.raises(ValueError, match="in_features"):
        ds.fit(ds.nn.mlp([5, 3], output_activation="softmax"), X, y, loss=CCE, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ds.fit(small_model(out=1, act="sigmoid"), X, y.astype(float) * 2,
               loss="binary_cross_entropy", progress=False)  # fmt: skip
    with pytest.raises(TypeError, match="model"):
        ds.fit("mlp", X, y, loss=CCE, progress=False)


def test_memory_mapped_data_trains_like_in_memory(blobs, tmp_path):
    X, y = blobs
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    a, b = small_model(), small_model()
    ds.fit(a, X, y, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=16, epochs=2, seed=0,
           progress=False)  # fmt: skip
    ds.fit(b, Xm, y, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=16, epochs=2, seed=0,
           progress=False)  # fmt: skip
    for name, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[name])


def test_a_float64_memory_map_stays_on_disk_for_a_float32_model(tmp_path):
    """fit's checks turn the map into a view; it must still be seen as a map (cast per batch),
    not copied whole into memory in the model's dtype."""
    from descend.data.validation import is_memory_mapped
    from descend.train import checks

    X, y = ds.datasets.moons(64, seed=0)
    np.save(tmp_path / "X.npy", X.astype(np.float64))
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = ds.nn.mlp([2, 4, 1], output_activation="sigmoid", seed=0)
    assert model.dtype == np.float32
    X_used, _, _ = checks.data(model, Xm, y, None, 0.0, ds.losses.binary_cross_entropy)
    assert is_memory_mapped(X_used) and X_used.dtype == np.float64


def test_fit_is_a_short_loop():
    # Issue 12: fit is a short loop over the Trainer (at most about 120 lines), with its set-up,
    # checks, resuming, the Ctrl-C guard and predict/evaluate in their own modules. Counted:
    # the lines of code of every function and class of train/loop.py, without docstrings,
    # comments, blank lines and signatures.
    import ast
    import inspect

    from descend.train import loop

    source = inspect.getsource(loop)
    lines = source.splitlines()
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    counted = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            for i in range(node.body[0].lineno, node.end_lineno + 1):
                text = lines[i - 1].strip()
                counted += i not in docstrings and bool(text) and not text.startswith("#")
    assert 50 < counted <= 120, counted
