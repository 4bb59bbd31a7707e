"""``descend datasets``: the built-in data sets, their sizes and tasks."""

from __future__ import annotations

import argparse

from descend.cli.console import text_table

EPILOG = """\
examples:
  descend datasets              # a table of the built-in data sets
  descend datasets --names      # only the names, one per line

Use a name as DATA in descend train / compare, e.g. descend train breast_cancer.
digits takes a choice of digits: digits:0-3 or digits:0,1,7. The synthetic 2-D sets take a
number of samples: moons:500. They are generated with seed 0, so they are the same every time.
"""


def register(subparsers, parents) -> None:
    """Add ``descend datasets``."""
    parser = subparsers.add_parser(
        "datasets", help="list the built-in data sets with sizes and tasks",
        description="List the built-in data sets: their task, samples, features and classes.",
        epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("--names", action="store_true", help="print only the names")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``descend datasets``."""
    import descend as ds

    entries = ds.datasets.available()
    if args.names:
        for entry in entries:
            print(entry["name"])
        return 0
    rows = [
        {
            "name": e["name"], "task": e["task"], "samples": e["n_samples"],
            "features": e["n_features"], "classes": e["n_classes"] if e["n_classes"] else "-",
            "description": e["description"],
        }
        for e in entries
    ]  # fmt: skip
    print(text_table(rows))
    missing = {"digits", "breast_cancer", "diabetes"} - {e["name"] for e in entries}
    if missing:
        print(
            f'\n{", ".join(sorted(missing))}: need scikit-learn (pip install "descend[datasets]")'
        )
    print("\ndigits:0-3 or digits:0,1,7 picks digits; moons:500 sets the number of samples.")
    return 0
