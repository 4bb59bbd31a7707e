"""``descend train``: train a network on a data set and keep everything in a run folder."""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from descend import losses
from descend.cli import data as data_module
from descend.cli.cluster_options import CLUSTER_OPTIONS, cluster_from
from descend.cli.console import EpochLog, Keeper, text_table
from descend.cli.errors import CLIError, Interrupted, UsageError
from descend.cli.figures import Figures, viz_function
from descend.cli.options import Option, resolve
from descend.cli.output import RunFolder, add_command
from descend.cli.report import Report, format_number
from descend.cli.runs import write_config, write_history, write_json

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
# Every name the library takes for a cost (ds.losses.LOSSES, with its aliases such as bce and
# cross_entropy), and auto: the task decides.
LOSSES = ("auto", *losses.LOSSES)
# Every update rule the library knows by name (ds.optim.get): nesterov is momentum with
# nesterov=True, sgd another name for gd.
OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
# The learning rate when --lr is not given: a rate that trains the built-in data sets well.
DEFAULT_LR = {
    "gd": 0.1, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.005, "adam": 0.01,
    "adamw": 0.01,
}  # fmt: skip
OPTIMIZER_HELP = (
    "the update rule: gd (sgd), momentum, nesterov (momentum with Nesterov's look-ahead), "
    "rmsprop, adam or adamw (Adam with decoupled weight decay)"
)
LR_HELP = (
    "the learning rate (default: 0.1 for gd, 0.05 for momentum and nesterov, 0.005 for "
    "rmsprop, 0.01 for adam and adamw)"
)

# The options that compare and sweep share (train's own say more in their help).
EXPERIMENT_DATA = (
    Option("data", "str", None, "a built-in data set (digits:0-3, moons, ...) or a .csv / .npy "
           "file", positional=True, metavar="DATA"),
    Option("target", "str", None, "the target column of a CSV (name) or .npy (number) file; "
           "default: the last column", metavar="COLUMN"),
    Option("task", "choice", "auto", "classification, regression or auto",
           choices=("auto", "classification", "regression")),
)  # fmt: skip
EXPERIMENT_NETWORK = (
    Option("hidden", "hidden", [32], "hidden layer sizes, comma-separated", metavar="SIZES"),
    Option("activation", "choice", "relu", "activation of the hidden layers",
           choices=ACTIVATIONS, metavar="NAME"),
    Option("loss", "choice", "auto", "the cost (auto: from the task and the classes)",
           choices=LOSSES, metavar="NAME"),
)  # fmt: skip

OPTIONS = (
    Option("data", "str", None, "a built-in data set (digits, digits:0-3, moons, ...; see "
           "descend datasets) or a .csv / .npy file", positional=True, metavar="DATA"),
    Option("target", "str", None, "the target column of a CSV file (its name), or of a .npy file "
           "(its number); default: the last column", metavar="COLUMN"),
    Option("task", "choice", "auto", "classification or regression; auto: text or a few whole "
           "numbers in the target are classes, other numbers regression",
           choices=("auto", "classification", "regression")),
    Option("hidden", "hidden", [32], "hidden layer sizes, comma-separated; none for no hidden "
           "layer", metavar="SIZES"),
    Option("activation", "choice", "relu", "activation of the hidden layers: "
           + ", ".join(ACTIVATIONS), choices=ACTIVATIONS, metavar="NAME"),
    Option("loss", "choice", "auto", "the cost: auto picks categorical_cross_entropy (softmax "
           "output) for classes, binary_cross_entropy (sigmoid output) for two classes, mse for "
           "regression", choices=LOSSES, metavar="NAME"),
    Option("optimizer", "choice", "adam", OPTIMIZER_HELP, choices=OPTIMIZERS, metavar="NAME"),
    Option("lr", "float", None, LR_HELP, metavar="RATE"),
    Option("batch", "batch", 32, "samples per update: full (batch gradient descent), 1 "
           "(stochastic) or K (mini-batch)", metavar="full|1|K"),
    Option("epochs", "int", 50, "passes through the training data", metavar="N"),
    Option("seed", "int", None, "seed for the initial weights, the splits and the shuffling "
           "(default: a random seed, recorded in config.toml)", metavar="N"),
    Option("val_split", "fraction", 0.1, "fraction of all samples held out for validation "
           "(validation curves)", metavar="FRACTION"),
    Option("test_split", "fraction", 0.2, "fraction of all samples held out for the final test",
           metavar="FRACTION"),
    Option("standardize", "bool", None, "standardise the features (and a regression target) "
           "with the training data's mean and standard deviation (default: yes, unless every "
           "feature already lies in [0, 1], as the digits' pixels do)"),
    Option("patience", "int", 0, "stop early when the validation loss has not improved for N "
           "epochs and keep the best weights (0: never)", metavar="N"),
    Option("figures", "bool", True, "draw the figures (PNG, and in the report); --no-figures "
           "is faster"),
    Option("out", "str", None, "the run folder to write (default: runs/<data>-<time>)",
           metavar="DIR", saved=False),
    *CLUSTER_OPTIONS,
)  # fmt: skip

EPILOG = """\
examples:
  descend train digits:0-3                         # 4 digits, default settings
  descend train digits:0,1,7 --hidden 64,32 --epochs 30 --out runs/digits
  descend train moons --optimizer gd --lr 0.5 --batch full --epochs 200 --seed 0
  descend train breast_cancer --batch 1 --epochs 5 --test-split 0.25
  descend train data.csv --target price --hidden 16 --loss mse --out runs/prices
  descend train table.npy --target -1 --task classification
  descend train --config runs/digits/config.toml --out runs/again   # repeat a run exactly

Every option can also be set in a TOML file given with --config (flags win), as top-level
keys or in a [train] table, named as the flags with underscores: val_split = 0.1,
hidden = [32, 16], batch = "full".

The run folder gets model.npz, config.toml, preprocess.json, history.csv, steps.csv,
metrics.json, figures (PNG) and report.html. An existing --out folder that is not empty is
refused; --force replaces the run in it once the new run is complete (never a folder holding
files descend did not write). The folder appears only when complete: Ctrl-C during training
stops it and keeps what was trained (metrics.json and the report say it was interrupted);
Ctrl-C while the folder is being written leaves no folder (or the earlier run, unchanged).
"""


def register(subparsers, parents) -> None:
    """Add ``descend train``."""
    parser = add_command(
        subparsers, parents, "train", OPTIONS, run,
        help="train a network and write a run folder with a report",
        description="Train a dense network by gradient descent on a built-in data set or a "
        "CSV/.npy file, and write the model, its history, metrics, figures and an HTML report "
        "into a run folder.", epilog=EPILOG,
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


@dataclass
class Prepared:
    """The data split and scaled for training, and what was learned about it."""

    data: data_module.Dataset
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    info: dict[str, Any]

    def scaled_test(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The test part with its target as the cost sees it (:func:`scaled_target`), or None."""
        if self.X_test is None:
            return None
        return self.X_test, scaled_target(self.y_test, self.info)


def choose_loss(loss: str, data: data_module.Dataset) -> tuple[str, str | None, int]:
    """The cost (by its canonical name), the output activation and the number of outputs for
    this data; ``loss`` is ``"auto"`` or any name the library takes (``"bce"`` is
    ``"binary_cross_entropy"``).

    >>> from descend.cli.data import Dataset
    >>> import numpy as np
    >>> two = Dataset("d", np.zeros((2, 1)), np.array([0, 1]), "classification", ["x"], "y", [0, 1])
    >>> choose_loss("auto", two)
    ('binary_cross_entropy', 'sigmoid', 1)
    >>> choose_loss("bce", two)
    ('binary_cross_entropy', 'sigmoid', 1)
    """
    given = loss
    if loss != "auto":
        loss = losses.get(loss).__name__  # an alias names the same cost function
    if data.task == "regression":
        if loss not in ("auto", "mse"):
            raise UsageError(
                f"--loss {given} is a classification cost, but the target of {data.name} is "
                "continuous (regression); use --loss mse (or leave --loss out), or --task "
                "classification if the values are class labels"
            )
        n_out = 1 if data.y is None or data.y.ndim == 1 else data.y.shape[1]
        return "mse", None, n_out
    k = data.n_classes or 2
    if loss == "mse":
        raise UsageError(
            f"--loss {given} is a regression cost, but {data.name} has {k} classes; use --loss "
            "categorical_cross_entropy (or leave --loss out), or --task regression to predict "
            "the labels as numbers"
        )
    try:
        return losses.classification_output(loss, k, argument="--loss")
    except ValueError as exc:
        raise UsageError(f"{exc} (data: {data.name})") from None


def prepare_experiment(values: dict[str, Any]) -> tuple[Prepared, str | None, int]:
    """``descend compare``'s and ``sweep``'s data: loaded, its cost chosen (``values["loss"]``
    set to it), split with the first seed (no validation part) and scaled; every batch size of
    ``values["batches"]`` checked against the training samples.

    Returns
    -------
    (Prepared, output activation, number of outputs)
    """
    data = data_module.load(values["data"], values["target"], values["task"])
    values["loss"], output_activation, n_out = choose_loss(values["loss"], data)
    split = {**values, "seed": values["seeds"][0], "val_split": 0.0}
    prep = prepare(data, split)
    values["standardize"] = split["standardize"]
    n_train = len(prep.X_train)
    too_big = [b for b in values["batches"] if b != "full" and b > n_train]
    if too_big:
        raise UsageError(
            f"--batches {too_big[0]} is larger than the {n_train} training samples; use full "
            "for all of them, or a smaller number"
        )
    return prep, output_activation, n_out


def prepare(data: data_module.Dataset, values: dict[str, Any]) -> Prepared:
    """Split into training, validation and test parts, then standardise with training statistics."""
    import descend as ds

    data_module.check_magnitudes(data, values["standardize"])
    X, y, seed = data.X, data.y, values["seed"]
    n = len(X)
    classification = data.task == "classification"
    n_test = int(np.ceil(n * values["test_split"])) if values["test_split"] else 0
    n_val = int(round(n * values["val_split"])) if values["val_split"] else 0
    if n - n_test - n_val < 1:
        raise UsageError(
            f"--test-split {values['test_split']} and --val-split {values['val_split']} leave no "
            f"training samples of {n}; choose smaller fractions"
        )
    idx = np.arange(n)
    try:
        X_test = y_test = X_val = y_val = None
        train_idx = idx
        if n_test:
            train_idx, test_idx, _, _ = ds.datasets.train_test_split(
                idx.reshape(-1, 1), y, test_size=n_test, stratify=classification, seed=seed
            )
            train_idx, test_idx = train_idx[:, 0], test_idx[:, 0]
            X_test, y_test = X[test_idx], y[test_idx]
        if n_val:
            tr, va, _, _ = ds.datasets.train_test_split(
                train_idx.reshape(-1, 1), y[train_idx], test_size=n_val,
                stratify=classification, seed=seed,
            )  # fmt: skip
            train_idx, val_idx = tr[:, 0], va[:, 0]
            X_val, y_val = X[val_idx], y[val_idx]
    except ValueError as exc:
        raise UsageError(
            f"cannot split {data.name} ({n} samples) into test and validation parts: {exc}; "
            "use smaller --test-split/--val-split (or 0)"
        ) from None
    X_train, y_train = X[train_idx], y[train_idx]
    if values["standardize"] is None:
        # Features already in [0, 1] (pixels) keep their scale: standardising a pixel that is
        # almost always 0 would blow its rare non-zero values up to dozens of deviations.
        values["standardize"] = not (X_train.min() >= 0.0 and X_train.max() <= 1.0)
    info: dict[str, Any] = {
        "data": values["data"], "kind": _kind(values["data"]), "task": data.task,
        "features": data.features, "target": data.target, "classes": data.classes,
        "standardize": bool(values["standardize"]),
    }  # fmt: skip
    if values["standardize"]:
        scaler = ds.datasets.Standardizer().fit(X_train)
        info["mean"], info["scale"] = scaler.mean_.tolist(), scaler.scale_.tolist()

        def scale(a):
            return None if a is None else ((a - scaler.mean_) / scaler.scale_)

        X_train, X_val, X_test = scale(X_train), scale(X_val), scale(X_test)
        if data.task == "regression":
            mean, std = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
            info["target_mean"], info["target_scale"] = mean, std
    as32 = lambda a: None if a is None else np.asarray(a, dtype=np.float32)  # noqa: E731
    if data.task == "regression":
        ys = lambda a: None if a is None else np.asarray(a, dtype=np.float32)  # noqa: E731
        y_train, y_val, y_test = ys(y_train), ys(y_val), ys(y_test)
    return Prepared(data, as32(X_train), y_train, as32(X_val), y_val, as32(X_test), y_test, info)


def _kind(spec: str) -> str:
    if not data_module.is_file_spec(spec):
        return "builtin"
    return "npy" if spec.lower().endswith(".npy") else "csv"


def scaled_target(y: np.ndarray | None, info: dict) -> np.ndarray | None:
    """A regression target as the cost sees it (standardised when the features are)."""
    if y is None or info["task"] != "regression" or not info.get("target_scale"):
        return y
    return ((np.asarray(y, np.float64) - info["target_mean"]) / info["target_scale"]).astype(
        np.float32
    )


def split_metrics(model, X, y, loss: str, info: dict) -> dict[str, float]:
    """The cost and metrics of the model on one split (regression errors in target units)."""
    import descend as ds

    out = ds.evaluate(model, X, scaled_target(y, info), loss=loss)
    if info["task"] == "regression":
        pred = ds.predict(model, X).astype(np.float64).reshape(len(X), -1)[:, 0]
        if info.get("target_scale"):
            pred = pred * info["target_scale"] + info["target_mean"]
        truth = np.asarray(y, np.float64).reshape(-1)
        err = pred - truth
        ss_tot = float(np.sum((truth - truth.mean()) ** 2))
        out["mse"] = float(np.mean(err**2))
        out["mae"] = float(np.mean(np.abs(err)))
        out["r2"] = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
    return out


def settle(values: dict[str, Any]) -> dict[str, Any]:
    """Fill in what the defaults leave open (seed, learning rate) so the run can be repeated."""
    if values["seed"] is None:
        values["seed"] = random.SystemRandom().randrange(2**31)
    if values["lr"] is None:
        values["lr"] = DEFAULT_LR[values["optimizer"]]
    if values["data"] and data_module.is_file_spec(values["data"]):
        values["data"] = str(Path(values["data"]).resolve())
    return values


def default_out(spec: str, command: str | None = None) -> Path:
    """The folder a command writes when ``--out`` is not given: ``runs/<data>-<time>`` for
    ``descend train``, ``runs/<command>-<data>-<time>`` for the others."""
    stem = Path(spec).stem if data_module.is_file_spec(spec) else spec.replace(":", "-")
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-")
    name = f"{stem or 'run'}" if command is None else f"{command}-{stem or 'data'}"
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _optional_recorder(sizes: list[int]):
    """A Recorder (snapshots for the landscape, gradient norms) when descend has one."""
    try:
        from descend.train.recorder import Recorder
    except ImportError:
        return None
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    # Snapshots within about 64 MB, whatever the size of the network.
    keep = int(min(1000, max(3, (64 << 20) // (4 * n_params))))
    try:
        return Recorder(every=1, max_snapshots=keep)
    except (TypeError, ValueError):  # an incompatible signature: train without it
        return None


def run(args: argparse.Namespace) -> int:
    """Run ``descend train``."""
    import descend as ds

    values = _settled_values(args)
    cluster = cluster_from(values)  # an address that does not answer: before any folder
    data = data_module.load(values["data"], values["target"], values["task"])
    loss, output_activation, n_out = choose_loss(values["loss"], data)
    values["loss"] = loss
    prep = prepare(data, values)
    n_train = len(prep.X_train)
    if values["batch"] != "full" and values["batch"] > n_train:
        raise UsageError(
            f"--batch {values['batch']} is larger than the {n_train} training samples; use "
            f"--batch full for all of them at once, or a smaller number"
        )
    # Checked before training, so a refused folder costs nothing.
    folder = RunFolder(values["out"] or default_out(values["data"]), force=args.force,
                       default=not values["out"])  # fmt: skip
    sizes = [data.n_features, *values["hidden"], n_out]
    from descend.cli.limits import check_network

    check_network(sizes, data.n_samples, f"--hidden {','.join(map(str, values['hidden']))}")
    model = ds.nn.mlp(sizes, values["activation"], output_activation, seed=values["seed"])
    prep.info.update(loss=loss, output_activation=output_activation, sizes=sizes)
    if not args.quiet:
        print(_headline(values, data, prep, sizes, output_activation), flush=True)
    history, recorder, interrupted, diverged = _train(
        model, prep, values, sizes, args.quiet, cluster
    )
    metrics = _final_metrics(model, prep, loss, values, history, interrupted, diverged)
    with folder:
        _write_run(folder, args, values, model, prep, sizes, metrics, history, recorder)
    out = folder.shown
    _print_summary(metrics, out, args.quiet)
    if diverged:
        raise CLIError(f"{diverged} (the run so far is in {out})")
    if interrupted:
        raise Interrupted(
            f"interrupted after {history.n_epochs} of {values['epochs']} epochs "
            f"({history.n_updates} updates); what was trained so far is saved in {out}"
        )
    return 0


def _settled_values(args: argparse.Namespace) -> dict[str, Any]:
    values = resolve(OPTIONS, args, args.config, "train")
    if not values["data"]:
        raise UsageError(
            "no data given; name a built-in data set (e.g. descend train digits:0-3) or a "
            "CSV/.npy file, or give --config FILE.toml with data = ..."
        )
    return settle(values)


def _train(
    model, prep: Prepared, values: dict[str, Any], sizes: list[int], quiet: bool, cluster=None
):
    """Fit the model: (history, recorder, interrupted, diverged message or None)."""
    import descend as ds

    keeper = Keeper()
    callbacks: list = [keeper]
    tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not quiet and not tty:
        callbacks.append(EpochLog())
    validation = None
    if prep.X_val is not None:
        validation = (prep.X_val, scaled_target(prep.y_val, prep.info))
    if values["patience"]:
        monitor = "val_loss" if validation is not None else "loss"
        callbacks.append(ds.EarlyStopping(monitor=monitor, patience=values["patience"]))
    recorder = _optional_recorder(sizes)
    if recorder is not None:
        callbacks.append(recorder)
    interrupted, diverged = False, None
    history = None
    try:
        history = ds.fit(
            model, prep.X_train, scaled_target(prep.y_train, prep.info), loss=prep.info["loss"],
            optimizer=values["optimizer"], lr=values["lr"], batch_size=values["batch"],
            epochs=values["epochs"], seed=values["seed"], validation_data=validation,
            callbacks=callbacks, progress=(not quiet) and tty, cluster=cluster,
        )  # fmt: skip
        interrupted = bool(getattr(history, "interrupted", False))
    except KeyboardInterrupt:
        # fit that does not catch Ctrl-C itself: the History it was filling is still ours.
        history, interrupted = keeper.history, True
    except ds.DivergenceError as exc:
        history, diverged = exc.history, str(exc)
    if history is None:
        history = ds.History()
    return history, recorder, interrupted, diverged


def _write_run(folder: RunFolder, args, values, model, prep, sizes, metrics, history,
               recorder) -> None:  # fmt: skip
    """Every file of the run, into the folder's hidden sibling (renamed into place after)."""
    import descend as ds

    out = folder.path
    ds.save(model, out / "model.npz")
    write_config(out, {o.key: values[o.key] for o in OPTIONS if o.saved}, "train",
                 shown=folder.shown)  # fmt: skip
    write_json(out / "preprocess.json", prep.info)
    write_history(out, history)
    write_json(out / "metrics.json", metrics)
    if recorder is not None:
        _save_trajectory(out, recorder)
    figures = Figures(out, debug=args.debug, quiet=args.quiet)
    if values["figures"]:
        _draw(figures, model, prep, history, recorder)
    else:
        figures.skip("All figures", "--no-figures was given")
    report = build_report(values, prep, sizes, metrics, history, figures)
    report.write(out / "report.html")


def _headline(values, data, prep, sizes, output_activation) -> str:
    parts = [f"{len(prep.X_train)} train"]
    if prep.X_val is not None:
        parts.append(f"{len(prep.X_val)} validation")
    if prep.X_test is not None:
        parts.append(f"{len(prep.X_test)} test")
    task = data.task + (f", {data.n_classes} classes" if data.n_classes else "")
    net = "-".join(map(str, sizes))
    return (
        f"data   {values['data']}: {task}, {data.n_features} features; "
        f"{' / '.join(parts)} samples\n"
        f"model  {net} ({values['activation']} hidden, {output_activation or 'linear'} output), "
        f"{values['loss']}\n"
        f"train  {values['optimizer']} lr={values['lr']:g}, batch {values['batch']}, "
        f"{values['epochs']} epochs, seed {values['seed']}"
    )


def _final_metrics(model, prep, loss, values, history, interrupted, diverged) -> dict:
    splits = {}
    for name, X, y in (
        ("train", prep.X_train, prep.y_train),
        ("validation", prep.X_val, prep.y_val),
        ("test", prep.X_test, prep.y_test),
    ):
        if X is not None and len(X):
            try:
                with np.errstate(all="ignore"):
                    scores = split_metrics(model, X, y, loss, prep.info)
            except (ValueError, FloatingPointError):  # a diverged model: no finite cost
                scores = {"loss": float("nan")}
            splits[name] = {"samples": len(X), **scores}
    return {
        "data": values["data"], "task": prep.info["task"], "loss": loss,
        "n_classes": prep.data.n_classes, "n_features": prep.data.n_features,
        "splits": splits, "epochs": values["epochs"], "epochs_completed": history.n_epochs,
        "n_updates": history.n_updates, "wall_time": history.wall_time,
        "interrupted": interrupted, "stopped_early": bool(history.stopped_early),
        "diverged": diverged, "seed": values["seed"],
    }  # fmt: skip


def _save_trajectory(out: Path, recorder) -> None:
    """``trajectory.npz``: the recorded parameter snapshots, for ``descend landscape``."""
    snapshots = np.asarray(getattr(recorder, "snapshots", np.empty((0, 0))))
    if snapshots.ndim != 2 or len(snapshots) < 2:
        return
    from descend.io import atomic_write

    arrays = {
        "snapshots": snapshots,
        "steps": np.asarray(getattr(recorder, "snapshot_steps", np.arange(len(snapshots)))),
        "names": np.asarray(list(getattr(recorder, "param_names", [])), dtype=str),
    }
    atomic_write(out / "trajectory.npz", lambda f: np.savez(f, **arrays))


def _draw(figures: Figures, model, prep: Prepared, history, recorder) -> None:
    figures.draw("curves.png", "Training curves: the cost per update and per epoch", "history",
                 history)  # fmt: skip
    sample = prep.X_test if prep.X_test is not None else prep.X_train
    extra = {}
    if prep.data.classes is not None:
        extra["class_names"] = [str(c) for c in prep.data.classes]
    if prep.data.extra.get("image_shape") and not prep.info["standardize"]:
        extra["image_shape"] = tuple(prep.data.extra["image_shape"])
    figures.draw(
        "network.png", "The network on one test sample: weights by sign and size, neurons by "
        "activation", "network", model, sample[0], **extra,
    )  # fmt: skip
    if prep.data.n_features == 2 and prep.data.task == "classification":
        figures.draw(
            "decision_boundary.png", "Decision boundary on the training data",
            "decision_boundary", model, prep.X_train, prep.y_train,
        )  # fmt: skip
    if recorder is not None:
        figures.draw("gradient_norms.png", "Gradient norm of each layer at every update",
                     "gradient_norms", history)  # fmt: skip
    elif viz_function("gradient_norms") is not None:
        figures.skip("Gradient norms per layer", "no Recorder to record them")


def build_report(values, prep: Prepared, sizes, metrics, history, figures: Figures) -> Report:
    """The run's report.html."""
    data = prep.data
    title = f"descend train: {values['data'] if len(values['data']) < 60 else data.name}"
    report = Report(title, f"{data.task}, {'-'.join(map(str, sizes))} network, "
                    f"{values['optimizer']} lr={values['lr']:g}")  # fmt: skip
    if metrics["interrupted"]:
        report.paragraph(
            f"Training was interrupted (Ctrl-C) after {metrics['epochs_completed']} of "
            f"{metrics['epochs']} epochs; everything below is the model as it was then.",
            "warn",
        )
    if metrics["diverged"]:
        report.paragraph(f"Training diverged: {metrics['diverged']}", "warn")
    report.section("Final metrics")
    rows = [{"split": name, **split} for name, split in metrics["splits"].items()]
    report.table(rows)
    report.key_values({
        "epochs completed": f"{metrics['epochs_completed']} of {metrics['epochs']}",
        "updates (gradient-descent steps)": metrics["n_updates"],
        "wall time (s)": round(metrics["wall_time"], 3),
        "stopped early": metrics["stopped_early"],
    })  # fmt: skip
    report.section("Data")
    facts = {
        "source": data.source, "task": data.task, "samples": data.n_samples,
        "features": data.n_features, "target": data.target,
    }  # fmt: skip
    if data.classes is not None:
        facts["classes"] = ", ".join(map(str, data.classes))
    facts["training samples"] = len(prep.X_train)
    facts["validation samples"] = 0 if prep.X_val is None else len(prep.X_val)
    facts["test samples"] = 0 if prep.X_test is None else len(prep.X_test)
    facts["standardised"] = bool(values["standardize"])
    report.key_values(facts)
    report.section("Model")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        act = (prep.info["output_activation"] or "linear") if last else values["activation"]
        layers.append({"layer": i, "inputs": n_in, "units": n_out, "activation": act,
                       "parameters": n_in * n_out + n_out})  # fmt: skip
    report.table(layers)
    report.paragraph(f"Cost function: {prep.info['loss']}. Parameters in all: "
                     f"{sum(r['parameters'] for r in layers)}.")  # fmt: skip
    report.section("Settings")
    report.key_values({k: v for k, v in values.items() if k != "out"})
    report.paragraph("These are the settled options, also in config.toml: "
                     "descend train --config config.toml repeats this run.", "note")  # fmt: skip
    report.section("Training curves")
    curves = [(p, c) for p, c in figures.made if p.name == "curves.png"]
    for path, caption in curves:
        report.image(path, caption)
    epochs = history.epoch
    if epochs:
        keys = [k for k in epochs if k != "time"]
        n = len(epochs[keys[0]]) if keys else 0
        shown = sorted({*range(min(n, 3)), *range(max(0, n - 3), n)})
        report.table([{"epoch": i + 1, **{k: epochs[k][i] for k in keys}} for i in shown],
                     caption="First and last epochs (all of them in history.csv)")  # fmt: skip
    others = [(p, c) for p, c in figures.made if p.name != "curves.png"]
    if others or figures.skipped:
        report.section("Figures")
    for path, caption in others:
        report.image(path, caption)
    if figures.skipped:
        report.paragraph("Figures not drawn:", "note")
        report.bullet_list(f"{caption}: {why}" for caption, why in figures.skipped)
    report.section("Files in this folder")
    report.bullet_list([
        "model.npz: the network (descend.load reads it)",
        "config.toml: the settled options", "preprocess.json: features, classes, scaling",
        "history.csv: one row per epoch", "steps.csv: one row per update",
        "metrics.json: the final metrics", *[f"{p.name}: {c}" for p, c in figures.made],
    ])  # fmt: skip
    return report


def _print_summary(metrics: dict, out: Path, quiet: bool) -> None:
    rows = []
    for name, split in metrics["splits"].items():
        rows.append({"split": name, **{k: v for k, v in split.items()}})
    line = (
        f"{metrics['epochs_completed']} epochs, {metrics['n_updates']} updates in "
        f"{format_number(metrics['wall_time'], 3)} s"
    )
    if not quiet:
        print(f"\n{line}\n")
    print(text_table(rows))
    print(f"\nrun folder: {out}\nreport:     {out / 'report.html'}")
