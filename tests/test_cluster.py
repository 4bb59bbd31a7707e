"""Data-parallel gradient descent on a local Ray: the same descent as on one machine.

One local Ray instance (2 CPUs) serves every test of the module (and any other module on the same
test process); the tests are grouped on one xdist worker so that only one instance starts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket

import numpy as np
import pytest

import descend as ds

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")


def _data(n=61, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    return X, y


def _model():
    return ds.nn.mlp([3, 6, 2], output_activation="softmax", seed=0, dtype=np.float64)


def _fit(X, y, batch_size, epochs=10, **kwargs):
    model = _model()
    history = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.Adam(0.05),
                     batch_size=batch_size, epochs=epochs, seed=3, progress=False,
                     **kwargs)  # fmt: skip
    return model, history


def _relative_error(a, b) -> float:
    return max(
        float(np.abs(p.data - q.data).max() / np.abs(p.data).max())
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


@pytest.fixture(scope="module")
def straight(local_ray):
    """The uninterrupted run on 2 workers (batch 16, 3 epochs: 12 updates), for the fault tests."""
    X, y = _data()
    model, history = _fit(X, y, 16, epochs=3, cluster=ds.cluster.Ray(workers=2))
    return [p.data.copy() for p in model.parameters()], list(history.step["loss"])


@pytest.mark.parametrize("batch_size", ["full", 16])
def test_fit_on_1_2_3_workers_equals_fit_on_one_machine(local_ray, tmp_path, batch_size):
    """Each worker count through another path: 1 worker by calls then (mini-batch, after
    GRAPH_AFTER updates) the compiled graph, 2 through the graph from the first update, 3 by
    calls only, from 3 shard files that the workers open themselves (the data never passes
    through the driver)."""
    X, y = _data()
    X_val, y_val = _data(20, seed=1)
    kwargs = {"validation_data": (X_val, y_val), "metrics": ["accuracy"]}
    reference, expected = _fit(X, y, batch_size, **kwargs)
    x_files, y_files = [], []
    for i, (a, b) in enumerate([(0, 20), (20, 41), (41, 61)]):
        x_files.append(tmp_path / f"x{i}.npy")
        y_files.append(tmp_path / f"y{i}.npy")
        np.save(x_files[-1], X[a:b])
        np.save(y_files[-1], y[a:b])
    for workers, graph in ((1, None), (2, True), (3, False)):
        cluster = ds.cluster.Ray(workers=workers, compiled_graph=graph)
        data = (X, y) if workers < 3 else (x_files, y_files)
        model, history = _fit(*data, batch_size, cluster=cluster, **kwargs)
        assert _relative_error(reference, model) < 1e-10, workers
        assert history.params["executor"] == "ray" and history.n_updates == expected.n_updates
        assert "why_eager" not in history.params  # the workers ran the compiled step
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(history.epoch[key], expected.epoch[key], rtol=1e-10)
        np.testing.assert_allclose(history.step["loss"], expected.step["loss"], rtol=1e-10)


@pytest.mark.parametrize("graph", [True, False])
def test_a_worker_killed_during_an_update_is_restarted_and_the_update_redone(
    local_ray, tmp_path, straight, graph, caplog
):
    """At update 6 one worker stops inside its computation (a metric that waits when a flag
    file is there) and the test kills its process then. Ray restarts it, it reloads its shard,
    the update is computed again (through the compiled graph: the graph is torn down, the
    update redone by calls, the graph compiled again), and the run ends with the uninterrupted
    run's weights and step losses, bit for bit."""
    import threading
    import time

    flag, started = tmp_path / "stop-at-the-next-update", tmp_path / "stopped"

    def accuracy(y_true, y_pred):  # on the workers: a closure, pickled by value
        try:
            os.rename(flag, started)  # only the first worker to get here waits
        except FileNotFoundError:
            pass
        else:
            started.write_text(str(os.getpid()))
            time.sleep(60)  # killed long before
        return ds.train.metrics.accuracy(y_true, y_pred)

    class ArmAfterUpdate5(ds.Callback):
        def on_step_end(self, step, logs):
            if step == 4:
                flag.touch()

    killed = []

    def kill_when_started():
        for _ in range(600):
            if started.exists() and started.read_text():
                killed.append(int(started.read_text()))
                os.kill(killed[0], signal.SIGKILL)
                return
            time.sleep(0.05)

    caplog.set_level(logging.INFO, logger="descend.cluster.ray")
    watcher = threading.Thread(target=kill_when_started, daemon=True)
    watcher.start()
    X, y = _data()
    cluster = ds.cluster.Ray(workers=2, compiled_graph=graph)
    model, history = _fit(X, y, 16, epochs=3, cluster=cluster, metrics=[accuracy],
                          callbacks=[ArmAfterUpdate5()])  # fmt: skip
    watcher.join(timeout=1)
    assert killed and not flag.exists()
    assert ("the update is done again by calls" in caplog.text) == graph
    weights, step_losses = straight
    assert history.step["loss"] == step_losses
    for p, q in zip(model.parameters(), weights, strict=True):
        assert np.array_equal(p.data, q)


def test_a_worker_that_cannot_start_gives_one_line(local_ray, tmp_path):
    missing = [str(tmp_path / "gone.npy")]
    with pytest.raises(ds.cluster.ClusterError, match="could not start") as info:
        _fit(missing, missing, 16, cluster=ds.cluster.Ray(workers=1))
    assert "\n" not in str(info.value) and "gone.npy" in str(info.value)


def test_an_address_that_does_not_answer_gives_one_line():
    with socket.socket() as s:  # a port nobody listens on (bound, not listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(ds.cluster.ClusterError, match="does not answer") as info:
            ds.cluster.Ray(address=f"127.0.0.1:{port}").connect()
    assert "\n" not in str(info.value)


_DRIVER = """
import sys, time
import numpy as np
import descend as ds

address, folder = sys.argv[1], sys.argv[2]
X, y = np.load(folder + "/X.npy"), np.load(folder + "/y.npy")


class Stop(ds.Callback):
    def on_step_end(self, step, logs):
        if step == 5:  # after the checkpoint of update 6: wait here to be killed
            print("ready", flush=True)
            time.sleep(120)


model = ds.nn.mlp([3, 6, 2], output_activation="softmax", seed=0, dtype=np.float64)
ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.Adam(0.05),
       batch_size=16, epochs=3, seed=3, progress=False,
       cluster=ds.cluster.Ray(workers=2, address=address),
       callbacks=[ds.Checkpoint(folder + "/run.ckpt", every=1, unit="steps"), Stop()])
"""


def test_ctrl_c_or_a_killed_driver_resume_from_the_checkpoint_bit_for_bit(
    local_ray, tmp_path, straight
):
    """Ctrl-C in fit on the cluster saves a checkpoint; a second driver process on the same Ray
    is killed (SIGKILL) after its checkpoint of update 6. Both runs, resumed here on Ray, end
    with the uninterrupted run's weights, bit for bit."""
    import subprocess
    import sys

    X, y = _data()
    cluster = ds.cluster.Ray(workers=2)
    weights, _ = straight

    class CtrlC(ds.Callback):
        def on_step_end(self, step, logs):
            if step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path / "ctrl-c.ckpt"
    _, history = _fit(X, y, 16, epochs=3, cluster=cluster,
                      callbacks=[ds.Checkpoint(path, every=100), CtrlC()])  # fmt: skip
    assert history.interrupted and history.n_updates == 6
    resumed, history = _fit(X, y, 16, epochs=3, cluster=cluster, resume_from=path)
    assert history.n_updates == 12 and not history.interrupted
    for p, q in zip(resumed.parameters(), weights, strict=True):
        assert np.array_equal(p.data, q)

    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    address = local_ray.get_runtime_context().gcs_address
    child = subprocess.Popen([sys.executable, "-c", _DRIVER, address, str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        child.kill()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert ds.load_checkpoint(tmp_path / "run.ckpt").position[2] == 6
    resumed, history = _fit(X, y, 16, epochs=3, cluster=cluster, resume_from=tmp_path / "run.ckpt")
    assert history.n_updates == 12
    for p, q in zip(resumed.parameters(), weights, strict=True):
        assert np.array_equal(p.data, q)
