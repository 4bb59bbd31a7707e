"""The playground's server: the same numbers as ds.fit, its downloads, and its safety.

Everything goes through the real server (uvicorn in a thread) and a WebSocket client, as the
page talks to it. The browser itself is tested in test_playground_browser.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
ws_client = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")

import descend as ds  # noqa: E402
from descend.playground.server import BackgroundServer  # noqa: E402


@pytest.fixture(scope="module")
def server():
    running = BackgroundServer().start()
    yield running
    running.stop()


class Tab:
    """One page's connection: send a message, get the reply."""

    def __init__(self, server):
        connection = ws_client.connect(server.url.replace("http", "ws") + "ws", max_size=None)
        self.conn = connection.__enter__()  # closed by close()
        self.setup = self.recv()
        self.token = self.setup["token"]
        self.url, self.server = server.url, server

    def recv(self):
        return json.loads(self.conn.recv(timeout=60))

    def ask(self, message):
        self.conn.send(message if isinstance(message, str | bytes) else json.dumps(message))
        return self.recv()

    def download(self, name):
        with urllib.request.urlopen(f"{self.url}download/{self.token}/{name}") as response:
            return response.read()

    def close(self):
        self.conn.close()


@pytest.fixture
def tab(server):
    page = Tab(server)
    yield page
    page.close()


def _fit_like(tab, setup, epochs, callbacks=()):
    """ds.fit with the settings the page shows, on the data it trains on."""
    from descend.cli import train as train_cmd
    from descend.playground.session import Session

    session = Session()
    session.configure(setup["settings"])  # the same preparation, the same arrays
    model = ds.nn.mlp(session.sizes, setup["settings"]["activation"],
                      session.output_activation, seed=setup["settings"]["seed"])  # fmt: skip
    s = setup["settings"]
    history = ds.fit(
        model, session.prep.X_train, train_cmd.scaled_target(session.prep.y_train,
                                                             session.prep.info),
        loss=session.loss, optimizer=s["optimizer"], lr=s["lr"], batch_size=s["batch"],
        epochs=epochs, seed=s["seed"], progress=False, callbacks=list(callbacks),
        validation_data=(session.prep.X_val, session.y_val),
    )  # fmt: skip
    return model, history


@pytest.mark.parametrize(
    "settings",
    [
        {"data": "moons", "optimizer": "gd", "lr": 0.3, "batch": 16, "hidden": [16, 16]},
        {"data": "xor", "optimizer": "adam", "lr": 0.01, "batch": "full", "hidden": [8],
         "activation": "relu", "seed": 3},
        {"data": "diabetes-line", "optimizer": "gd", "lr": 0.8, "batch": 1, "hidden": []},
    ],
    ids=["moons-gd-minibatch", "xor-adam-batch", "line-gd-stochastic"],
)  # fmt: skip
def test_n_updates_in_the_page_equal_fit_bit_for_bit(tab, settings):
    setup = tab.ask({"type": "configure", "settings": settings})
    assert setup["type"] == "setup", setup
    per_epoch = setup["updates_per_epoch"]
    costs, epochs = list(setup["costs"]), []
    # One update, a few at once, then whole epochs: as a learner clicks.
    for message in ({"type": "step", "n": 1}, {"type": "step", "n": 2}, {"type": "epoch"},
                    {"type": "epoch"}):  # fmt: skip
        frame = tab.ask(message)
        assert frame["type"] == "frame", frame
        assert frame["cost_offset"] == len(costs)
        costs += frame["costs"]
        epochs += frame["epochs"]
    assert len(epochs) >= 2 and frame["updates"] == len(costs) == len(epochs) * per_epoch
    model, history = _fit_like(tab, setup, epochs=len(epochs))
    assert costs == history.step["loss"]  # the costs shown, bit for bit
    assert [e["loss"] for e in epochs] == history.epoch["loss"]
    assert [e["val_loss"] for e in epochs] == history.epoch["val_loss"]
    shown = _load_bytes(tab.download("model.npz"))
    for name, p in model.named_parameters().items():
        assert np.array_equal(shown.named_parameters()[name].data, p.data), name


def _load_bytes(raw: bytes):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        path.write_bytes(raw)
        return ds.load(path)


@pytest.mark.parametrize("data", ["moons", "diabetes-line"])
def test_the_script_download_repeats_the_run_exactly(tab, tmp_path, data):
    setup = tab.ask({"type": "configure", "settings": {"data": data, "batch": 16, "seed": 5}})
    n = setup["updates_per_epoch"] + 3  # stop in the middle of the second epoch
    frame = tab.ask({"type": "step", "n": n})
    assert frame["updates"] == n
    (tmp_path / "run.py").write_bytes(tab.download("run.py"))
    if data == "diabetes-line":
        (tmp_path / "data.csv").write_bytes(tab.download("data.csv"))
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{n} updates")
    mine = ds.load(tmp_path / "model.npz")
    shown = _load_bytes(tab.download("model.npz"))
    for name, p in shown.named_parameters().items():
        assert np.array_equal(mine.named_parameters()[name].data, p.data), name


def test_the_config_download_repeats_the_run_with_descend_train(tab, tmp_path):
    from descend.cli import main

    settings = {"data": "circles", "optimizer": "adam", "lr": 0.01, "batch": 32, "seed": 2}
    setup = tab.ask({"type": "configure", "settings": settings})
    tab.ask({"type": "step", "n": 2 * setup["updates_per_epoch"]})
    config = tab.download("config.toml").decode()
    assert "epochs = 2" in config and 'data = "circles"' in config
    (tmp_path / "config.toml").write_text(config)
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "config.toml"), "--out", str(out),
                 "--no-figures", "-q"]) == 0  # fmt: skip
    trained = ds.load(out / "model.npz")
    shown = _load_bytes(tab.download("model.npz"))
    for name, p in shown.named_parameters().items():
        assert np.array_equal(trained.named_parameters()[name].data, p.data), name


def test_malformed_messages_get_an_error_and_the_server_goes_on(tab):
    bad = [
        "not json", "[1, 2]", json.dumps({"type": "launch"}), b"\x00\x01binary",
        json.dumps({"type": "step", "n": -1}), json.dumps({"type": "step", "n": "many"}),
        json.dumps({"type": "configure", "settings": {"colour": "red"}}),
        json.dumps({"type": "configure", "settings": {"hidden": [100000]}}),
        json.dumps({"type": "configure", "settings": {"lr": 0}}),
        json.dumps({"type": "configure", "settings": {"batch": 10**6}}),
        json.dumps({"type": "configure", "settings": {"data": "/etc/passwd"}}),
        json.dumps({"type": "configure", "settings": "moons"}),
        json.dumps({"type": "sample", "index": -3}),
        json.dumps({"type": "minima", "n_starts": 10**9}),
        json.dumps({"type": "step", "views": "all"}),
    ]  # fmt: skip
    for message in bad:
        reply = tab.ask(message)
        assert reply["type"] == "error", (message, reply)
        assert reply["message"] and "internal" not in reply["message"]
    reply = tab.ask({"type": "step", "n": 1, "id": 41})
    assert reply["type"] == "frame" and reply["id"] == 41
    # A bad setting leaves the run as it was, even one that fails only when building.
    assert reply["updates"] == 1
    reply = tab.ask({"type": "configure", "settings": {"loss": "mse"}})  # mse for classes
    assert reply["type"] == "error" and "mse" in reply["message"]
    assert tab.ask({"type": "step"})["updates"] == 2


def test_divergence_is_reported_in_the_page_and_a_reset_recovers(tab):
    settings = {"data": "diabetes-line", "hidden": [], "lr": 50.0, "batch": "full"}
    assert tab.ask({"type": "configure", "settings": settings})["type"] == "setup"
    frame = tab.ask({"type": "step", "n": 200})
    assert frame["diverged"] and "learning rate" in frame["diverged"]
    assert frame["updates"] < 200 and None not in frame["costs"]
    race = tab.ask({"type": "race", "action": "start"})
    race = tab.ask({"type": "race", "action": "step"})
    assert race["type"] == "race" and any(v["diverged"] for v in race["variants"])
    assert tab.ask({"type": "configure", "settings": {"lr": 0.8}})["diverged"] is None
    assert tab.ask({"type": "step", "n": 3})["updates"] == 3


def test_uploads_are_parsed_by_the_csv_reader_and_never_open_a_path(tab):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    rows = zip(X.tolist(), y.tolist(), strict=True)
    text = "a,b,label\n" + "".join(f"{u!r},{v!r},{t}\n" for (u, v), t in rows)
    reply = tab.ask({"type": "upload", "name": "../../etc/hostname", "text": text,
                     "target": "label"})  # fmt: skip
    assert reply["type"] == "setup", reply
    assert reply["settings"]["data"] == "upload" and reply["sizes"][0] == 2
    assert reply["datasets"]["upload"] == "uploaded: hostname"
    assert reply["n_train"] + reply["n_val"] == 60
    frame = tab.ask({"type": "step", "n": 2})
    assert frame["updates"] == 2 and "boundary" in frame

    broken = "a,b,label\n1,2,0\n3,oops,1\n5,6,0\n7,8,1\n"
    reply = tab.ask({"type": "upload", "name": "broken.csv", "text": broken})
    assert reply["type"] == "error"
    assert "broken.csv" in reply["message"] and "'b'" in reply["message"]
    assert "descend-upload" not in reply["message"]  # the temporary file is not shown

    from descend.playground.app import MAX_MESSAGE_BYTES, MAX_UPLOAD_BYTES

    row = "0.123456789012345,1\n"
    huge = "a,b\n" + row * (MAX_UPLOAD_BYTES // len(row) + 10)
    reply = tab.ask({"type": "upload", "name": "huge.csv", "text": huge})
    assert reply["type"] == "error" and "larger than" in reply["message"]
    # The uploaded data is still there after the failures.
    assert tab.ask({"type": "step"})["type"] == "frame"

    # A message beyond the frame limit closes that connection only.
    other = Tab(tab.server)
    with pytest.raises(ws_exceptions.ConnectionClosed):
        tab.ask({"type": "upload", "name": "x.csv", "text": "1" * MAX_MESSAGE_BYTES})
    assert other.ask({"type": "step"})["type"] == "frame"
    other.close()


def test_each_tab_has_its_own_session(server):
    first, second = Tab(server), Tab(server)
    try:
        assert first.token != second.token
        first.ask({"type": "step", "n": 5})
        assert second.ask({"type": "step", "n": 1})["updates"] == 1
        assert first.ask({"type": "step", "n": 1})["updates"] == 6
        assert len(server.app.state.sessions) >= 2
    finally:
        first.close()
        second.close()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.url}download/not-a-token/model.npz")
    assert err.value.code == 404


def test_views_network_backprop_and_the_two_parameter_surface(tab):
    from descend.experiments import line_problem

    frame = tab.ask({"type": "step", "n": 1, "views": ["network", "boundary"]})
    net = frame["network"]
    sizes = tab.setup["sizes"]
    assert [len(layer["W"]) for layer in net["layers"]] == sizes[:-1]
    assert [len(layer["da_in"]) for layer in net["layers"]] == sizes[:-1]
    assert frame["boundary"]["n"] ** 2 == len(frame["boundary"]["z"])

    setup = tab.ask({"type": "configure", "settings": {"data": "diabetes-line", "hidden": [],
                                                       "batch": "full", "lr": 0.8}})  # fmt: skip
    surface = setup["surface"]
    # The surface's minimum is the least-squares line of the training part.
    w_all, b_all = line_problem("bmi").minima["least squares"]
    assert abs(surface["minimum"][0] - w_all) < 0.5 and abs(surface["minimum"][1] - b_all) < 0.5
    frame = tab.ask({"type": "step", "n": 4, "views": []})
    assert len(setup["path"]) + len(frame["path"]) == 5  # the start and each update
    assert "network" not in frame and "boundary" not in frame


def test_race_starts_every_variant_from_the_same_weights(tab):
    setup = tab.ask({"type": "configure", "settings": {"data": "moons", "batch": 16}})
    n = setup["n_train"]
    start = tab.ask({"type": "race", "action": "start", "k": 20})
    assert {v["curve"][0]["loss"] for v in start["variants"]} == {start["variants"][0]["curve"][0]
                                                                  ["loss"]}  # fmt: skip
    race = tab.ask({"type": "race", "action": "step"})
    assert [v["updates"] for v in race["variants"]] == [1, n, -(-n // 20)]
    assert all(v["epochs"] == 1 and v["time"] > 0 for v in race["variants"])


def test_minima_matches_the_experiment(tab):
    from descend.experiments import local_minima

    reply = tab.ask({"type": "minima", "lr": 0.05, "n_starts": 12, "steps": 100, "seed": 1})
    expected = local_minima(batch_sizes=("full", 10, 1), lrs=(0.05,), n_starts=12, steps=100,
                            seed=1)  # fmt: skip
    assert [v["global"] for v in reply["variants"]] == [r["global"] for r in expected.rows]
    assert all(len(v["ends"]) == 12 for v in reply["variants"])


def test_notebook_playground_serves_your_arrays_and_stops():
    X, y = ds.datasets.moons(80, seed=0)
    page = ds.playground(X, y, display=False)
    try:
        assert page.running and "<iframe" in page._repr_html_()
        with urllib.request.urlopen(page.url) as response:
            assert b"descend playground" in response.read()
        tab = Tab(page._server)
        assert tab.setup["settings"]["data"] == "given" and tab.setup["n_train"] == 64
        tab.close()
    finally:
        page.stop()
    assert not page.running
    with pytest.raises(ValueError, match="y"):
        ds.playground(X, None, display=False)
    with pytest.raises(ValueError, match="takes 3 features"):
        ds.playground(X, y, model=ds.nn.mlp([3, 2], seed=0), display=False)


def test_notebook_model_is_the_start_of_every_reset():
    from descend.playground import Session
    from descend.playground.notebook import _as_dataset, _factory

    X, y = ds.datasets.moons(80, seed=0)
    mine = ds.nn.mlp([2, 5, 2], "relu", "softmax", seed=1)
    session = Session(_as_dataset(X, y, "auto"), _factory(mine))
    assert session.sizes == [2, 5, 2] and session.loss == "categorical_cross_entropy"
    session.step(4)
    session.reset()
    for name, p in mine.named_parameters().items():
        assert np.array_equal(session.model.named_parameters()[name].data, p.data), name


def test_the_command_serves_on_localhost_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
    (data / "mine.csv").write_text("a,b,label\n" + rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "descend", "playground", str(data / "mine.csv"), "--target",
         "label", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("open ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"descend playground" in response.read()
        with urllib.request.urlopen(url + "static/app.js", timeout=30) as response:
            assert b"WebSocket" in response.read()
        with ws_client.connect(url.replace("http", "ws") + "ws") as conn:
            setup = json.loads(conn.recv(timeout=60))
        assert setup["settings"]["data"] == "given" and setup["sizes"][0] == 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "mine.csv"]  # wrote nothing
