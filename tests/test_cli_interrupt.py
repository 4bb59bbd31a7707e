"""Ctrl-C during ``descend train``: training stops, and what was trained so far is kept."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import descend as ds

pytest.importorskip("sklearn")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_keeps_the_model_and_history_in_the_run_folder(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "descend", "train", "digits:0-3", "--epochs", "100000",
         "--hidden", "8", "--seed", "0", "--out", str(out), "--no-figures"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # As in a terminal: SIGINT raises KeyboardInterrupt (a test runner may ignore it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("epoch 1/100000"):
                break
        assert any(line.startswith("epoch 1/") for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert "interrupted after" in last and "saved in" in last and "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    done, updates = metrics["epochs_completed"], metrics["n_updates"]
    # What the last line says is what the folder holds.
    assert f"interrupted after {done} of 100000 epochs ({updates} updates)" in last
    # One row per completed epoch, numbered 1..done, each with a finite loss.
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss") and len(rows) == done + 1 >= 2
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, done + 1))
    assert all(math.isfinite(float(r.split(",")[1])) for r in rows[1:])
    # The updates are those of the completed epochs and part of the next one, no more (all of
    # it when Ctrl-C came after its last update, while its end-of-epoch record was being made).
    per_epoch = math.ceil(metrics["splits"]["train"]["samples"] / 32)
    assert done * per_epoch <= updates <= (done + 1) * per_epoch
    # The saved model is the trained one, not the initial weights, and it scores as recorded.
    model = ds.load(out / "model.npz")
    start = ds.nn.mlp([64, 8, 4], "relu", "softmax", seed=0)
    assert [p.shape for p in model.parameters()] == [p.shape for p in start.parameters()]
    assert not np.array_equal(model.parameters()[0].data, start.parameters()[0].data)
    assert metrics["splits"]["train"]["loss"] < float(rows[1].split(",")[1])
    assert (out / "report.html").exists() and "interrupted" in (out / "report.html").read_text()
    assert "run folder:" in stdout
