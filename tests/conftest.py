"""Shared fixtures. No test reaches the network: data sets are generated or ship with packages."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def blobs():
    """Three well-separated Gaussian blobs in 2-D: (X float32 (150, 2), y int (150,))."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = np.repeat(np.arange(3), 50)
    X = (centres[y] + rng.normal(scale=0.6, size=(150, 2))).astype(np.float32)
    return X, y


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance (2 CPUs) for the cluster tests of this test process (they share it:
    the ``ray`` xdist group); skipped where ray is not installed."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    return ray
