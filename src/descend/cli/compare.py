"""``descend compare``: batch, stochastic and mini-batch gradient descent on the same data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from descend.cli import data as data_module
from descend.cli.cluster_options import CLUSTER_OPTIONS, cluster_from
from descend.cli.errors import CLIError, UsageError
from descend.cli.figures import Figures, experiments_module
from descend.cli.options import Option, resolve
from descend.cli.output import RunFolder, add_command
from descend.cli.report import Report
from descend.cli.runs import write_config, write_json, write_text
from descend.cli.train import (
    DEFAULT_LR,
    EXPERIMENT_DATA,
    EXPERIMENT_NETWORK,
    LR_HELP,
    OPTIMIZER_HELP,
    OPTIMIZERS,
    default_out,
    prepare_experiment,
)

OPTIONS = (
    *EXPERIMENT_DATA,
    Option("batches", "batches", ["full", 32, 1], "the batch sizes to compare: full is batch "
           "gradient descent, 1 stochastic, K mini-batch", metavar="LIST"),
    *EXPERIMENT_NETWORK,
    Option("optimizer", "choice", "gd", OPTIMIZER_HELP, choices=OPTIMIZERS, metavar="NAME"),
    Option("lr", "float", None, LR_HELP.replace("rate (", "rate, the same for every variant ("),
           metavar="RATE"),
    Option("epochs", "int", 20, "passes over the data, the same for every variant",
           metavar="N"),
    Option("seeds", "ints", [0, 1, 2], "one run per variant and seed (initial weights and "
           "shuffling); the table shows mean and spread", metavar="LIST"),
    Option("test_split", "fraction", 0.25, "fraction held out for the test columns",
           metavar="FRACTION"),
    Option("standardize", "bool", None, "standardise the features (and a regression target) "
           "with the training data's mean and standard deviation (default: yes, unless every "
           "feature already lies in [0, 1], as the digits' pixels do)"),
    Option("figures", "bool", True, "draw the figures (PNG, and in the report)"),
    Option("out", "str", None, "the folder to write (default: runs/compare-<data>-<time>)",
           metavar="DIR", saved=False),
    *CLUSTER_OPTIONS,
)  # fmt: skip

EPILOG = """\
examples:
  descend compare digits:0-3 --out runs/demo        # the main demonstration
  descend compare moons --batches full,16,1 --epochs 50 --lr 0.5
  descend compare breast_cancer --seeds 0,1,2,3,4 --optimizer momentum
  descend compare data.csv --target label --batches full,64,8 --epochs 10
  descend compare --config runs/demo/config.toml --out runs/demo-again

Every variant starts from the same initial weights (one set per seed), sees the same data and
takes the same number of epochs; only the batch size differs. The table gives, per variant,
the updates, the wall time, the time to reach a common target loss, the final training and
test loss and accuracy, and how noisy the per-update loss is (mean and std over the seeds).
The folder gets comparison.md, comparison.json, config.toml, figures and report.html.
"""


def register(subparsers, parents) -> None:
    """Add ``descend compare``."""
    add_command(
        subparsers, parents, "compare", OPTIONS, run,
        help="compare batch, stochastic and mini-batch gradient descent",
        description="Train the same network from the same initial weights with batch, "
        "stochastic and mini-batch gradient descent, and compare speed, accuracy and noise.",
        epilog=EPILOG,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run ``descend compare``."""
    import descend as ds

    values = resolve(OPTIONS, args, args.config, "compare")
    cluster = cluster_from(values)
    if not values["data"]:
        raise UsageError("no data given; e.g. descend compare digits:0-3 (see descend datasets)")
    if values["lr"] is None:
        values["lr"] = DEFAULT_LR[values["optimizer"]]
    if data_module.is_file_spec(values["data"]):
        values["data"] = str(Path(values["data"]).resolve())
    experiments = experiments_module()
    if experiments is None or not hasattr(experiments, "compare_variants"):
        raise CLIError(
            "descend compare needs descend.experiments and matplotlib; install them with: "
            'pip install "descend[cli]"'
        )
    prep, output_activation, n_out = prepare_experiment(values)
    data, n_train, loss = prep.data, len(prep.X_train), values["loss"]
    labels = [ds.experiments.variant_label(b, n_train) for b in values["batches"]]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--batches names the same variant twice ({', '.join(labels)})")
    sizes = [data.n_features, *values["hidden"], n_out]
    from descend.cli.limits import check_network

    check_network(sizes, data.n_samples, f"--hidden {','.join(map(str, values['hidden']))}")

    def model(seed: int):
        return ds.nn.mlp(sizes, values["activation"], output_activation, seed=seed)

    from descend.cli.train import scaled_target

    test = prep.scaled_test()
    folder = RunFolder(values["out"] or default_out(values["data"], "compare"), force=args.force,
                       default=not values["out"])  # fmt: skip
    print(
        f"comparing {', '.join(labels)} on {values['data']} ({n_train} training samples), "
        f"network {'-'.join(map(str, sizes))}, {values['optimizer']} lr={values['lr']:g}, "
        f"{values['epochs']} epochs, seeds {', '.join(map(str, values['seeds']))}",
        flush=True,
    )
    start = time.perf_counter()
    result = ds.experiments.compare_variants(
        model, prep.X_train, scaled_target(prep.y_train, prep.info), loss=loss, test_data=test,
        batch_sizes=values["batches"], epochs=values["epochs"], optimizer=values["optimizer"],
        lr=values["lr"], seeds=values["seeds"], cluster=cluster,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    table = result.to_markdown()
    with folder:
        out = folder.path
        write_text(out / "comparison.md", table + "\n")
        write_json(out / "comparison.json", result.to_dict())
        write_config(out, {o.key: values[o.key] for o in OPTIONS if o.saved}, "compare",
                     shown=folder.shown)  # fmt: skip
        figures = Figures(out, debug=args.debug)
        if not values["figures"]:
            figures.skip("All figures", "--no-figures was given")
        draw = figures.draw if values["figures"] else (lambda *a, **k: None)
        draw("curves.png", "The cost per update and per epoch, every variant (first seed)",
                     "history", result)  # fmt: skip
        draw("curves_log.png", "The same curves on a log scale", "history", result,
                     log_scale=True)  # fmt: skip
        draw("tradeoff.png", "Speed against smoothness: wall time, time to the target "
                     "loss, and the noise of the per-update loss", "tradeoff", result)  # fmt: skip
        report = Report(
            f"descend compare: {values['data'] if len(values['data']) < 60 else data.name}",
            "batch, stochastic and mini-batch gradient descent from the same initial weights",
        )
        report.section("Comparison")
        report.table(_plain_rows(result.summary()))
        if "\n\n" in table:
            report.paragraph(table.split("\n\n", 1)[1], "note")
        report.section("Figures")
        report.images(figures.made, figures.skipped)
        report.section("Data and model")
        report.key_values({
            "data": values["data"], "task": data.task, "training samples": n_train,
            "test samples": 0 if prep.X_test is None else len(prep.X_test),
            "network": "-".join(map(str, sizes)),
            "hidden activation": values["activation"],
            "output activation": output_activation or "linear", "cost": loss,
        })  # fmt: skip
        report.section("Settings")
        report.key_values({k: v for k, v in values.items() if k != "out"})
        report.paragraph(f"The whole comparison took {elapsed:.1f} s. Repeat it with: descend "
                         "compare --config config.toml", "note")  # fmt: skip
        report.write(out / "report.html")
    out = folder.shown
    print()
    print(table)
    print(f"\nfolder: {out}\nreport: {out / 'report.html'}")
    return 0


def _plain_rows(summary: list[dict]) -> list[dict]:
    """Summary rows with ``(mean, std)`` pairs as "mean ± std" text, narrow enough for a page.

    The batch size is in the variant's label, so it gets no column of its own; three
    significant digits (one for the spread) are what the seeds support.
    """
    rows = []
    for row in summary:
        plain = {}
        for key, value in row.items():
            if key == "batch size":
                continue
            if isinstance(value, tuple) and len(value) == 2:
                mean, std = value
                plain[key] = mean if std != std or std == 0 else f"{mean:.3g} ± {std:.1g}"
            else:
                plain[key] = value
        rows.append(plain)
    return rows
