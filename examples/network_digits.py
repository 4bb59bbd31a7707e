"""The network as a drawing: a small MLP trained on the digits 0-3, looking at a "3".

Nodes are neurons, shaded by how strongly they fire for this input; edges are weights (blue
positive, orange negative, wider for larger). Run: ``python examples/network_digits.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 16, 4], output_activation="softmax", seed=0)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
           batch_size=32, epochs=10, seed=0, progress=False)  # fmt: skip
    three = X[y == 3][0]
    ds.viz.network(model, three, image_shape=(8, 8), path=out / "network.png")
    return [out / "network.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
