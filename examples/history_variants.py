"""Batch, mini-batch and stochastic gradient descent on the digits: loss curves and trade-off.

One MLP, the same initial weights, the same data, plain gradient descent at the same rate;
three seeds. Prints the comparison table and draws the loss per update and per epoch, and the
trade-off of speed against smoothness. Run: ``python examples/history_variants.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path, epochs: int = 10) -> list[Path]:
    X, y = ds.datasets.digits()
    X_train, X_test, y_train, y_test = ds.datasets.train_test_split(
        X, y, test_size=0.25, stratify=True, seed=0
    )
    model = ds.nn.mlp([64, 32, 10], output_activation="softmax", seed=0)
    result = ds.experiments.compare_variants(
        model, X_train, y_train, loss="categorical_cross_entropy", test_data=(X_test, y_test),
        batch_sizes=("full", 32, 1), epochs=epochs, lr=0.1, seeds=(0, 1, 2),
    )  # fmt: skip
    print(result.to_markdown(), end="\n\n")
    result.plot_history(path=out / "history.png")
    result.plot_tradeoff(path=out / "tradeoff.png")
    return [out / "history.png", out / "tradeoff.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print("wrote", *main(args.out, args.epochs))
