"""Local and global minima: where batch, mini-batch and stochastic gradient descent end up.

The three-hump camel function (a global minimum at the origin, two local minima) as a mean over
100 samples; 200 seeded starts, 1000 updates each, for several learning rates. Prints the
fractions of runs that end in the global minimum and draws every path. Run:
``python examples/local_minima.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    result = ds.experiments.local_minima(
        batch_sizes=("full", 10, 1), lrs=(0.01, 0.05, 0.1), n_starts=200, steps=1000, seed=0
    )
    print(result.to_markdown(), end="\n\n")
    result.plot(lr=0.1, max_paths=60, path=out / "local_minima.png")
    return [out / "local_minima.png"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
