"""A classifier's decision boundary on two interleaving half moons.

Run: ``python examples/decision_boundary_moons.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    X, y = ds.datasets.moons(200, noise=0.15, seed=0)
    model = ds.nn.mlp([2, 16, 16, 2], activation="tanh", output_activation="softmax", seed=0)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.3),
           batch_size=20, epochs=100, seed=0, progress=False)  # fmt: skip
    ds.viz.decision_boundary(model, X, y, path=out / "decision_boundary.png")
    return [out / "decision_boundary.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
