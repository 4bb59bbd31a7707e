"""Divergence that stays finite: a cost that explodes stops fit, and the model goes back to its
parameters from before the explosion (issue: GD(lr=100) on digits, Momentum on breast cancer and
a too-large rate on a line all ran on silently, or kept weights of 1e17)."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds
from descend.train import divergence


class EpochStarts(ds.Callback):
    """The parameters at the start of every epoch."""

    def __init__(self):
        self.states = []

    def on_epoch_begin(self, epoch, logs):
        self.states.append(self.model.state_dict())


def _same(model, state):
    return all(np.array_equal(p.data, state[n]) for n, p in model.named_parameters().items())


@pytest.mark.parametrize("compile", [True, False])
def test_gd_at_lr_100_on_digits_stops_and_goes_back_to_the_weights_before(compile):
    X, y = ds.datasets.digits()
    model = ds.nn.mlp([64, 32, 10], output_activation="softmax", seed=0)
    initial = model.state_dict()
    with pytest.raises(ds.DivergenceError, match=r"10,000 times its value .*lr=100 now") as info:
        ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(100),
               epochs=2, seed=0, progress=False, compile=compile)  # fmt: skip
    err = info.value
    assert err.what == "the cost" and err.value > 1e4 * err.history.step["loss"][0]
    assert err.step == err.history.n_updates and err.epoch == 0
    assert _same(model, initial)  # the explosion began in the first epoch


def test_momentum_in_float64_on_breast_cancer_stops_before_1e40():
    X, y = ds.datasets.breast_cancer(dtype=np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = ds.nn.mlp([30, 16, 1], output_activation="sigmoid", seed=0, dtype=np.float64)
    starts = EpochStarts()
    with pytest.raises(ds.DivergenceError, match=r"start of epoch (\d+)") as info:
        ds.fit(model, X, y, loss="binary_cross_entropy", optimizer=ds.optim.Momentum(1.0, 0.99),
               epochs=30, seed=0, progress=False, callbacks=[starts])  # fmt: skip
    back_to = int(info.value.args[0].split("start of epoch ")[1].split(",")[0])
    assert back_to < info.value.epoch and _same(model, starts.states[back_to])
    # every epoch before that one was calm: no cost above CALM times the start
    history = info.value.history
    start = max(history.step["loss"][:1])
    calm = history.step["loss"][: back_to * history.params["steps_per_epoch"]]
    assert max(calm) < divergence.CALM * start


def _line_fit(lr, epochs):
    """Chapter 4's line through data, by batch gradient descent from a fixed start: the model,
    its parameters at each epoch's start and the error."""
    x = np.linspace(-1.0, 3.0, 40)[:, None]
    y = 2.0 * x[:, 0] + 1.0 + np.sin(7 * x[:, 0])
    model = ds.nn.Sequential(ds.nn.Dense(1, 1))
    model[0].weight.data[...], model[0].bias.data[...] = -2.0, -1.5
    starts = EpochStarts()
    with pytest.raises(ds.DivergenceError) as info:
        ds.fit(model, x, y, loss="mse", optimizer=ds.optim.GD(lr), batch_size="full",
               epochs=epochs, progress=False, callbacks=[starts])  # fmt: skip
    losses = info.value.history.step["loss"]
    risen = next(i for i, c in enumerate(losses) if c >= divergence.CALM * losses[0])
    return model, starts.states, info.value, risen


def test_a_cost_that_climbs_is_stopped_far_below_overflow():
    model, states, err, risen = _line_fit(1.0, 5000)
    losses = err.history.step["loss"]
    assert (np.diff(losses) > 0).all() and err.value < 1e6 * losses[0]
    assert "10,000 times" in str(err) and f"start of epoch {risen}," in str(err)
    assert _same(model, states[risen])  # one update per epoch: from before the rise


def test_a_cost_that_rose_before_it_overflowed_goes_back_too(monkeypatch):
    # Without the explosion check the cost climbs to infinity; the parameters kept are still
    # those from before the rise, not the last finite ones (about 1e17 here).
    monkeypatch.setattr(divergence, "EXPLOSION", np.inf)
    model, states, err, risen = _line_fit(1.0, 5000)
    assert err.value == "not finite" or not np.isfinite(err.value)
    assert "had risen" in str(err) and err.step > risen + 5
    assert _same(model, states[risen])


def test_a_cost_that_jumps_to_infinity_keeps_the_last_finite_parameters():
    X = np.random.default_rng(0).normal(size=(32, 2)) * 100
    model = ds.nn.mlp([2, 1], seed=0)
    keep = ds.LambdaCallback(on_step_end=lambda s, logs: last.append(model.state_dict()))
    last = [model.state_dict()]
    with pytest.raises(ds.DivergenceError, match="the last finite ones") as info:
        ds.fit(model, X, X.sum(axis=1) ** 2, loss="mse", optimizer=ds.optim.GD(10.0),
               batch_size=8, epochs=20, progress=False, callbacks=[keep], seed=0)  # fmt: skip
    assert info.value.step == 3  # before its first 32 samples: no start to compare with yet
    assert _same(model, last[-1])


def test_converging_runs_raise_no_alarm_even_with_noisy_single_samples():
    # batch size 1 on a regression whose first sample fits almost exactly: the start is the
    # largest cost of the first 32 samples, not the first one
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(3, size=200)
    model = ds.nn.mlp([3, 1], seed=0)
    y[0] = ds.predict(model, X[:1])[0, 0]
    h = ds.fit(model, X, y, loss="mse", optimizer=ds.optim.GD(0.01), batch_size=1, epochs=5,
               shuffle=False, seed=0, progress=False)  # fmt: skip
    assert h.step["loss"][0] < 1e-6 and max(h.step["loss"]) > 1e3 * h.step["loss"][0]
    assert h.epoch["loss"][-1] < h.epoch["loss"][0]


def test_a_resumed_run_finds_the_same_start(tmp_path):
    X, y = ds.datasets.breast_cancer(dtype=np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    path = tmp_path / "run.ckpt"

    def run(*callbacks, **kw):
        model = ds.nn.mlp([30, 16, 1], output_activation="sigmoid", seed=0, dtype=np.float64)
        with pytest.raises(ds.DivergenceError) as info:
            ds.fit(model, X, y, loss="binary_cross_entropy", epochs=30, seed=0, progress=False,
                   optimizer=ds.optim.Momentum(1.0, 0.99), callbacks=list(callbacks),
                   **kw)  # fmt: skip
        return info.value

    stop = ds.LambdaCallback(on_epoch_end=lambda e, logs: setattr(stop, "stop_training", e == 1))
    ds.fit(ds.nn.mlp([30, 16, 1], output_activation="sigmoid", seed=0, dtype=np.float64), X, y,
           loss="binary_cross_entropy", epochs=30, seed=0, progress=False,
           optimizer=ds.optim.Momentum(1.0, 0.99),
           callbacks=[stop, ds.Checkpoint(path)])  # fmt: skip
    whole, resumed = run(), run(resume_from=path)
    assert resumed.step == whole.step > 2 * whole.history.params["steps_per_epoch"]
    start = "times its value at the start ("
    number = [str(err).split(start)[1].split(")")[0] for err in (whole, resumed)]
    assert number[0] == number[1] == f"{whole.history.step['loss'][0]:.4g}"
    # the resumed call has no parameters from before its own start to go back to
    assert "start of epoch 1," in str(whole) and "start of epoch 2," in str(resumed)


def test_the_command_line_stops_a_finite_explosion_and_keeps_the_weights_before(capsys, tmp_path):
    from descend.cli import main

    X, y = ds.datasets.digits(classes=(0, 1, 2))
    csv = tmp_path / "digits.csv"
    header = ",".join([f"p{i}" for i in range(16)] + ["digit"])
    np.savetxt(csv, np.column_stack([X[:, :16], y]), delimiter=",", header=header, comments="",
               fmt="%g")  # fmt: skip
    out = tmp_path / "run"
    code = main(["train", str(csv), "--lr", "100", "--optimizer", "gd", "--seed", "0",
                 "--epochs", "5", "--no-figures", "--out", str(out), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "10,000 times its value at the start" in err and "lr=100 now" in err
    model = ds.load(out / "model.npz")  # as it was before the cost took off: weights of init size
    assert max(np.abs(p.data).max() for p in model.parameters()) < 2
