"""Take the run with you: the model file, the config for ``descend train``, a ``ds.fit`` script.

The three are built from a :class:`~descend.playground.session.Session` and returned as bytes
or text (the server sends them as downloads; nothing is written where the learner did not ask).
Data the command line cannot name (the diabetes line, an upload, a notebook's arrays) goes with
them as ``data.csv``, which the config and the script then read.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path

import numpy as np

from descend.cli.options import dump_toml

__all__ = ["config_toml", "data_csv", "model_bytes", "needs_data_file", "python_script"]

# The built-in data sets the page offers, as the command line and the library load them.
_LOADERS = {
    "moons": "ds.datasets.moons(seed=0)",
    "circles": "ds.datasets.circles(seed=0)",
    "spiral": "ds.datasets.spiral(seed=0)",
    "xor": "ds.datasets.xor(seed=0)",
    "digits:0-3": "ds.datasets.digits(classes=(0, 1, 2, 3))",
}


def needs_data_file(session) -> bool:
    """Whether the run's data has no name on the command line (then ``data.csv`` carries it).

    >>> from descend.playground import Session
    >>> needs_data_file(Session())
    False
    """
    return session.settings["data"] not in _LOADERS


def model_bytes(session) -> bytes:
    """The model as ``ds.save`` writes it (``ds.load`` reads it back).

    >>> from descend.playground import Session
    >>> model_bytes(Session())[:2]   # a zip archive
    b'PK'
    """
    import descend as ds

    with tempfile.TemporaryDirectory(prefix="descend-playground-") as folder:
        path = Path(folder) / "model.npz"
        ds.save(session.model, path)
        return path.read_bytes()


def data_csv(session) -> str:
    """The data set as CSV, features then the target (class codes or values), exactly.

    >>> from descend.playground import Session
    >>> data_csv(Session()).splitlines()[0]
    'x0,x1,target'
    """
    data = session.data
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*data.features, data.target or "target"])
    X = np.asarray(data.X, dtype=np.float64)
    y = np.asarray(data.y)
    for row, target in zip(X.tolist(), y.tolist(), strict=True):
        writer.writerow([repr(v) for v in row] + [repr(target)])
    return out.getvalue()


def _epochs(session) -> int:
    per_epoch = session.batches.__len__()
    return max(1, math.ceil(session.updates / per_epoch))


def config_toml(session) -> str:
    """The run's settings as ``descend train --config`` reads them.

    >>> from descend.playground import Session
    >>> 'data = "moons"' in config_toml(Session())
    True
    """
    s = session.settings
    values = {
        "data": s["data"] if s["data"] in _LOADERS else "data.csv",
        "task": session.data.task,
        "hidden": list(s["hidden"]) or "none",
        "activation": s["activation"],
        "loss": session.loss,
        "optimizer": s["optimizer"],
        "lr": s["lr"],
        "batch": s["batch"],
        "epochs": _epochs(session),
        "seed": s["seed"],
        "val_split": s["val_split"],
        "test_split": 0.0,
        "standardize": bool(session.standardize),
    }
    note = (
        f"The playground run: {session.updates} updates ({session.epochs_done} full epochs of "
        f"{len(session.batches)} updates).\n"
        "Repeat it with: descend train --config config.toml --out runs/playground"
    )
    if needs_data_file(session):
        note += "\n(with data.csv, downloaded from the playground, in the current folder)"
    return dump_toml(values, note)


def python_script(session) -> str:
    """A short script that repeats the run with ``ds.fit``: the same weights, bit for bit.

    >>> from descend.playground import Session
    >>> session = Session()
    >>> _ = session.step(12)            # one epoch (10 updates) and two more
    >>> print(python_script(session).splitlines()[0][:60])
    # The playground run: 12 updates of moons, network 2-16-16-1
    """
    s = session.settings
    data = session.data
    info = session.prep.info
    classification = data.task == "classification"
    if needs_data_file(session):
        load = (
            'table = np.loadtxt("data.csv", delimiter=",", skiprows=1, ndmin=2)\n'
            "X, y = table[:, :-1], table[:, -1]"
            + ("\ny = y.astype(np.int64)" if classification else "")
        )
    else:
        load = f"X, y = {_LOADERS[s['data']]}"
    lines = [
        f"# The playground run: {session.updates} updates of {_describe(session)}.",
        "import numpy as np",
        "",
        "import descend as ds",
        "",
        load,
    ]
    n_val = int(round(len(data.X) * s["val_split"])) if s["val_split"] else 0
    if n_val:
        lines += [
            "# The playground's split (as descend train makes it): the validation samples drawn",
            "# with the seed, each class in proportion" if classification else "# with the seed",
            "idx = np.arange(len(X)).reshape(-1, 1)",
            f"train_idx, val_idx, _, _ = ds.datasets.train_test_split(idx, y, test_size={n_val}, "
            f"stratify={classification}, seed={s['seed']})",
            "X_train, y_train = X[train_idx[:, 0]], y[train_idx[:, 0]]",
            "X_val, y_val = X[val_idx[:, 0]], y[val_idx[:, 0]]",
        ]
    else:
        lines += ["X_train, y_train, X_val, y_val = X, y, None, None"]
    if info["standardize"]:
        lines += [
            "# Standardised with the training samples' mean and standard deviation",
            "scaler = ds.datasets.Standardizer().fit(X_train)",
            "X_train = (X_train - scaler.mean_) / scaler.scale_",
        ]
        if n_val:
            lines += ["X_val = (X_val - scaler.mean_) / scaler.scale_"]
    lines += ["X_train = X_train.astype(np.float32)"]
    if n_val:
        lines += ["X_val = X_val.astype(np.float32)"]
    if data.task == "regression":
        lines += _regression_target_lines(info, n_val)
    sizes = session.sizes
    out_act = repr(session.output_activation)
    if s["data"] == "given" and session.model_factory is not None:
        lines += [
            "# The model you gave ds.playground(X, y, model=...), untrained (the playground",
            "# trained a copy of it): in your notebook, where my_model is that model,",
            "model = ds.nn.from_config(my_model.get_config())  # noqa: F821",
            "model.load_state_dict(my_model.state_dict())  # noqa: F821",
        ]
    else:
        lines += [
            f"model = ds.nn.mlp({sizes}, {s['activation']!r}, {out_act}, seed={s['seed']})",
        ]
    per_epoch = len(session.batches)
    epochs = _epochs(session)
    callbacks = "[]"
    if session.updates % per_epoch:
        lines += [
            "",
            "",
            "class StopAfter(ds.Callback):",
            '    """Stop where the playground stopped, in the middle of an epoch."""',
            "",
            "    reads_gradients = False",
            "",
            "    def on_step_end(self, step, logs):",
            f"        self.stop_training = step + 1 >= {session.updates}",
            "",
            "",
        ]
        callbacks = "[StopAfter()]"
    validation = "(X_val, y_val)" if n_val else "None"
    batch = repr(s["batch"])
    lines += [
        f"history = ds.fit(model, X_train, y_train, loss={session.loss!r}, "
        f"optimizer={s['optimizer']!r},",
        f"                 lr={s['lr']!r}, batch_size={batch}, epochs={epochs}, seed={s['seed']},",
        f"                 validation_data={validation}, callbacks={callbacks}, progress=False)",
        "print(history.n_updates, 'updates; last cost', history.step['loss'][-1])",
        'ds.save(model, "model.npz")',
        "",
    ]
    return "\n".join(lines)


def _regression_target_lines(info: dict, n_val: int) -> list[str]:
    lines = ["y_train = y_train.astype(np.float32)"]
    if n_val:
        lines += ["y_val = y_val.astype(np.float32)"]
    if info.get("target_scale"):
        lines = [
            "# The target standardised with the training values' mean and standard deviation",
            "mean, std = float(np.mean(y_train)), float(np.std(y_train)) or 1.0",
            *lines,
            "y_train = ((y_train.astype(np.float64) - mean) / std).astype(np.float32)",
        ]
        if n_val:
            lines += ["y_val = ((y_val.astype(np.float64) - mean) / std).astype(np.float32)"]
    return lines


def _describe(session) -> str:
    s = session.settings
    batch = {"full": "batch", 1: "stochastic"}.get(s["batch"], f"mini-batch (k={s['batch']})")
    return (
        f"{s['data']}, network {'-'.join(map(str, session.sizes))}, {batch} gradient descent "
        f"with {s['optimizer']} at lr {s['lr']:g}, seed {s['seed']}"
    )
