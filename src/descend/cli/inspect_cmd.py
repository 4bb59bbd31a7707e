"""``descend inspect``: backpropagation on one sample, layer by layer, as tables and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from descend.cli.console import text_table
from descend.cli.errors import UsageError
from descend.cli.figures import Figures
from descend.cli.output import RunFolder, add_force_flag
from descend.cli.report import Report
from descend.cli.runs import load_run, write_json

EPILOG = """\
examples:
  descend inspect runs/digits                  # sample 0 of the run's data
  descend inspect runs/digits --sample 17      # another sample
  descend inspect runs/digits --data new.csv --sample 3 --out runs/digits/why-3
  descend inspect runs/digits --units 64       # show up to 64 neurons per layer

For every layer l, with a_0 = x:  z_l = a_(l-1) W_l + b_l,  a_l = f_l(z_l). Backpropagation
goes the other way: dC/dz_l = dC/da_l * f_l'(z_l), dC/dW_l = a_(l-1)^T dC/dz_l,
dC/db_l = dC/dz_l, and dC/da_(l-1) = dC/dz_l W_l^T is passed to the layer before.
The tables show these numbers for one sample; inspect.json holds all of them, and the folder
gets the figures and a report.html.
"""


def register(subparsers, parents) -> None:
    """Add ``descend inspect``."""
    parser = subparsers.add_parser(
        "inspect", help="the backpropagation view of one sample",
        description="Run one sample forward and backward through a trained network and show "
        "every layer's activations and partial derivatives.", epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("run", metavar="RUN", help="the run folder (written by descend train)")
    parser.add_argument("--sample", type=int, default=0, metavar="I",
                        help="the row of the data to inspect (default: 0)")  # fmt: skip
    parser.add_argument(
        "--data", metavar="DATA", help="where the sample comes from (default: the run's data)"
    )
    parser.add_argument(
        "--units",
        type=int,
        default=16,
        metavar="N",
        help="neurons shown per layer in the terminal (default: 16)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the figures and report (default: RUN/inspect-I, "
        "or RUN/inspect-I-2, ... when taken)",
    )
    add_force_flag(parser)
    parser.set_defaults(func=run)


def _fmt(a) -> float | None:
    return None if a is None else float(a)


def layer_tables(view, units: int) -> list[tuple[str, list[dict]]]:
    """Per layer: a title and one row per neuron (first ``units`` neurons)."""
    tables = []
    for i, layer in enumerate(view.layers):
        nxt = view.layers[i + 1] if i + 1 < len(view.layers) else None
        dC_da = None if nxt is None else nxt.dC_da_in[0]
        n = layer.a_out.shape[1]
        rows = []
        for j in range(min(n, units)):
            row = {"neuron": j}
            if layer.z is not None:
                row["z"] = _fmt(layer.z[0, j])
            row["a"] = _fmt(layer.a_out[0, j])
            row["dC/da"] = _fmt(dC_da[j]) if dC_da is not None else None
            if layer.dC_dz is not None:
                row["dC/dz"] = _fmt(layer.dC_dz[0, j])
            if layer.dC_db is not None:
                row["dC/db"] = _fmt(layer.dC_db[j])
            if layer.dC_dW is not None:
                row["|dC/dW[:,j]|"] = float(np.linalg.norm(layer.dC_dW[:, j]))
            rows.append(row)
        act = getattr(layer.layer, "activation", None) or "linear"
        more = f", first {units} of {n} neurons" if n > units else ""
        title = f"layer {layer.name}: {layer.a_in.shape[1]} -> {n}, {act}{more}"
        tables.append((title, rows))
    return tables


def summary_rows(view) -> list[dict]:
    """One row per layer: sizes of the activations and of the partial derivatives."""
    rows = []
    for layer in view.layers:
        rows.append({
            "layer": layer.name,
            "shape": f"{layer.a_in.shape[1]}->{layer.a_out.shape[1]}",
            "activation": getattr(layer.layer, "activation", None) or "linear",
            "|a_in|": float(np.linalg.norm(layer.a_in)),
            "|a_out|": float(np.linalg.norm(layer.a_out)),
            "|dC/dz|": None if layer.dC_dz is None else float(np.linalg.norm(layer.dC_dz)),
            "|dC/dW|": None if layer.dC_dW is None else float(np.linalg.norm(layer.dC_dW)),
            "|dC/db|": None if layer.dC_db is None else float(np.linalg.norm(layer.dC_db)),
            "|dC/da_in|": float(np.linalg.norm(layer.dC_da_in)),
        })  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    """Run ``descend inspect``."""
    import descend as ds
    from descend.cli.gradcheck import _float64_copy
    from descend.cli.runfiles import run_data
    from descend.cli.train import scaled_target

    run_ = load_run(args.run)
    spec = args.data or run_.info["data"]
    data = run_data(run_, args.data)
    if not -data.n_samples <= args.sample < data.n_samples:
        raise UsageError(
            f"--sample {args.sample} is out of range: {spec} has rows 0 to {data.n_samples - 1}"
        )
    if args.units < 1:
        raise UsageError(f"--units must be at least 1, got {args.units}")
    i = args.sample % data.n_samples
    x = run_.transform(data.X[i : i + 1]).astype(np.float64)
    y = scaled_target(data.y[i : i + 1], run_.info)
    model = _float64_copy(run_.model)
    view = ds.backprop(model, x, np.asarray(y), run_.loss)
    output = view.layers[-1].a_out[0]
    classes = run_.info.get("classes")
    if run_.info["task"] == "classification":
        probs = output if output.size > 1 else np.array([1 - output[0], output[0]])
        truth = f"{classes[int(data.y[i])]}"
        guess = f"{classes[int(np.argmax(probs))]} (p = {float(np.max(probs)):.4f})"
    else:
        truth = f"{float(data.y[i]):g}"
        guess = f"{float(run_.output_to_target(output.reshape(1, -1))[0, 0]):g}"
    head = (
        f"sample {i} of {spec}: target {truth}, predicted {guess}\n"
        f"cost C = {run_.loss} = {view.cost:.6g}"
    )
    print(head + "\n")
    print(text_table(summary_rows(view)))
    tables = layer_tables(view, args.units)
    for title, rows in tables:
        print(f"\n{title}")
        print(text_table(rows))

    folder = RunFolder(args.out or Path(run_.folder) / f"inspect-{i}", force=args.force,
                       default=args.out is None)  # fmt: skip
    with folder:
        out = folder.path
        record = {
            "sample": i, "data": spec, "target": truth, "prediction": guess, "cost": view.cost,
            "loss": run_.loss, "x": x[0].tolist(),
            "layers": [
                {"name": layer.name, "a_in": layer.a_in[0].tolist(),
                 "z": None if layer.z is None else layer.z[0].tolist(),
                 "a_out": layer.a_out[0].tolist(),
                 "dC_dz": None if layer.dC_dz is None else layer.dC_dz[0].tolist(),
                 "dC_dW": None if layer.dC_dW is None else layer.dC_dW.tolist(),
                 "dC_db": None if layer.dC_db is None else layer.dC_db.tolist(),
                 "dC_da_in": layer.dC_da_in[0].tolist()}
                for layer in view.layers
            ],
        }  # fmt: skip
        write_json(out / "inspect.json", record)
        figures = Figures(out, debug=args.debug)
        figures.draw("network.png", "The forward pass: neurons shaded by activation", "network",
                     run_.model, x[0].astype(np.float32))  # fmt: skip
        figures.draw("backprop.png", "The backward pass: dC/da on the neurons, dC/dW on the "
                     "connections", "backprop", model, x, np.asarray(y), run_.loss)  # fmt: skip
        report = Report(f"descend inspect: sample {i}", head.replace("\n", "; "))
        report.section("Layers")
        report.table(summary_rows(view))
        for title, rows in tables:
            report.section(title)
            report.table(rows)
        if figures.made or figures.skipped:
            report.section("Figures")
        report.images(figures.made, figures.skipped)
        report.preformatted(EPILOG.split("\n\n", 1)[1])
        report.write(out / "report.html")
    print(f"\nfolder: {folder.shown} (inspect.json, figures, report.html)")
    return 0
