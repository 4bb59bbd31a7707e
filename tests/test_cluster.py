"""Data-parallel gradient descent on a local Ray: the same descent as on one machine.

One local Ray instance (2 CPUs) serves every test of the module (and any other module on the same
test process); the tests are grouped on one xdist worker so that only one instance starts.
"""

from __future__ import annotations

import os
import signal
import socket

import numpy as np
import pytest

import descend as ds
from descend.cluster.trainer import ClusterTrainer

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


def _by_trainer(cluster, X, y, batch_size, epochs=10, after_step=None):
    """fit's loop over a ClusterTrainer: batches of row numbers from the same seed."""
    model = _model()
    trainer = ClusterTrainer(cluster, model, "categorical_cross_entropy", ds.optim.Adam(0.05))
    rows = trainer.prepare(X, y)
    loader = ds.data.batches(rows, None, batch_size=batch_size, seed=3)
    try:
        for _ in range(epochs):
            for xb, _ in loader:
                trainer.step(xb)
                if after_step is not None:
                    after_step(trainer)
    finally:
        trainer.finish()
    return model


def _relative_error(a, b) -> float:
    return max(
        float(np.abs(p.data - q.data).max() / np.abs(p.data).max())
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


@pytest.mark.parametrize("batch_size", ["full", 16])
def test_fit_on_1_2_3_workers_equals_fit_on_one_machine(local_ray, batch_size):
    X, y = _data()
    X_val, y_val = _data(20, seed=1)
    kwargs = {"validation_data": (X_val, y_val), "metrics": ["accuracy"]}
    reference, expected = _fit(X, y, batch_size, **kwargs)
    for workers in (1, 2, 3):
        model, history = _fit(X, y, batch_size, cluster=ds.cluster.Ray(workers=workers), **kwargs)
        assert _relative_error(reference, model) < 1e-10, workers
        assert history.params["executor"] == "ray" and history.n_updates == expected.n_updates
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(history.epoch[key], expected.epoch[key], rtol=1e-10)
        np.testing.assert_allclose(history.step["loss"], expected.step["loss"], rtol=1e-10)


def test_a_killed_worker_is_restarted_and_two_runs_are_bit_identical(local_ray):
    """Two runs on 2 workers, the second losing a worker process after update 5: the worker is
    restarted, reloads its shard, computes the update again, and the weights are the same."""
    X, y = _data()
    cluster = ds.cluster.Ray(workers=2)
    reference = _by_trainer(cluster, X, y, 16, epochs=2)
    killed = []

    def kill_second_worker(trainer):
        if trainer.n_steps == 5:
            pid = trainer.data.pids()[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    model = _by_trainer(cluster, X, y, 16, epochs=2, after_step=kill_second_worker)
    assert killed
    for p, q in zip(reference.parameters(), model.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)


def test_shard_files_are_opened_by_the_workers(local_ray, tmp_path):
    X, y = _data()
    x_files, y_files = [], []
    for i, (a, b) in enumerate([(0, 20), (20, 41), (41, 61)]):
        x_files.append(tmp_path / f"x{i}.npy")
        y_files.append(tmp_path / f"y{i}.npy")
        np.save(x_files[-1], X[a:b])
        np.save(y_files[-1], y[a:b])
    reference, _ = _fit(X, y, 16, epochs=3)
    model, _ = _fit(x_files, y_files, 16, epochs=3, cluster=ds.cluster.Ray(workers=2))
    assert _relative_error(reference, model) < 1e-10


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


def test_ctrl_c_or_a_killed_driver_resume_from_the_checkpoint_bit_for_bit(local_ray, tmp_path):
    """Ctrl-C in fit on the cluster saves a checkpoint; a second driver process on the same Ray
    is killed (SIGKILL) after its checkpoint of update 6. Both runs, resumed here on Ray, end
    with the uninterrupted run's weights, bit for bit."""
    import subprocess
    import sys

    X, y = _data()
    cluster = ds.cluster.Ray(workers=2)
    straight, _ = _fit(X, y, 16, epochs=3, cluster=cluster)

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
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)

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
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
