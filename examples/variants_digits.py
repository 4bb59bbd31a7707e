"""Batch, stochastic and mini-batch gradient descent on the digits 0-3, from the same start.

The three variants differ only in how many samples one update sees: all of them (batch), one
(stochastic) or a few (mini-batch). Everything else is equal: the initial weights, the learning
rate, the number of epochs, the data. Run: ``python examples/variants_digits.py``.
"""

from __future__ import annotations

import argparse

import descend as ds


def main(epochs: int = 30, lr: float = 0.1, seed: int = 0) -> list[dict]:
    X, y = ds.datasets.digits(classes=(0, 1, 2, 3))
    X_train, X_test, y_train, y_test = ds.datasets.train_test_split(
        X, y, test_size=0.25, stratify=True, seed=seed
    )
    start = ds.nn.mlp([64, 32, 4], output_activation="softmax", seed=seed)
    initial = start.state_dict()
    rows = []
    for name, batch_size in (("batch", "full"), ("stochastic", 1), ("mini-batch", 32)):
        model = ds.nn.mlp([64, 32, 4], output_activation="softmax")
        model.load_state_dict(initial)  # the same initial weights for every variant
        history = ds.fit(
            model, X_train, y_train, loss="categorical_cross_entropy", optimizer=ds.optim.GD(lr),
            batch_size=batch_size, epochs=epochs, seed=seed, progress=False,
        )  # fmt: skip
        train = ds.evaluate(model, X_train, y_train, loss="categorical_cross_entropy")
        test = ds.evaluate(model, X_test, y_test, loss="categorical_cross_entropy")
        rows.append(
            {
                "variant": f"{name} (batch_size={batch_size})",
                "updates": history.n_updates,
                "wall time (s)": history.wall_time,
                "final training loss": train["loss"],
                "test accuracy": test["accuracy"],
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"Digits 0-3 (8x8 images, 64 features), MLP 64-32-4, plain gradient descent, "
        f"lr={args.lr}, {args.epochs} epochs, the same initial weights for every variant.\n"
    )
    print(markdown_table(main(args.epochs, args.lr, args.seed)))
