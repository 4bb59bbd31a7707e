"""Each claim of docs/determinism.md and of the README's speed section about threads, held to
what descend does (in fresh processes: the settings are read from the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Predicts 20,000 rows of an MLP 784-256-10 (large enough to be shared between cores), trains a
# few updates, and reports the outputs, the weights and the names of the threads alive.
SCRIPT = """
import json, sys, threading
import numpy as np, descend as ds
rng = np.random.default_rng(0)
X = rng.standard_normal((20000, 784)).astype(np.float32)
model = ds.nn.mlp([784, 256, 10], output_activation="softmax", seed=0)
p = ds.predict(model, X)
y = rng.integers(0, 10, 512)
ds.fit(model, X[:512], y, loss="categorical_cross_entropy", optimizer="gd", batch_size=64,
       epochs=1, seed=0, progress=False)
np.savez(sys.argv[1], p=p, w=model.layers[0].weight.data)
print(json.dumps(sorted({t.name.rsplit("_", 1)[0] for t in threading.enumerate()})))
"""


def _run(tmp_path: Path, name: str, **env) -> tuple[np.lib.npyio.NpzFile, list[str]]:
    out = tmp_path / f"{name}.npz"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DESCEND_")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], env=environ, capture_output=True, text=True,
        timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return np.load(out), json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads")
    return {
        "one": _run(tmp, "one", DESCEND_THREADS="1"),
        "two": _run(tmp, "two", DESCEND_THREADS="2"),
        "no_blas": _run(tmp, "no_blas", DESCEND_THREADS="2", DESCEND_NO_BLAS="1"),
    }


def test_descend_has_threads_of_its_own_and_descend_threads_1_starts_none(runs):
    # docs/determinism.md: "a pool of at most 8 worker threads named descend..."; the README:
    # DESCEND_THREADS=1 keeps descend from splitting work (BLAS keeps its own threads).
    _, names_one = runs["one"]
    _, names_two = runs["two"]
    assert "descend" in names_two
    assert "descend" not in names_one


def test_predictions_depend_on_descend_threads_only_in_the_last_bits(runs):
    # docs/determinism.md: predictions can differ in the last bits between settings (the
    # matrix products of a shared chunk run on one BLAS thread), within float32 rounding.
    one, two = runs["one"][0]["p"], runs["two"][0]["p"]
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-6)


def test_descend_no_blas_changes_at_most_the_last_bits(runs):
    # docs/determinism.md: DESCEND_NO_BLAS=1 updates with NumPy instead of BLAS's axpy, and
    # leaves BLAS's thread count alone in the shared sections: equal up to rounding.
    np.testing.assert_allclose(runs["no_blas"][0]["p"], runs["two"][0]["p"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(runs["no_blas"][0]["w"], runs["two"][0]["w"], rtol=1e-5, atol=1e-7)


def test_the_documents_say_what_the_tests_check():
    determinism = (ROOT / "docs" / "determinism.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "uses no threads of its own" not in determinism
    assert "does not depend on the count" not in determinism
    assert "DESCEND_NO_BLAS" in determinism
    assert "keeps everything on one core" not in readme
    assert "OPENBLAS_NUM_THREADS=1" in readme


def test_make_test_reference_runs_every_pytorch_comparison():
    # The README sends users to `make test-reference` for the PyTorch comparisons: every test
    # file that compares with PyTorch must be in it.
    with_torch = {
        f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
        if 'importorskip("torch")' in p.read_text() and p.name != Path(__file__).name
    }  # fmt: skip
    plan = subprocess.run(["make", "-n", "test-reference"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    listed = set(plan.stdout.split())
    assert with_torch and with_torch <= listed
    assert "make test-reference" in (ROOT / "README.md").read_text()
