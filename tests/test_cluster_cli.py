"""The shell on Ray: descend train/compare --workers, descend sweep (TOML), one-line errors.

Shares the local Ray instance of the test process (the ray xdist group, see test_cluster.py).
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

import descend as ds
from descend.cli import main

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")


def test_sweep_from_a_toml_file_on_two_workers_equals_the_serial_sweep(local_ray, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text('data = "moons"\nhidden = [4]\nlrs = [0.05, 0.5]\nbatches = ["full", 16]\n'
                      'optimizers = "gd"\nepochs = 3\nfigures = false\n')  # fmt: skip
    assert main(["sweep", str(config), "--out", str(tmp_path / "serial")]) == 0
    assert main(["sweep", str(config), "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    rows = {}
    for name in ("serial", "ray"):
        folder = tmp_path / name
        assert {"sweep.md", "sweep.json", "config.toml", "report.html"} <= {
            p.name for p in folder.iterdir()
        }
        rows[name] = json.loads((folder / "sweep.json").read_text())["rows"]
        for row in rows[name]:
            row.pop("wall time (s)")
    assert len(rows["ray"]) == 4 and rows["ray"] == rows["serial"]
    assert "| gd | 0.5 | 16 |" in (tmp_path / "ray" / "sweep.md").read_text()


def test_train_with_workers_equals_train_without(local_ray, tmp_path):
    args = ["train", "moons", "--hidden", "4", "--epochs", "3", "--batch", "full", "--seed", "0",
            "--optimizer", "gd", "--no-figures", "-q"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    one, two = ds.load(tmp_path / "one" / "model.npz"), ds.load(tmp_path / "two" / "model.npz")
    for p, q in zip(one.parameters(), two.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-5, atol=1e-6)  # float32


def test_compare_with_workers_and_an_address_that_does_not_answer(local_ray, tmp_path, capsys):
    args = ["compare", "moons", "--hidden", "4", "--epochs", "2", "--batches", "full,16",
            "--seeds", "0", "--no-figures"]  # fmt: skip
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "comparison.md").is_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
        status = main([*args, "--workers", "2", "--address", address,
                       "--out", str(tmp_path / "no")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 1 and "does not answer" in err and "\n" not in err
    assert not (tmp_path / "no").exists()  # refused before any folder was written
