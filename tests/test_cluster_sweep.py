"""Sweeps of independent runs as Ray tasks: each run the same numbers as serially.

Shares the local Ray instance of the test process (the ray xdist group, see test_cluster.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def local_ray(local_ray):
    """Here the fixture is descend's handle on the shared local instance."""
    return ds.cluster.Ray(workers=2)


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "wall time (s)"} for r in rows]


def test_map_runs_in_batches_costly_first_and_raises_the_first_error_in_item_order(local_ray):
    def _check_width(width, height):  # a closure: pickled by value for the workers
        if width in (1, 3):
            raise ValueError(f"width {width}")
        return width * height

    items = [{"width": w} for w in range(12)]
    assert local_ray.map(_check_width, items[4:], shared={"height": 3}) == [
        3 * w for w in range(4, 12)
    ]
    with pytest.raises(ValueError, match="width 1"):  # item 3 runs first (the costlier)
        local_ray.map(_check_width, items, shared={"height": 3}, cost=lambda item: item["width"])


def test_grid_sweep_on_ray_equals_the_serial_sweep(local_ray):
    X, y = ds.datasets.moons(80, seed=0)
    X_test, y_test = ds.datasets.moons(40, seed=1)
    kwargs = dict(loss="categorical_cross_entropy", lrs=[0.05, 0.5], batch_sizes=["full", 16],
                  optimizers=["gd", "adam"], epochs=3, test_data=(X_test, y_test))  # fmt: skip
    model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    serial = ds.experiments.grid_sweep(model, X, y, **kwargs)
    spread = ds.experiments.grid_sweep(model, X, y, cluster=local_ray, **kwargs)
    assert len(serial.rows) == 8 and not any(r["diverged"] for r in serial.rows)
    assert _without_time(spread.rows) == _without_time(serial.rows)
    for a, b in zip(serial.states, spread.states, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert "| optimizer | lr | batch size |" in spread.to_markdown()


def test_compare_variants_and_local_minima_on_ray_equal_serial(local_ray):
    X, y = ds.datasets.moons(60, seed=0)
    model = ds.nn.mlp([2, 6, 2], output_activation="softmax", seed=0)
    kwargs = dict(loss="categorical_cross_entropy", batch_sizes=["full", 8], epochs=3,
                  seeds=[0, 1])  # fmt: skip
    serial = ds.experiments.compare_variants(model, X, y, **kwargs)
    spread = ds.experiments.compare_variants(model, X, y, cluster=local_ray, **kwargs)
    assert len(spread.runs) == 4
    for a, b in zip(serial.runs, spread.runs, strict=True):
        assert (a.variant, a.seed, a.updates) == (b.variant, b.seed, b.updates)
        assert np.array_equal(a.step_loss, b.step_loss)
        np.testing.assert_equal(a.final, b.final)  # NaN (no test data) equals NaN here

    kwargs = dict(batch_sizes=("full", 5), lrs=(0.05, 0.1), n_starts=10, steps=50)
    serial = ds.experiments.local_minima(**kwargs)
    spread = ds.experiments.local_minima(cluster=local_ray, **kwargs)
    assert spread.rows == serial.rows
    assert all(np.array_equal(serial.paths[k], spread.paths[k]) for k in serial.paths)


def test_sklearn_grid_search_with_rays_joblib_backend(local_ray):
    joblib = pytest.importorskip("joblib")
    from ray.util.joblib import register_ray
    from sklearn.model_selection import GridSearchCV

    from descend.sklearn import MLPClassifier

    X, y = ds.datasets.moons(60, seed=0)
    grid = {"learning_rate_init": [0.01, 0.1]}
    estimator = MLPClassifier(epochs=5, batch_size=16, random_state=0)
    serial = GridSearchCV(estimator, grid, cv=2).fit(X, y)
    register_ray()
    with joblib.parallel_backend("ray", n_jobs=2):
        spread = GridSearchCV(estimator, grid, cv=2).fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        assert np.array_equal(serial.cv_results_[key], spread.cv_results_[key])
    assert spread.best_params_ == serial.best_params_
