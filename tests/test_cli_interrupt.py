"""Ctrl-C during ``descend train``: training stops, and what was trained so far is kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

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
    model = ds.load(out / "model.npz")
    assert model.parameters()[0].shape == (64, 8)
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss") and len(rows) >= 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    assert 1 <= metrics["epochs_completed"] < 100000
    assert metrics["n_updates"] >= 16 * metrics["epochs_completed"]
    assert (out / "report.html").exists() and "interrupted" in (out / "report.html").read_text()
    assert "run folder:" in stdout
