"""Determinism: the same seed gives bit-identical weights and history, in and across processes.

What may change results is documented in docs/determinism.md (dtype, BLAS thread count and
library, NumPy version, CPU); the fused and graph paths agree to the bit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import descend as ds

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import checkpoint_child  # noqa: E402


def test_two_processes_with_the_same_seed_give_identical_bits(tmp_path):
    outs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "checkpoint_child.py"), "plain", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with np.load(outs[0]) as a, np.load(outs[1]) as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a[name].dtype == b[name].dtype
            assert a[name].tobytes() == b[name].tobytes(), name
        # ... and the same as in this process.
        model, history = checkpoint_child.train()
        for name, value in model.state_dict().items():
            assert a[f"param.{name}"].tobytes() == value.tobytes()
        assert a["step_loss"].tolist() == history.step["loss"]


def _fit(X, y, seed, dtype, batch_size, fused, optimizer="momentum"):
    model = ds.nn.mlp([2, 16, 3], output_activation="softmax", seed=0, dtype=dtype)
    opt = ds.optim.Momentum(0.05, 0.9) if optimizer == "momentum" else ds.optim.Adam(0.01)
    h = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=opt,
               batch_size=batch_size, epochs=3, seed=seed, progress=False,
               compile=fused)  # fmt: skip
    return {k: v.tobytes() for k, v in model.state_dict().items()}, h.step["loss"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", ["full", 1, 16])
def test_same_seed_same_bits_and_the_fused_path_equals_the_graph(blobs, dtype, batch_size):
    X, y = blobs
    first = _fit(X, y, 7, dtype, batch_size, fused=True)
    assert _fit(X, y, 7, dtype, batch_size, fused=True) == first
    assert _fit(X, y, 7, dtype, batch_size, fused=False) == first
    if batch_size != "full":  # a full batch is not shuffled: the seed does not matter
        assert _fit(X, y, 8, dtype, batch_size, fused=True)[0] != first[0]


def test_a_seed_generator_is_used_as_given(blobs):
    X, y = blobs
    a = _fit(X, y, np.random.default_rng(3), np.float32, 16, True, "adam")
    b = _fit(X, y, 3, np.float32, 16, True, "adam")
    assert a == b
