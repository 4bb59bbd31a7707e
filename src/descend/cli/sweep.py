"""``descend sweep``: many trainings (learning rates x batch sizes x optimizers x seeds), a table.

With ``--workers N`` the runs are Ray tasks (the ``ray`` extra), each giving the same numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from descend.cli import data as data_module
from descend.cli.cluster_options import CLUSTER_OPTIONS, RAY_EXTRA, cluster_from
from descend.cli.errors import UsageError
from descend.cli.figures import Figures
from descend.cli.options import Option, did_you_mean, resolve
from descend.cli.output import RunFolder, add_command
from descend.cli.report import Report
from descend.cli.runs import write_config, write_json, write_text
from descend.cli.train import (
    EXPERIMENT_DATA,
    EXPERIMENT_NETWORK,
    OPTIMIZERS,
    default_out,
    prepare_experiment,
)

OPTIONS = (
    *EXPERIMENT_DATA,
    *EXPERIMENT_NETWORK,
    Option("lrs", "floats", [0.01, 0.1], "the learning rates", metavar="LIST"),
    Option("batches", "batches", ["full", 32], "the batch sizes (full, 1 or K)",
           metavar="LIST"),
    Option("optimizers", "names", ["gd", "adam"], "the update rules, comma-separated: "
           + ", ".join(OPTIMIZERS), metavar="LIST"),
    Option("seeds", "ints", [0], "the seeds (initial weights and shuffling)", metavar="LIST"),
    Option("epochs", "int", 20, "passes over the data in every run", metavar="N"),
    Option("test_split", "fraction", 0.25, "fraction held out for the test columns",
           metavar="FRACTION"),
    Option("standardize", "bool", None, "standardise the features (default: yes, unless every "
           "feature already lies in [0, 1])"),
    Option("figures", "bool", True, "draw the figure (PNG, and in the report)"),
    Option("out", "str", None, "the folder to write (default: runs/sweep-<data>-<time>)",
           metavar="DIR", saved=False),
    *CLUSTER_OPTIONS,
)  # fmt: skip

EPILOG = f"""\
examples:
  descend sweep moons --lrs 0.01,0.1,0.5 --batches full,32,1 --optimizers gd,adam
  descend sweep sweep.toml --workers 2          # the runs as Ray tasks, 2 at a time
  descend sweep digits:0-3 --seeds 0,1,2 --workers 8 --address 10.0.0.5:6379

A TOML file (given as DATA, or with --config) holds the same settings, named as the flags with
underscores, e.g.:

  data = "moons"
  lrs = [0.01, 0.1]
  batches = ["full", 32]
  optimizers = ["gd", "adam"]
  seeds = [0, 1]

The folder gets sweep.md (one row per run), sweep.json, config.toml, sweep.png and
report.html. --workers {RAY_EXTRA}; each run gives the same numbers as without it.
"""


def register(subparsers, parents) -> None:
    """Add ``descend sweep``."""
    add_command(
        subparsers, parents, "sweep", OPTIONS, run,
        help="train for every learning rate x batch size x optimizer x seed",
        description="Train one network for every combination of learning rates, batch sizes, "
        "optimizers and seeds on one data set, and tabulate the results (on Ray with "
        "--workers).",
        epilog=EPILOG,
    )  # fmt: skip


def _settle(args: argparse.Namespace) -> dict:
    config = args.config
    data = getattr(args, "data", None)
    if config is None and data and data.endswith(".toml"):
        config, args.data = data, None  # descend sweep sweep.toml
        del args.data
    values = resolve(OPTIONS, args, config, "sweep")
    if not values["data"]:
        raise UsageError("no data given; e.g. descend sweep moons, or a TOML file with data = ...")
    unknown = [n for n in values["optimizers"] if n not in OPTIMIZERS]
    if unknown:
        raise UsageError(
            f"--optimizers must name update rules among {', '.join(OPTIMIZERS)}, got "
            f"{','.join(values['optimizers'])!r}{did_you_mean(unknown[0], OPTIMIZERS)}"
        )
    if data_module.is_file_spec(values["data"]):
        values["data"] = str(Path(values["data"]).resolve())
    return values


def run(args: argparse.Namespace) -> int:
    """Run ``descend sweep``."""
    import descend as ds
    from descend.cli.train import scaled_target

    values = _settle(args)
    cluster = cluster_from(values)
    prep, output_activation, n_out = prepare_experiment(values)
    data, n_train = prep.data, len(prep.X_train)
    sizes = [data.n_features, *values["hidden"], n_out]
    test = prep.scaled_test()
    optimizers = values["optimizers"]
    n_runs = len(values["lrs"]) * len(values["batches"]) * len(optimizers) * len(values["seeds"])
    folder = RunFolder(values["out"] or default_out(values["data"], "sweep"), force=args.force,
                       default=not values["out"])  # fmt: skip
    where = f"on {cluster!r}" if cluster is not None else "one after another"
    print(f"sweep: {n_runs} runs of {'-'.join(map(str, sizes))} on {values['data']} "
          f"({n_train} training samples), {where}", flush=True)  # fmt: skip
    start = time.perf_counter()
    result = ds.experiments.grid_sweep(
        _Seeded(sizes, values["activation"], output_activation), prep.X_train,
        scaled_target(prep.y_train, prep.info), loss=values["loss"], lrs=values["lrs"],
        batch_sizes=values["batches"], optimizers=optimizers, seeds=values["seeds"],
        epochs=values["epochs"], test_data=test, cluster=cluster,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    table = result.to_markdown()
    with folder:
        out = folder.path
        write_text(out / "sweep.md", table + "\n")
        write_json(out / "sweep.json", {"rows": result.rows, "settings": result.settings})
        write_config(out, {o.key: values[o.key] for o in OPTIONS if o.saved}, "sweep",
                     shown=folder.shown)  # fmt: skip
        figures = Figures(out, debug=args.debug)
        if values["figures"]:
            figures.call("sweep.png", "Final training loss against the learning rate, one line per "
                         "batch size and optimizer (mean over seeds)",
                         lambda: _figure(result), "the sweep figure")  # fmt: skip
        else:
            figures.skip("The sweep figure", "--no-figures was given")
        _report(out, values, result, figures, elapsed, cluster, sizes, n_train)
    out = folder.shown
    print()
    print(table)
    best = result.best()
    print(f"\nbest: {best['optimizer']} lr={best['lr']:g} batch {best['batch size']} "
          f"(train loss {best['train loss']:.4g}); {elapsed:.1f} s")  # fmt: skip
    print(f"folder: {out}\nreport: {out / 'report.html'}")
    return 0


class _Seeded:
    """``seed -> Module``: the sweep's network with the initial weights of that seed."""

    def __init__(self, sizes, activation, output_activation) -> None:
        self.sizes, self.activation, self.output = sizes, activation, output_activation

    def __call__(self, seed: int):
        import descend as ds

        return ds.nn.mlp(self.sizes, self.activation, self.output, seed=seed)


def _figure(result):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    lines: dict = {}
    for row in result.rows:
        key = (row["optimizer"], row["batch size"])
        lines.setdefault(key, {}).setdefault(row["lr"], []).append(row["train loss"])
    for (optimizer, batch), by_lr in lines.items():
        lrs = sorted(by_lr)
        ax.plot(lrs, [np.nanmean(by_lr[lr]) for lr in lrs], marker="o",
                label=f"{optimizer}, batch {batch}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final training loss")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _report(out, values, result, figures, elapsed, cluster, sizes, n_train) -> None:
    report = Report(f"descend sweep: {values['data'] if len(values['data']) < 60 else 'data'}",
                    f"{len(result.rows)} runs: learning rates x batch sizes x optimizers x "
                    "seeds")  # fmt: skip
    report.section("Runs")
    report.table(result.rows)
    report.section("Figures")
    report.images(figures.made, figures.skipped)
    report.section("Settings")
    report.key_values({
        **{k: v for k, v in values.items() if k not in ("out", "workers", "address")},
        "network": "-".join(map(str, sizes)), "training samples": n_train,
        "ran on": repr(cluster) if cluster is not None else "this process, one run at a time",
    })  # fmt: skip
    report.paragraph(f"The whole sweep took {elapsed:.1f} s. Repeat it with: descend sweep "
                     "--config config.toml", "note")  # fmt: skip
    report.write(out / "report.html")
