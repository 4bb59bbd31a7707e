"""Tests for descend.datasets: bundled real data, synthetic 2-D sets, the catalogue."""

import subprocess
import sys

import numpy as np
import pytest

import descend.data
from descend import datasets
from descend.datasets import (
    available,
    breast_cancer,
    circles,
    diabetes,
    digits,
    moons,
    spiral,
    xor,
)

SYNTHETIC = [moons, circles, spiral, xor]


# --- scikit-learn data sets ---------------------------------------------------------------------


def test_digits_shape_dtype_range_labels():
    X, y = digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.unique(y).tolist() == list(range(10))
    # Scaled from 0..16: every pixel is a multiple of 1/16.
    np.testing.assert_array_equal(X * 16, np.round(X * 16))


def test_digits_float64():
    X32, _ = digits()
    X64, _ = digits(dtype=np.float64)
    assert X64.dtype == np.float64
    np.testing.assert_array_equal(X64, X32.astype(np.float64))


def test_digits_classes_are_relabelled_in_the_given_order():
    X_all, y_all = digits()
    X, y = digits(classes=(8, 3))
    assert np.unique(y).tolist() == [0, 1]
    np.testing.assert_array_equal(X[y == 0], X_all[y_all == 8])
    np.testing.assert_array_equal(X[y == 1], X_all[y_all == 3])
    assert len(y) == np.count_nonzero((y_all == 8) | (y_all == 3))


def test_digits_four_classes():
    _, y_all = digits()
    X, y = digits(classes=[0, 1, 2, 3])
    assert X.shape[1] == 64
    assert np.bincount(y).tolist() == np.bincount(y_all)[:4].tolist()


def test_digits_numpy_int_classes_accepted():
    _, y = digits(classes=np.array([5, 6]))
    assert np.unique(y).tolist() == [0, 1]


@pytest.mark.parametrize(
    "classes, error, match",
    [
        ((), ValueError, "classes is empty"),
        ((1, 2, 1), ValueError, r"classes repeats \[1\]"),
        ((0, 10), ValueError, r"classes must be digits 0-9, got \[10\]"),
        ((-1, 2), ValueError, r"classes must be digits 0-9, got \[-1\]"),
        ((0, 1.5), TypeError, "classes must hold ints"),
        ((True, False), TypeError, "classes must hold ints"),
        (("0", "1"), TypeError, "classes must hold ints"),
        (3, TypeError, r"classes must be a sequence of digits 0-9, e\.g\. classes=\(0, 1\)"),
        ("01", TypeError, "classes must be a sequence"),
    ],
)
def test_digits_classes_validation(classes, error, match):
    with pytest.raises(error, match=match):
        digits(classes=classes)


def test_breast_cancer():
    X, y = breast_cancer()
    assert X.shape == (569, 30) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [212, 357]
    assert breast_cancer(dtype=np.float64)[0].dtype == np.float64


def test_diabetes():
    X, y = diabetes()
    assert X.shape == (442, 10) and X.dtype == np.float32
    assert y.shape == (442,) and y.dtype == np.float32
    assert 25 <= y.min() and y.max() <= 346
    X64, y64 = diabetes(dtype="float64")
    assert X64.dtype == np.float64 and y64.dtype == np.float64


@pytest.mark.parametrize("loader", [digits, breast_cancer, diabetes])
def test_returned_arrays_are_copies(loader):
    X, y = loader()
    X_before, y_before = X.copy(), y.copy()
    X += 1000
    y[:] = -1
    X2, y2 = loader()
    np.testing.assert_array_equal(X2, X_before)
    np.testing.assert_array_equal(y2, y_before)
    assert X2.flags.writeable and y2.flags.writeable


@pytest.mark.parametrize(
    "dtype, error, match",
    [
        (np.float16, ValueError, "dtype must be np.float32 or np.float64, got float16"),
        (np.int64, ValueError, "dtype must be np.float32 or np.float64, got int64"),
        ("banana", TypeError, "dtype must be np.float32 or np.float64"),
    ],
)
def test_dtype_validation(dtype, error, match):
    with pytest.raises(error, match=match):
        digits(dtype=dtype)
    with pytest.raises(error, match=match):
        moons(dtype=dtype)


def test_missing_scikit_learn_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    datasets._load_bundled.cache_clear()
    try:
        for loader in (digits, breast_cancer, diabetes):
            with pytest.raises(ImportError, match=r'pip install "descend\[datasets\]"'):
                loader()
    finally:
        datasets._load_bundled.cache_clear()


def test_package_imports_and_synthetic_sets_work_without_scikit_learn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import descend.data, descend.datasets as d\n"
        "assert d.moons(10, seed=0)[0].shape == (10, 2)\n"
        "print(sorted(e['name'] for e in d.available()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "['circles', 'moons', 'spiral', 'xor']"


# --- synthetic data sets -------------------------------------------------------------------------


@pytest.mark.parametrize("loader", SYNTHETIC)
def test_synthetic_defaults_shape_dtype(loader):
    X, y = loader(seed=0)
    n = 300 if loader is spiral else 200
    assert X.shape == (n, 2) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.isfinite(X).all()


@pytest.mark.parametrize(
    "loader, n, n_classes", [(moons, 101, 2), (circles, 7, 2), (spiral, 301, 3), (xor, 203, 2)]
)
def test_synthetic_classes_are_balanced(loader, n, n_classes):
    _, y = loader(n, seed=0)
    counts = np.bincount(y)
    assert len(counts) == n_classes
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("loader", SYNTHETIC)
def test_synthetic_same_seed_same_arrays(loader):
    X1, y1 = loader(seed=123)
    X2, y2 = loader(seed=123)
    X3, y3 = loader(seed=np.random.default_rng(123))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(X1, X3)
    np.testing.assert_array_equal(y1, y3)
    X4, _ = loader(seed=124)
    assert not np.array_equal(X1, X4)


@pytest.mark.parametrize("loader", SYNTHETIC)
def test_synthetic_float64_matches_float32(loader):
    X32, y32 = loader(seed=5)
    X64, y64 = loader(seed=5, dtype=np.float64)
    assert X64.dtype == np.float64
    np.testing.assert_array_equal(X64.astype(np.float32), X32)
    np.testing.assert_array_equal(y64, y32)


@pytest.mark.parametrize("loader", SYNTHETIC)
def test_synthetic_rows_are_shuffled(loader):
    _, y = loader(seed=0)
    assert np.count_nonzero(np.diff(y)) > 10


def test_moons_geometry_without_noise():
    X, y = moons(100, noise=0.0, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0)
    assert (upper[:, 1] >= -1e-6).all()
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0, rtol=1e-6)
    assert (lower[:, 1] <= 0.5 + 1e-6).all()


def test_moons_noise_spreads_points():
    X, y = moons(400, noise=0.3, seed=0)
    radius = np.linalg.norm(X[y == 0], axis=1)
    assert 0.2 < radius.std() < 0.4


def test_circles_radii():
    X, y = circles(100, noise=0.0, factor=0.3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(X[y == 0], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X[y == 1], axis=1), 0.3, rtol=1e-6)


def test_spiral_arms():
    X, y = spiral(500, n_classes=5, noise=0.5, seed=0)
    assert np.unique(y).tolist() == [0, 1, 2, 3, 4]
    # Noise moves points along the angle only, so every point stays in the unit disc.
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-6
    # Without noise, each arm's angle grows with its radius by 4 radians over the arm.
    X, y = spiral(300, noise=0.0, seed=0, dtype=np.float64)
    arm = X[y == 1]
    arm = arm[np.argsort(np.linalg.norm(arm, axis=1))]
    angle = np.unwrap(np.arctan2(arm[1:, 1], arm[1:, 0]))
    np.testing.assert_allclose(angle[-1] - angle[0], 4.0 * (1 - 1 / 99), rtol=1e-6)
    np.testing.assert_allclose(angle[-1] % (2 * np.pi), (2 * np.pi / 3 + 4.0) % (2 * np.pi))


def test_xor_labels_and_blobs():
    X, y = xor(400, noise=0.1, seed=0)
    np.testing.assert_array_equal(y == 1, X[:, 0] * X[:, 1] < 0)
    for sx, sy in [(1, 1), (1, -1), (-1, -1), (-1, 1)]:
        blob = X[(np.sign(X[:, 0]) == sx) & (np.sign(X[:, 1]) == sy)]
        assert len(blob) == 100
        np.testing.assert_allclose(blob.mean(axis=0), [sx, sy], atol=0.05)
        np.testing.assert_allclose(blob.std(axis=0), 0.1, atol=0.03)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: moons(1), ValueError, "n_samples must be at least 2"),
        (lambda: xor(3), ValueError, "n_samples must be at least 4"),
        (lambda: spiral(4, n_classes=5), ValueError, "n_samples must be at least 5"),
        (lambda: moons(10.0), TypeError, "n_samples must be an int"),
        (lambda: circles(True), TypeError, "n_samples must be an int"),
        (lambda: moons(noise=-0.1), ValueError, "noise must be a finite float >= 0"),
        (lambda: xor(noise=float("nan")), ValueError, "noise must be a finite float >= 0"),
        (lambda: spiral(noise="low"), TypeError, "noise must be a float"),
        (lambda: circles(factor=1.0), ValueError, r"factor=1\.0 must be in \(0, 1\)"),
        (lambda: circles(factor=0), ValueError, r"factor=0 must be in \(0, 1\)"),
        (lambda: circles(factor="half"), TypeError, "factor must be a float"),
        (lambda: spiral(n_classes=1), ValueError, "n_classes must be at least 2"),
        (lambda: spiral(n_classes=2.0), TypeError, "n_classes must be an int"),
        (lambda: moons(seed=-1), ValueError, "seed must be a non-negative int"),
    ],
)
def test_synthetic_validation(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- catalogue and re-exports ---------------------------------------------------------------------


def test_available_matches_the_loaders():
    entries = available()
    assert [e["name"] for e in entries] == [
        "digits",
        "breast_cancer",
        "diabetes",
        "moons",
        "circles",
        "spiral",
        "xor",
    ]
    for entry in entries:
        X, y = getattr(datasets, entry["name"])()
        assert (entry["n_samples"], entry["n_features"]) == X.shape
        if entry["task"] == "classification":
            assert entry["n_classes"] == len(np.unique(y))
        else:
            assert entry["task"] == "regression" and entry["n_classes"] is None
        assert isinstance(entry["description"], str) and entry["description"]


def test_available_returns_fresh_copies():
    first = available()
    first[0]["n_samples"] = -1
    first.clear()
    second = available()
    assert len(second) == 7
    assert second[0]["n_samples"] == 1797


def test_reexports_are_the_data_functions():
    assert datasets.train_test_split is descend.data.train_test_split
    assert datasets.Standardizer is descend.data.Standardizer
    assert datasets.standardize is descend.data.standardize
