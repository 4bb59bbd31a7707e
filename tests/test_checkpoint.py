"""Checkpoints and exact resume; Ctrl-C ends fit cleanly at the last completed update."""

from __future__ import annotations

import json
import os
import signal
import threading
import zipfile

import numpy as np
import pytest

import descend as ds
from descend.data import batches

CCE = "categorical_cross_entropy"


@pytest.fixture(scope="module")
def moons():
    return ds.datasets.moons(53, seed=0)  # 53: batches of 7 leave a remainder of 4


def _optimizer(name):
    if name == "momentum":
        return ds.optim.Momentum(0.05, momentum=0.9, nesterov=True)
    if name == "adam":
        return ds.optim.Adam(0.01)
    return ds.optim.GD(ds.optim.StepDecay(0.1, step_size=5))


def _train(data, *, dtype=np.float32, batch_size=7, opt="adam", epochs=4, fused=True, **kw):
    X, y = data
    model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0, dtype=dtype)
    history = ds.fit(model, X, y, loss=CCE, optimizer=_optimizer(opt), batch_size=batch_size,
                     epochs=epochs, seed=3, validation_split=0.2, metrics=["accuracy"],
                     progress=False, compile=fused, **kw)  # fmt: skip
    return model, history


def _assert_same_run(a, b):
    (model_a, hist_a), (model_b, hist_b) = a, b
    for (name, p), q in zip(model_a.named_parameters().items(), model_b.parameters(), strict=True):
        assert p.dtype == q.dtype and np.array_equal(p.data, q.data), name
    assert hist_a.step == hist_b.step
    timeless = lambda h: {k: v for k, v in h.epoch.items() if k != "time"}  # noqa: E731
    assert timeless(hist_a) == timeless(hist_b)
    assert (hist_a.n_updates, hist_a.n_epochs) == (hist_b.n_updates, hist_b.n_epochs)
    executor = ("executor", "why_eager")  # which form of the step ran may differ
    same = [{k: v for k, v in h.params.items() if k not in executor} for h in (hist_a, hist_b)]
    assert same[0] == same[1]


class CrashAt(ds.Callback):
    """Raise ``error`` after update ``step`` (a crash, or Ctrl-C with KeyboardInterrupt)."""

    def __init__(self, step, error=RuntimeError):
        self.at, self.error = step, error

    def on_step_end(self, step, logs):
        if step == self.at:
            raise self.error("stop here")


# --- exact resume ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", ["full", 1, 7])
@pytest.mark.parametrize("opt", ["momentum", "adam"])
def test_a_crashed_run_resumed_from_its_checkpoint_equals_an_uninterrupted_one(
    moons, tmp_path, dtype, batch_size, opt
):
    straight = _train(moons, dtype=dtype, batch_size=batch_size, opt=opt)
    path = tmp_path / "run.ckpt"
    steps = straight[1].n_updates
    crash = steps // 2 + 1  # mid-epoch for 1 and 7; for "full", an update of epoch 3
    ckpt = ds.Checkpoint(path, every=2, unit="steps", save_on_end=False)
    with pytest.raises(RuntimeError, match="stop here"):
        _train(moons, dtype=dtype, batch_size=batch_size, opt=opt,
               callbacks=[ckpt, CrashAt(crash)])  # fmt: skip
    state = ds.load_checkpoint(path)
    assert state.step == crash + 1 - (crash + 1) % 2  # the last even count of updates
    resumed = _train(moons, dtype=dtype, batch_size=batch_size, opt=opt, resume_from=path)
    _assert_same_run(resumed, straight)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_ctrl_c_saves_the_run_and_resuming_it_equals_an_uninterrupted_one(
    moons, tmp_path, batch_size
):
    straight = _train(moons, batch_size=batch_size, opt="momentum")
    path = tmp_path / "run.ckpt"
    ckpt = ds.Checkpoint(path, every=100)  # only the save at the end (on Ctrl-C)
    model, history = _train(moons, batch_size=batch_size, opt="momentum",
                            callbacks=[ckpt, CrashAt(10, KeyboardInterrupt)])  # fmt: skip
    assert history.interrupted and history.n_updates == 11 and ckpt.n_saved == 1
    assert "interrupted=True" in repr(history)
    state = ds.load_checkpoint(path)
    assert state.position[2] == 11 and state.status == "saved"
    for p, q in zip(model.parameters(), state.model.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    _assert_same_run(_train(moons, batch_size=batch_size, opt="momentum", resume_from=path),
                     straight)  # fmt: skip


def test_resume_from_an_epoch_checkpoint_with_more_epochs_and_the_graph_path(moons, tmp_path):
    path = tmp_path / "run.ckpt"
    _train(moons, epochs=2, opt="schedule", fused=False, callbacks=[ds.Checkpoint(path)])
    assert ds.load_checkpoint(path).position == (2, 0, 12)
    longer = _train(moons, epochs=5, opt="schedule", fused=False, resume_from=path)
    _assert_same_run(longer, _train(moons, epochs=5, opt="schedule", fused=False))
    # The fused path gives the same numbers as the graph's.
    _assert_same_run(longer, _train(moons, epochs=5, opt="schedule", fused=True))
    # A finished run resumed with the same epochs has nothing left to do.
    model, history = _train(moons, epochs=2, opt="schedule", resume_from=path)
    assert history.n_updates == 12 and history.n_epochs == 2


def test_resume_after_the_last_batch_of_an_epoch_before_its_end(moons, tmp_path):
    path = tmp_path / "run.ckpt"
    # 6 batches per epoch (42 training samples, batch 7): a save after update 6 is at the end of
    # epoch 0's batches, before its validation and epoch record.
    with pytest.raises(RuntimeError):
        _train(moons, callbacks=[ds.Checkpoint(path, every=6, unit="steps"), CrashAt(6)])
    assert ds.load_checkpoint(path).position == (0, 6, 6)
    _assert_same_run(_train(moons, resume_from=path), _train(moons))


def test_checkpoint_content_is_a_model_file_plus_state_without_pickle(moons, tmp_path):
    path = tmp_path / "run.ckpt"
    model, history = _train(moons, epochs=2, callbacks=[ds.Checkpoint(path)])
    loaded = ds.load(path)
    for p, q in zip(model.parameters(), loaded.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        info = json.loads(z.read("checkpoint.json"))
    assert {"model.json", "checkpoint.json", "0.weight.npy", "optimizer.state.0.m.npy"} <= names
    assert all(z.compress_type == zipfile.ZIP_STORED for z in zipfile.ZipFile(path).infolist())
    with np.load(path, allow_pickle=False) as npz:  # an .npz: every array loads without pickle
        assert np.array_equal(npz["0.weight"], model[0].weight.data)
    assert info["rng"]["bit_generator"] == "PCG64"
    assert info["optimizer"]["config"]["class_name"] == "Adam"
    state = ds.load_checkpoint(path)
    assert state.history.step == history.step
    assert state.optimizer.iterations == history.n_updates
    assert state.fit["batch_size"] == 7 and state.fit["validation_samples"] == 11


def test_a_templated_path_keeps_one_file_per_save(moons, tmp_path):
    _train(moons, epochs=3, callbacks=[ds.Checkpoint(tmp_path / "e{epoch}-s{step}.ckpt")])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "e1-s6.ckpt", "e2-s12.ckpt", "e3-s18.ckpt",
    ]  # fmt: skip
    _assert_same_run(
        _train(moons, epochs=3, resume_from=tmp_path / "e1-s6.ckpt"), _train(moons, epochs=3)
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"batch_size": 5}, "batch_size"),
        ({"opt": "momentum"}, "Momentum"),
        ({"dtype": np.float64}, "dtype"),
        ({"epochs": 1}, "epochs=1.*already done 2 epochs"),
        ({"shuffle": False}, "shuffle"),
        ({"metrics": None}, "metrics"),
        ({"data": "fewer"}, "n_samples"),
    ],
)
def test_a_resume_that_does_not_match_the_checkpoint_says_what_differs(
    moons, tmp_path, change, match
):
    path = tmp_path / "run.ckpt"
    _train(moons, epochs=2, callbacks=[ds.Checkpoint(path)])
    X, y = moons
    data = (X[:40], y[:40]) if change.pop("data", None) else moons
    kwargs = {"resume_from": path, "epochs": 4} | change
    if "metrics" in kwargs or "shuffle" in kwargs:
        model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
        with pytest.raises(ValueError, match=match):
            ds.fit(model, *data, loss=CCE, optimizer=ds.optim.Adam(0.01), batch_size=7,
                   validation_split=0.2, progress=False,
                   **{"metrics": ["accuracy"]} | kwargs)  # fmt: skip
        return
    with pytest.raises(ValueError, match=match):
        _train(data, **kwargs)


def test_a_resume_with_another_architecture_or_learning_rate_is_refused(moons, tmp_path):
    X, y = moons
    path = tmp_path / "run.ckpt"
    _train(moons, epochs=1, callbacks=[ds.Checkpoint(path)])
    common = {"loss": CCE, "batch_size": 7, "epochs": 2, "validation_split": 0.2,
              "metrics": ["accuracy"], "progress": False, "resume_from": path}  # fmt: skip
    other = ds.nn.mlp([2, 9, 2], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="different model"):
        ds.fit(other, X, y, optimizer=ds.optim.Adam(0.01), **common)
    same = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="same optimizer and hyperparameters"):
        ds.fit(same, X, y, optimizer=ds.optim.Adam(0.02), **common)
    with pytest.raises(FileNotFoundError):
        ds.fit(same, X, y, optimizer=ds.optim.Adam(0.01), **common | {"resume_from": "nope"})


def test_a_failed_write_leaves_the_previous_checkpoint_intact(moons, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    _train(moons, epochs=1, callbacks=[ds.Checkpoint(path)])
    before = path.read_bytes()

    def disk_full(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        _train(moons, epochs=2, callbacks=[ds.Checkpoint(path)])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]


def test_divergence_keeps_the_last_checkpoint_and_the_last_finite_parameters(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 10
    y = X @ np.array([1.0, -2.0, 3.0])
    path = tmp_path / "run.ckpt"
    model = ds.nn.mlp([3, 16, 1], seed=0)
    states = []
    keep = ds.LambdaCallback(on_step_end=lambda s, logs: states.append(model.state_dict()))
    ckpt = ds.Checkpoint(path, every=2, unit="steps")
    with pytest.raises(ds.DivergenceError, match=r"update (\d+).*lr=1\b") as info:
        ds.fit(model, X, y, loss="mse", optimizer=ds.optim.GD(1.0), batch_size=8, epochs=50,
               callbacks=[ckpt, keep], progress=False)  # fmt: skip
    err = info.value
    assert f"update {err.step} " in str(err) and err.lr == 1.0
    for name, p in model.named_parameters().items():
        assert np.isfinite(p.data).all() and np.array_equal(p.data, states[-1][name])
    state = ds.load_checkpoint(path)  # intact, and not rewritten after the divergence
    assert state.step == err.step - err.step % 2 and ckpt.n_saved == err.step // 2
    for name, p in state.model.named_parameters().items():
        assert np.array_equal(p.data, states[state.step - 1][name])


def test_checkpoint_arguments_and_unsaveable_models():
    with pytest.raises(ValueError, match="every"):
        ds.Checkpoint("x.ckpt", every=0)
    with pytest.raises(ValueError, match="unit"):
        ds.Checkpoint("x.ckpt", unit="minutes")
    with pytest.raises(TypeError, match="path"):
        ds.Checkpoint(3)
    with pytest.raises(RuntimeError, match="descend.fit"):
        ds.Checkpoint("x.ckpt").on_train_begin({})
    model = ds.nn.Sequential(ds.nn.Dense(2, 2, activation=lambda z: z * 2, seed=0))
    with pytest.raises(ValueError, match="custom activation"):
        ds.fit(model, np.ones((4, 2)), np.ones((4, 2)), loss="mse", progress=False, batch_size=2,
               callbacks=[ds.Checkpoint("never-written.ckpt")])  # fmt: skip
    assert not os.path.exists("never-written.ckpt")


# --- Ctrl-C --------------------------------------------------------------------------------


class InterruptingGD(ds.optim.GD):
    """GD that sends itself SIGINT half-way through the parameters of update ``at``."""

    def __init__(self, lr, at, n_params):
        super().__init__(lr)
        self.calls, self.target = 0, at * n_params + n_params // 2

    def _update(self, theta, g, state, lr, tmp):
        self.calls += 1
        if self.calls == self.target:
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler right here
        super()._update(theta, g, state, lr, tmp)


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
@pytest.mark.parametrize("fused", [True, False])
def test_sigint_during_an_update_ends_fit_after_that_update_completes(blobs, fused):
    X, y = blobs
    reference = ds.nn.mlp([2, 8, 3], output_activation="softmax", seed=0)
    after = []
    ds.fit(reference, X, y, loss=CCE, optimizer=ds.optim.GD(0.1), batch_size=10, epochs=1,
           shuffle=False, progress=False, compile=fused,
           callbacks=[ds.LambdaCallback(on_step_end=lambda s, l: after.append(
               reference.state_dict()))])  # fmt: skip
    model = ds.nn.mlp([2, 8, 3], output_activation="softmax", seed=0)
    ended = []
    handler = signal.getsignal(signal.SIGINT)
    history = ds.fit(model, X, y, loss=CCE, optimizer=InterruptingGD(0.1, at=6, n_params=4),
                     batch_size=10, epochs=1, shuffle=False, progress=False, compile=fused,
                     callbacks=[ds.LambdaCallback(on_train_end=ended.append)])  # fmt: skip
    assert history.interrupted and history.n_updates == 7 and ended == [{}]
    assert len(history.step["loss"]) == 7 and history.n_epochs == 0
    for name, value in after[6].items():  # all four parameters updated by update 6
        assert np.array_equal(model.state_dict()[name], value), name
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_fit_in_a_thread_trains_without_touching_signals(blobs):
    X, y = blobs
    handler = signal.getsignal(signal.SIGINT)
    out = {}

    def work():
        model = ds.nn.mlp([2, 8, 3], output_activation="softmax", seed=0)
        out["h"] = ds.fit(model, X, y, loss=CCE, batch_size=10, epochs=1, progress=False)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert out["h"].n_updates == 15 and not out["h"].interrupted
    assert signal.getsignal(signal.SIGINT) is handler


def test_the_guard_holds_sigint_back_only_inside_its_critical_section():
    from descend.train.interrupt import DeferInterrupt

    guard = DeferInterrupt()
    assert not hasattr(guard, "__dict__")  # slots: three attribute operations per update
    guard.install()
    try:
        with pytest.raises(KeyboardInterrupt):  # outside the section: at once
            os.kill(os.getpid(), signal.SIGINT)
        assert not guard.pending
        guard.critical = True
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.pending
        guard.critical = False
        with pytest.raises(KeyboardInterrupt):
            guard.release()
    finally:
        guard.uninstall()


# --- resuming an epoch in the batching ----------------------------------------------------


def test_batches_epoch_start_skips_batches_but_draws_the_same_order():
    X = np.arange(20.0).reshape(10, 2)
    whole, part = batches(X, batch_size=3, seed=1), batches(X, batch_size=3, seed=1)
    full = [xb[:, 0].tolist() for xb, _ in whole.epoch()]
    assert [xb[:, 0].tolist() for xb, _ in part.epoch(start=2)] == full[2:]
    assert [xb.tolist() for xb, _ in whole] == [xb.tolist() for xb, _ in part]  # same next epoch
    assert list(batches(X, batch_size="full").epoch(start=1)) == []
    with pytest.raises(ValueError, match="start"):
        whole.epoch(start=5)
    with pytest.raises(TypeError, match="start"):
        whole.epoch(start=1.0)


def test_a_plain_callable_rate_is_resumed_from_the_saved_state(moons, tmp_path):
    X, y = moons

    def run(**kw):
        model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
        rate = ds.optim.Momentum(lambda step: 0.1 / (1 + step), momentum=0.5)
        h = ds.fit(model, X, y, loss=CCE, optimizer=rate, batch_size=7, epochs=3, seed=1,
                   progress=False, **kw)  # fmt: skip
        return model, h

    path = tmp_path / "run.ckpt"
    with pytest.raises(RuntimeError):
        run(callbacks=[ds.Checkpoint(path, every=4, unit="steps"), CrashAt(9)])
    state = ds.load_checkpoint(path)
    assert state.optimizer is None and state.optimizer_class == "Momentum"  # not describable
    assert state.optimizer_state["iterations"] == 8
    _assert_same_run(run(resume_from=path), run())


def test_a_resumed_run_shows_its_progress_from_where_it_was(moons, tmp_path):
    import io

    path = tmp_path / "run.ckpt"
    _train(moons, epochs=2, callbacks=[ds.Checkpoint(path)])
    out = io.StringIO()
    _train(moons, epochs=4, resume_from=path, callbacks=[ds.ProgressBar(file=out)])
    assert "12/24" in out.getvalue() and "24/24" in out.getvalue()
