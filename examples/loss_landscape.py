"""The loss landscape of a trained network, on the plane in which its weights moved most.

Train on the digits 0-3 with a Recorder, then draw the cost on the plane spanned by the top two
principal components of the recorded trajectory (Li et al., 2018), and on a plane of two
filter-normalised random directions. Run: ``python examples/loss_landscape.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    model = ds.nn.mlp([64, 16, 4], output_activation="softmax", seed=0)
    recorder = ds.Recorder(every=5)
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.2),
           batch_size=32, epochs=10, seed=0, callbacks=[recorder], progress=False)  # fmt: skip
    loss = "categorical_cross_entropy"
    ds.viz.landscape(model, X, y, loss, recorder, "pca", path=out / "landscape.png")
    ds.viz.landscape(model, X, y, loss, recorder, "random", path=out / "landscape_random.png")
    return [out / "landscape.png", out / "landscape_random.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
