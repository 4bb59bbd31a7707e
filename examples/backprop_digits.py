"""Backpropagation on the network: dC/da on the neurons, dC/dW on the weights, and an animation.

The same small MLP as ``network_digits.py``, half-trained, on one "3". The picture shows the
partial derivatives that one backward pass computes; the animation runs the forward pass layer
by layer, then the backward pass. Run: ``python examples/backprop_digits.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 16, 4], output_activation="softmax", seed=0)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.5),
           batch_size=32, epochs=1, seed=0, progress=False)  # fmt: skip
    x, target = X[y == 3][:1], y[y == 3][:1]
    ds.viz.backprop(model, x, target, "categorical_cross_entropy", path=out / "backprop.png")
    ds.viz.backprop_animation(model, x, target, "categorical_cross_entropy",
                              path=out / "backprop.gif")  # fmt: skip
    ds.viz.backprop_animation(model, x, target, "categorical_cross_entropy",
                              path=out / "backprop.html")  # fmt: skip
    return [out / "backprop.png", out / "backprop.gif", out / "backprop.html"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
