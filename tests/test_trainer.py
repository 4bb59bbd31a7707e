"""Trainer (one update: the textbook five lines), its executors, and the seams fit uses."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import descend as ds
from descend.train.trainer import Trainer

CCE = "categorical_cross_entropy"


def _model(seed=0, dtype=np.float32):
    return ds.nn.mlp([2, 8, 3], output_activation="softmax", seed=seed, dtype=dtype)


class Residual(ds.nn.Module):
    """A model of the user's own (not a Sequential of Dense layers)."""

    def __init__(self):
        super().__init__()
        self.inner = ds.nn.Dense(2, 2, activation="tanh", seed=0)
        self.out = ds.nn.Dense(2, 3, activation="softmax", seed=1)

    def forward(self, x):
        return self.out(x + self.inner(x))


def test_the_eager_step_is_the_five_lines_of_the_textbook(blobs):
    X, y = blobs
    xb, yb = X[:16], y[:16]
    by_hand, model = _model(), _model()
    optimizer = ds.optim.Momentum(0.1, 0.9)
    trainer = Trainer(model, loss=CCE, optimizer=ds.optim.Momentum(0.1, 0.9), compile=False)
    for _ in range(3):
        by_hand.zero_grad()
        cost = ds.losses.categorical_cross_entropy(by_hand(xb), yb)
        cost.backward()
        optimizer.step(by_hand.parameters())
        assert trainer.step(xb, yb) == float(cost.data)
    for p, q in zip(model.parameters(), by_hand.parameters(), strict=True):
        assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
    # what it computed stays visible: the cost with its graph, the output before the update
    assert trainer.cost.op is not None and trainer.output.shape == (16, 3)
    assert (trainer.executor, trainer.why_eager, trainer.plan) == ("eager", "compile=False", None)
    assert trainer.n_steps == 3 and trainer.optimizer.iterations == 3
    # and its code reads as those lines, in that order
    source = inspect.getsource(Trainer.step)
    lines = ["self.model.zero_grad()", "self.model(xb)", "self._cost(pred, yb)",
             "cost.backward()", "self.optimizer.step(self.params)"]  # fmt: skip
    positions = [source.index(line) for line in lines]
    assert positions == sorted(positions)


def test_the_compiled_step_gives_the_eager_numbers(blobs):
    X, y = blobs
    models = [_model(), _model()]
    trainers = [
        Trainer(m, loss=CCE, optimizer="adam", compile=c)
        for m, c in zip(models, (True, False), strict=True)
    ]
    for start in range(0, 64, 16):
        costs = [t.step(X[start : start + 16], y[start : start + 16]) for t in trainers]
        assert costs[0] == costs[1]
    assert [t.executor for t in trainers] == ["compiled", "eager"]
    assert trainers[0].why_eager is None and trainers[0].cost is None
    assert np.array_equal(trainers[0].output, trainers[1].output)
    for p, q in zip(*(m.parameters() for m in models), strict=True):
        assert np.array_equal(p.data, q.data)


class OutsideTheTable(ds.nn.Module):
    """Squares its inputs with NumPy on the arrays: no primitive the compiled step could replay."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = ds.nn.Dense(2, 3, activation="softmax", seed=0)

    def forward(self, x):
        return self.layer(ds.Tensor(np.asarray(x) ** 2))


def test_a_model_that_cannot_be_compiled_runs_eager_and_says_why(blobs):
    X, y = blobs
    trainer = Trainer(OutsideTheTable(), loss=CCE, optimizer=ds.optim.GD(0.1))
    trainer.step(X[:8], y[:8])
    assert trainer.executor == "eager" and trainer.plan is None
    assert "outside the table" in trainer.why_eager
    compiled = Trainer(Residual(), loss=CCE, optimizer=ds.optim.GD(0.1))  # any model of the table
    compiled.step(X[:8], y[:8])
    assert compiled.executor == "compiled" and compiled.plan is not None
    h = ds.fit(OutsideTheTable(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), progress=False)
    assert h.params["executor"] == "eager" and "outside the table" in h.params["why_eager"]
    h = ds.fit(_model(), X, y, loss=CCE, optimizer=ds.optim.GD(0.1), progress=False)
    assert h.params["executor"] == "compiled" and "why_eager" not in h.params
    h = ds.fit(_model(), X, y, loss=CCE, progress=False, compile=False)
    assert (h.params["executor"], h.params["why_eager"]) == ("eager", "compile=False")


def test_a_step_that_diverges_changes_nothing_and_says_so(blobs):
    X, y = blobs
    for compile in (True, False):
        model = _model()
        before = [p.data.copy() for p in model.parameters()]
        trainer = Trainer(model, loss=CCE, optimizer=ds.optim.GD(0.1), compile=compile)
        bad = X[:4].copy()
        bad[1, 0] = np.inf
        with pytest.raises(ds.DivergenceError, match=r"update 0: .*lr=0\.1") as info:
            with np.errstate(all="ignore"):  # fit silences NumPy's own warnings the same way
                trainer.step(bad, y[:4])
        assert info.value.epoch is None and info.value.history is None
        assert trainer.n_steps == 0 and trainer.optimizer.iterations == 0
        for p, b in zip(model.parameters(), before, strict=True):
            assert np.array_equal(p.data, b)


def test_fit_counts_the_optimizers_steps_on_every_path(blobs):
    X, y = blobs
    schedule = ds.optim.StepDecay(0.1, step_size=3)
    for compile in (True, False):
        opt = ds.optim.GD(schedule)
        h = ds.fit(_model(), X, y, loss=CCE, optimizer=opt, batch_size=16, epochs=2,
                   progress=False, compile=compile)  # fmt: skip
        assert opt.iterations == h.n_updates == 20
        assert h.epoch["lr"][-1] == schedule(20)


def test_fused_is_a_deprecated_name_for_compile(blobs):
    X, y = blobs
    runs = []
    for kwargs in ({"compile": False}, {"fused": False}):
        model = _model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h = ds.fit(model, X, y, loss=CCE, epochs=2, seed=0, progress=False, **kwargs)
        runs.append((model.state_dict(), h.params["executor"], caught))
    assert not runs[0][2] and issubclass(runs[1][2][0].category, DeprecationWarning)
    assert "compile" in str(runs[1][2][0].message) and runs[1][1] == "eager"
    for name, value in runs[0][0].items():
        assert np.array_equal(value, runs[1][0][name])


def test_trainer_arguments_are_checked():
    with pytest.raises(TypeError, match="model must be a descend.nn.Module"):
        Trainer("not a model", loss=CCE)
    with pytest.raises(ValueError, match="loss"):
        Trainer(_model(), loss="no such cost")
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(ds.nn.Sequential(), loss=CCE)


# ------------------------------------------------------------------ public seams


def test_check_target_converts_as_the_cost_does_and_refuses_what_it_refuses():
    check = ds.losses.check_target
    labels = check(CCE, np.array([0, 2, 1]), (3, 3))
    assert labels.dtype == np.intp and labels.tolist() == [0, 2, 1]
    onehot = check("log_loss", np.eye(3), (3, 3), np.float64)
    assert onehot.dtype == np.float64
    binary = check("binary_cross_entropy", np.array([0, 1, 1]), (3, 1))
    assert binary.dtype == np.float32 and binary.shape == (3,)  # the target's own shape
    values = np.array([1.5, -2.0])
    assert check("mse", values, (2, 1)) is values
    with pytest.raises(ValueError, match="labels from 0 to 3"):
        check(CCE, np.array([0, 3]), (2, 3))
    with pytest.raises(ValueError, match=r"binary cross-entropy needs targets in \[0, 1\]"):
        check("log_loss", np.array([0, 2]), (2, 1))
    with pytest.raises(ValueError, match="shape"):
        check("mse", np.zeros(3), (2, 1))
    custom = np.array(["a", "b"])
    assert check(lambda p, t: p.sum(), custom, (2, 1)) is custom  # not a built-in: not checked


def test_a_loader_generator_can_be_set_and_continues_that_sequence():
    X = np.arange(20.0).reshape(10, 2)
    b = ds.data.Batches(X, batch_size=3, seed=0)
    b.generator = np.random.default_rng(7)
    other = ds.data.Batches(X, batch_size=3, seed=7)
    for _ in range(2):
        assert [xb.tolist() for xb, _ in b] == [xb.tolist() for xb, _ in other]
    assert b.generator is not other.generator
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator"):
        b.generator = 7


def test_train_imports_no_private_name_of_another_package():
    import ast
    from pathlib import Path

    train = Path(ds.__file__).parent / "train"
    found = []
    for path in train.glob("*.py"):
        if path.name in ("fused.py", "_fused_shim.py"):
            continue  # the hand-written step and its door, both replaced by descend.compile
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("descend."):
                inside = node.module.startswith("descend.train")
                found += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not inside
                ]
            if isinstance(node, ast.Attribute) and node.attr in ("_rng", "_count_step", "_prepare"):
                found.append(f"{path.name}: .{node.attr}")
    assert not found


def test_every_target_is_checked_before_training_also_those_split_off(blobs):
    X, y = blobs
    y = y.copy()
    y[-1] = 7  # a label the model's 3 outputs cannot take, among the validation samples
    model = _model()
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"^y does not fit the cost categorical_cross_entropy"):
        ds.fit(model, X, y, loss=CCE, validation_split=0.2, progress=False)
    assert all(np.array_equal(p.data, before[n]) for n, p in model.named_parameters().items())
