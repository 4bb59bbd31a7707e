"""``descend evaluate`` and ``descend predict``: a saved run on new data."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

from descend.cli import data as data_module
from descend.cli.console import text_table
from descend.cli.output import write_file
from descend.cli.runs import Run, load_run
from descend.cli.train import split_metrics

EVALUATE_EPILOG = """\
examples:
  descend evaluate runs/digits digits:0-3            # a built-in data set
  descend evaluate runs/prices new_prices.csv        # a CSV with the same columns
  descend evaluate runs/prices new.csv --target y    # the target has another name here
  descend evaluate runs/digits digits:0-3 --json     # metrics as JSON

The data must have the features the model was trained on (for a CSV with a header: the same
column names, in any order) and the target; it is standardised as the training data was.
"""

PREDICT_EPILOG = """\
examples:
  descend predict runs/digits new_digits.npy                 # writes predictions.csv
  descend predict runs/prices new.csv -o prices_predicted.csv
  descend predict runs/iris flowers.csv -o -                 # CSV to standard output

The CSV has one row per input row: the predicted class (as the training data named it) and one
probability column per class, or the predicted value for regression. A target column in the
data, if there is one, is ignored.
"""


def register(subparsers, parents) -> None:
    """Add ``descend evaluate`` and ``descend predict``."""
    parser = subparsers.add_parser(
        "evaluate", help="the metrics of a saved run on new data",
        description="Compute the cost and metrics of a trained run (a folder written by "
        "descend train) on data with known targets.", epilog=EVALUATE_EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("run", metavar="RUN", help="the run folder (written by descend train)")
    parser.add_argument("data", metavar="DATA", help="a built-in data set or a .csv/.npy file")
    parser.add_argument("--target", metavar="COLUMN", help="the target column, if its name "
                        "differs from the training data's")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=run_evaluate)

    parser = subparsers.add_parser(
        "predict", help="predictions of a saved run, as CSV",
        description="Predict with a trained run (a folder written by descend train) and write "
        "the predictions as CSV.", epilog=PREDICT_EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("run", metavar="RUN", help="the run folder (written by descend train)")
    parser.add_argument("data", metavar="DATA", help="a built-in data set or a .csv/.npy file")
    parser.add_argument("-o", "--output", metavar="FILE", default="predictions.csv",
                        help="the CSV file to write, - for standard output (default: "
                        "predictions.csv). A file is replaced atomically and keeps its mode; "
                        "a link is followed; a device or FIFO is written into")  # fmt: skip
    parser.add_argument("--target", metavar="COLUMN", help="a target column to leave out")
    parser.set_defaults(func=run_predict)


def _load(run: Run, spec: str, target: str | None, need_target: bool) -> data_module.Dataset:
    return data_module.load_for_model(spec, run.info, target, need_target)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``descend evaluate``."""
    run = load_run(args.run)
    data = _load(run, args.data, args.target, need_target=True)
    X = run.transform(data.X)
    y = data.y if run.info["task"] == "classification" else data.y.astype(np.float32)
    metrics = {"samples": data.n_samples, **split_metrics(run.model, X, y, run.loss, run.info)}
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"{run.folder} on {args.data}: {data.n_samples} samples")
        print(text_table([metrics]))
    return 0


def predictions(run: Run, X: np.ndarray) -> tuple[list[str], list[list]]:
    """The header and rows of the predictions CSV for inputs ``X`` (not yet standardised)."""
    import descend as ds

    out = ds.predict(run.model, run.transform(X)).astype(np.float64)
    if run.info["task"] == "regression":
        values = run.output_to_target(out.reshape(len(X), -1))
        header = ["prediction"] if values.shape[1] == 1 else [
            f"prediction_{j}" for j in range(values.shape[1])
        ]  # fmt: skip
        return header, [list(map(float, row)) for row in values]
    classes = run.info["classes"]
    probs = out.reshape(len(X), -1)
    if probs.shape[1] == 1:  # a sigmoid output: the probability of the second class
        probs = np.hstack([1.0 - probs, probs])
    codes = probs.argmax(axis=1)
    header = ["prediction", *[f"p_{c}" for c in classes]]
    rows = [[classes[c], *map(float, p)] for c, p in zip(codes, probs, strict=True)]
    return header, rows


def run_predict(args: argparse.Namespace) -> int:
    """Run ``descend predict``."""
    run = load_run(args.run)
    data = _load(run, args.data, args.target, need_target=False)
    header, rows = predictions(run, data.X)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    csv_bytes = buffer.getvalue().encode("utf-8")
    if args.output == "-":
        write_file("-", csv_bytes)
        return 0
    path = Path(args.output)
    if path.is_dir():
        path = path / "predictions.csv"
    write_file(path, csv_bytes, flag="-o")
    print(f"wrote {len(rows)} predictions to {path}")
    return 0
