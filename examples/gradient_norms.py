"""Per-layer gradient norms and update-to-weight ratios while a network learns the digits.

A ``ds.Recorder`` passed to ``fit`` keeps them, one number per layer per update. Run:
``python examples/gradient_norms.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    X, y = ds.datasets.digits()
    model = ds.nn.mlp([64, 32, 32, 10], output_activation="softmax", seed=0)
    recorder = ds.Recorder()
    ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.1),
           batch_size=32, epochs=10, seed=0, callbacks=[recorder], progress=False)  # fmt: skip
    ds.viz.gradient_norms(recorder, smooth=20, path=out / "gradient_norms.png")
    return [out / "gradient_norms.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
