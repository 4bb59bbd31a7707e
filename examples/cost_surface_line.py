"""The cost surface of a line fitted to real data, and the paths of the three variants on it.

A line ``y = w x + b`` fitted by mean squared error to the body mass index of 442 diabetes
patients: the full-data cost over (w, b) is a long tilted bowl. Batch gradient descent walks
down it smoothly, stochastic gradient descent in a noisy scribble, mini-batch in between. Run:
``python examples/cost_surface_line.py`` (also writes an interactive 3-D view as HTML).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import descend as ds


def main(out: Path) -> list[Path]:
    problem = ds.experiments.line_problem("bmi")
    paths = ds.experiments.descent_paths(problem, ["full", 32, 1], lr=0.1, epochs=50, seed=0)
    ds.viz.surface(problem, paths, path=out / "surface.png")
    ds.viz.surface_html(problem, paths, path=out / "surface.html")
    return [out / "surface.png", out / "surface.html"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"))
    print("wrote", *main(parser.parse_args().out))
