"""One learner's playground: the data, the network and its training, held on the server.

A :class:`Session` is what one browser tab steers. It owns its data (split and standardised as
``descend train`` does, by the same code), its network, its update rule and its batches, and
trains with descend's own one-update step: ``N`` updates here are ``N`` updates of
``ds.fit`` with the same seed and settings, bit for bit. Everything it returns is plain JSON
values, ready for the page.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from descend import losses
from descend.cli import data as data_module
from descend.cli import train as train_cmd
from descend.cli.errors import CLIError
from descend.compile import backend

__all__ = ["DATASETS", "DEFAULTS", "PlaygroundError", "Session"]


class PlaygroundError(ValueError):
    """A setting or a request the playground cannot follow; the message says what to change."""


# The data sets the page offers, by the name the page sends (never a path).
DATASETS = {
    "moons": "two interleaved half-moons (2 features, 2 classes)",
    "circles": "a ring around a disc (2 features, 2 classes)",
    "spiral": "three interleaved spiral arms (2 features, 3 classes)",
    "xor": "four clusters, opposite corners alike (2 features, 2 classes)",
    "digits:0-3": "8x8 images of the digits 0 to 3 (64 pixels, 4 classes)",
    "diabetes-line": "a straight line through one feature of the diabetes data (BMI): "
    "two parameters, so the cost surface can be drawn",
}
# What the page switches to when a data set is chosen (the learner can change each).
PRESETS = {
    "moons": {"hidden": [16, 16], "activation": "tanh", "optimizer": "gd", "lr": 0.3, "batch": 16},
    "circles": {"hidden": [8, 8], "activation": "tanh", "optimizer": "gd", "lr": 0.3, "batch": 16},
    "spiral": {"hidden": [32, 32], "activation": "relu", "optimizer": "adam", "lr": 0.01,
               "batch": 16},
    "xor": {"hidden": [8], "activation": "tanh", "optimizer": "gd", "lr": 0.3, "batch": 16},
    "digits:0-3": {"hidden": [16], "activation": "relu", "optimizer": "gd", "lr": 0.2,
                   "batch": 32},
    "diabetes-line": {"hidden": [], "activation": "relu", "optimizer": "gd", "lr": 0.8,
                      "batch": "full"},
    "upload": {"hidden": [16], "activation": "relu", "optimizer": "adam", "lr": 0.01, "batch": 32},
    "given": {"hidden": [16], "activation": "relu", "optimizer": "adam", "lr": 0.01, "batch": 32},
}  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "data": "moons", "loss": "auto", "seed": 0, "val_split": 0.2, "sample": 0,
    **PRESETS["moons"],
}  # fmt: skip
ACTIVATIONS = train_cmd.ACTIVATIONS
OPTIMIZERS = train_cmd.OPTIMIZERS
# the page's menu: one name per cost function (the command line also takes their aliases)
LOSSES = ("auto", *{f: name for name, f in reversed(losses.LOSSES.items())}.values())
MAX_LAYERS = 6
MAX_UNITS = 128
MAX_UPDATES_PER_REQUEST = 1000
GRID = 48  # the decision boundary's grid: GRID x GRID predictions
SURFACE_GRID = 60


def _check_settings(settings: dict[str, Any], choices: tuple[str, ...]) -> dict[str, Any]:
    """Every setting checked and converted; an unknown key or a bad value is a PlaygroundError."""
    out = dict(settings)
    unknown = sorted(set(out) - set(DEFAULTS))
    if unknown:
        raise PlaygroundError(f"unknown setting {unknown[0]!r}; settings are {sorted(DEFAULTS)}")
    if out["data"] not in choices:
        raise PlaygroundError(f"data {out['data']!r} is not offered; choose one of {choices}")
    hidden = out["hidden"]
    if isinstance(hidden, str):
        hidden = [] if hidden.strip().lower() in ("", "none") else hidden.split(",")
    try:
        hidden = [int(h) for h in hidden]
    except (TypeError, ValueError):
        raise PlaygroundError(
            f"hidden must be layer sizes such as [16, 16], got {out['hidden']!r}"
        ) from None
    if len(hidden) > MAX_LAYERS or any(not 1 <= h <= MAX_UNITS for h in hidden):
        raise PlaygroundError(
            f"hidden {hidden}: at most {MAX_LAYERS} hidden layers of 1 to {MAX_UNITS} units"
        )
    out["hidden"] = hidden
    for key, allowed in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS), ("loss", LOSSES)):
        if out[key] not in allowed:
            raise PlaygroundError(f"{key} {out[key]!r} is not known; choose one of {allowed}")
    out["lr"] = _number(out["lr"], "lr", 1e-6, 100.0)
    out["val_split"] = _number(out["val_split"], "val_split", 0.0, 0.5)
    out["seed"] = int(_number(out["seed"], "seed", 0, 2**31 - 1))
    out["sample"] = int(_number(out["sample"], "sample", 0, 10**9))
    batch = out["batch"]
    if batch != "full":
        batch = int(_number(batch, "batch", 1, 10**9))
    out["batch"] = batch
    return out


def _number(value: Any, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise PlaygroundError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return number


class FitSteps:
    """descend's one-update step and its batches, set up exactly as ``ds.fit`` sets them up.

    ``ds.train.Trainer`` makes each update; the targets are checked and converted once by
    ``trainer.prepare``; the batches come from ``ds.data.batches`` with the seed; each update
    runs under ``fit``'s BLAS thread choice for small products; nothing reads the weights'
    ``.grad`` between updates (as in ``fit`` without callbacks). So ``n`` calls of :meth:`step`
    make the same numbers as the first ``n`` updates of ``ds.fit``, bit for bit.
    """

    def __init__(self, model, loss: str, optimizer, X: np.ndarray, y: np.ndarray, batch_size,
                 seed: int) -> None:  # fmt: skip
        import descend as ds
        from descend.train.inference import largest_matmul_flops

        self.trainer = ds.train.Trainer(model, loss=loss, optimizer=optimizer)
        self.trainer.reads_grads = False
        size = ds.data.batches(X, y, batch_size=batch_size, shuffle=False).batch_size
        targets = self.trainer.prepare(X, y, size)
        self.batches = ds.data.batches(X, targets, batch_size=batch_size, shuffle=True, seed=seed)
        self._threads = backend.single_thread_if_small
        self._flops = largest_matmul_flops(model, size)
        self._epoch = iter(self.batches)

    def step(self) -> tuple[float, int]:
        """One update on the next batch (a new epoch's order when one ends): its cost, its size.

        Raises ``ds.DivergenceError`` when the cost or a gradient is not finite (nothing was
        updated).
        """
        try:
            xb, yb = next(self._epoch)
        except StopIteration:
            self._epoch = iter(self.batches)
            xb, yb = next(self._epoch)
        with self.threads(), np.errstate(over="ignore", invalid="ignore"):
            return float(self.trainer.step(xb, yb)), len(xb)

    def threads(self):
        """The BLAS threads ``fit`` trains (and validates) with: one when the products are small."""
        return self._threads(self._flops)


def line_dataset() -> data_module.Dataset:
    """The diabetes line as a data set: BMI in [0, 1] against the standardised progression."""
    from descend.experiments import line_problem

    problem = line_problem("bmi")
    return data_module.Dataset(
        name="diabetes-line", X=problem.X, y=problem.y, task="regression", features=["bmi"],
        target="progression", source="the diabetes data's BMI column (scaled to [0, 1])",
    )  # fmt: skip


@functools.cache
def load_choice(name: str) -> data_module.Dataset:
    """A data set the page offers, by name (built-in only: no path is ever taken from the page).

    Loaded once per process (the digits come through scikit-learn, slow to import) and never
    changed: :meth:`Session.dataset` hands out a new record around the same arrays.
    """
    if name == "diabetes-line":
        return line_dataset()
    if name not in DATASETS:
        raise PlaygroundError(f"data {name!r} is not offered; choose one of {tuple(DATASETS)}")
    return data_module.load(name)


class Session:
    """One tab's playground: settings, data, network, trainer, and what has happened so far.

    Parameters
    ----------
    given : Dataset, optional
        Data from the command line or the notebook (offered to the page as ``"given"``).
    model_factory : callable, optional
        ``sizes -> Module`` used instead of :func:`descend.nn.mlp` for the given data (the
        notebook's own model; the page draws it when it is a Sequential of Dense layers).

    Examples
    --------
    >>> s = Session()
    >>> frame = s.step(3)
    >>> s.updates, len(frame["costs"])
    (3, 3)
    """

    def __init__(
        self, given: data_module.Dataset | None = None, model_factory: Callable | None = None
    ) -> None:
        self.given = given
        self.model_factory = model_factory
        self.uploaded: data_module.Dataset | None = None
        self.upload_name: str | None = None
        settings = dict(DEFAULTS)
        if given is not None:
            settings.update(data="given", **PRESETS["given"])
        self.settings = _check_settings(settings, self.choices())
        self.error: str | None = None
        self._build()

    # --- settings and building -------------------------------------------------------------

    def choices(self) -> tuple[str, ...]:
        """The data sets this session can use."""
        extra = (("given",) if self.given is not None else ()) + (
            ("upload",) if self.uploaded is not None else ()
        )
        return (*DATASETS, *extra)

    def dataset(self) -> data_module.Dataset:
        """The chosen data set (a fresh copy: preparing it never changes the loaded arrays)."""
        name = self.settings["data"]
        if name == "given":
            data = self.given
        elif name == "upload":
            data = self.uploaded
        else:
            data = load_choice(name)
        return data_module.Dataset(
            name=data.name, X=data.X, y=data.y, task=data.task, features=list(data.features),
            target=data.target, classes=data.classes, source=data.source,
        )  # fmt: skip

    def configure(self, changes: dict[str, Any]) -> dict:
        """Apply new settings and start again from fresh weights; returns the setup message."""
        if not isinstance(changes, dict):
            raise PlaygroundError("settings must be an object of setting: value")
        settings = _check_settings({**self.settings, **changes}, self.choices())
        # Built aside, then taken over: a setting that fails leaves the run as it was.
        candidate = copy.copy(self)
        candidate.settings = settings
        candidate._build()
        self.__dict__.update(candidate.__dict__)
        return self.setup()

    def reset(self, new_seed: bool = False) -> dict:
        """Fresh weights and shuffling: the same seed again, or the next seed."""
        if new_seed:
            self.settings["seed"] = (self.settings["seed"] + 1) % (2**31 - 1)
        self._build()
        return self.setup()

    def _build(self) -> None:
        import descend as ds

        s = self.settings
        data = self.dataset()
        try:
            loss, out_act, n_out = train_cmd.choose_loss(s["loss"], data)
            values = {"data": s["data"], "seed": s["seed"], "test_split": 0.0,
                      "val_split": s["val_split"], "standardize": None}  # fmt: skip
            prep = train_cmd.prepare(data, values)
        except (CLIError, ValueError) as exc:
            raise PlaygroundError(str(exc).replace("--", "")) from None
        self.data, self.prep, self.loss, self.output_activation = data, prep, loss, out_act
        self.standardize = values["standardize"]
        self.y_train = train_cmd.scaled_target(prep.y_train, prep.info)
        self.y_val = train_cmd.scaled_target(prep.y_val, prep.info)
        n_train = len(prep.X_train)
        if s["batch"] != "full" and s["batch"] > n_train:
            raise PlaygroundError(
                f"batch {s['batch']} is larger than the {n_train} training samples; choose "
                "full, 1 or a smaller k"
            )
        self.sizes = [data.n_features, *s["hidden"], n_out]
        if s["data"] == "given" and self.model_factory is not None:
            self.model = self.model_factory(self.sizes)
            self.sizes = _dense_sizes(self.model) or self.sizes
            if self.sizes[0] != data.n_features:
                raise PlaygroundError(
                    f"the model's first layer takes {self.sizes[0]} features, but {data.name} "
                    f"has {data.n_features}; build it with {data.n_features} inputs"
                )
            if s["loss"] == "auto" and data.task == "classification":
                # The cost that fits the model's own output: one unit or one per class.
                loss = (
                    "binary_cross_entropy" if self.sizes[-1] == 1 else "categorical_cross_entropy"
                )
                self.loss = loss
        else:
            self.model = ds.nn.mlp(self.sizes, s["activation"], out_act, seed=s["seed"])
        self.optimizer = ds.optim.get(s["optimizer"], lr=s["lr"])
        try:
            self.steps = FitSteps(self.model, loss, self.optimizer, prep.X_train, self.y_train,
                                  s["batch"], s["seed"])  # fmt: skip
        except (ValueError, TypeError) as exc:  # a notebook's model that does not fit the data
            raise PlaygroundError(f"the model cannot train on {data.name}: {exc}") from None
        self.batches = self.steps.batches
        self.updates = 0
        self.epochs_done = 0
        self.batch_in_epoch = 0
        self._epoch_total = 0.0
        self._epoch_seen = 0
        self.step_costs: list[float] = []
        self.epoch_logs: list[dict] = []
        self.wall_time = 0.0
        self.diverged: str | None = None
        self.surface = self._surface_setup()
        self.path = [self._two_params()] if self.surface else []
        self._view_model = None

    # --- training ----------------------------------------------------------------------------

    def step(self, n: int = 1, views: tuple[str, ...] = ("boundary", "network")) -> dict:
        """``n`` updates; returns the frame the page draws (new costs, epochs and views)."""
        n = int(_number(n, "n", 1, MAX_UPDATES_PER_REQUEST))
        marks = self._marks()
        for _ in range(n):
            if not self._one_update():
                break
        return self.frame(*marks, views)

    def epoch(self, views: tuple[str, ...] = ("boundary", "network")) -> dict:
        """The updates left in the current epoch (all of one epoch from its start)."""
        marks = self._marks()
        done = self.epochs_done
        while self.epochs_done == done and self._one_update():
            pass
        return self.frame(*marks, views)

    def _marks(self) -> tuple[int, int, int]:
        # How much the page has seen: a frame sends what came after.
        return len(self.step_costs), len(self.epoch_logs), len(self.path)

    def _one_update(self) -> bool:
        import descend as ds

        if self.diverged:
            return False
        start = time.perf_counter()
        try:
            value, n = self.steps.step()
        except ds.DivergenceError as exc:
            self.diverged = f"{exc} and reset"
            return False
        self.wall_time += time.perf_counter() - start
        self.updates += 1
        self.step_costs.append(value)
        self._epoch_total += value * n
        self._epoch_seen += n
        self.batch_in_epoch += 1
        if self.surface:
            self.path.append(self._two_params())
        if self.batch_in_epoch == len(self.batches):
            self._end_epoch()
        return True

    def _end_epoch(self) -> None:
        import descend as ds

        logs = {"epoch": self.epochs_done + 1, "updates": self.updates,
                "loss": self._epoch_total / self._epoch_seen}  # fmt: skip
        if self.prep.X_val is not None:
            try:  # as fit validates: under its thread choice, so the same numbers
                with self.steps.threads(), np.errstate(over="ignore", invalid="ignore"):
                    scores = ds.evaluate(self.model, self.prep.X_val, self.y_val, loss=self.loss)
            except (ValueError, FloatingPointError) as exc:  # an overflowing cost: diverging
                scores = {}
                self.diverged = (
                    f"after update {self.updates} the validation cost cannot be computed ({exc}); "
                    f"gradient descent is diverging: lower the learning rate (now "
                    f"{self.settings['lr']:g}) and reset"
                )
            logs.update({f"val_{k}": float(v) for k, v in scores.items()})
        self.epoch_logs.append(logs)
        self.epochs_done += 1
        self.batch_in_epoch = 0
        self._epoch_total, self._epoch_seen = 0.0, 0

    # --- what the page draws ---------------------------------------------------------------

    def setup(self) -> dict:
        """Everything the page needs after (re)building: settings, data points, network shape."""
        prep = self.prep
        two_d = self.data.n_features == 2
        message = {
            "type": "setup", "settings": self.settings, "choices": list(self.choices()),
            "datasets": {**DATASETS, **self._extra_names()}, "presets": PRESETS,
            "task": self.data.task, "classes": [str(c) for c in self.data.classes or []],
            "sizes": self.sizes, "loss": self.loss, "output_activation": self.output_activation,
            "n_train": len(prep.X_train), "n_val": 0 if prep.X_val is None else len(prep.X_val),
            "updates_per_epoch": len(self.batches), "features": self.data.features,
            "image_shape": [8, 8] if self.data.n_features == 64 else None,
            "standardize": bool(self.standardize),
        }  # fmt: skip
        if two_d:
            message["points"] = self._points()
        if self.surface:
            message["surface"] = self.surface
        message.update(self.frame(0, 0, 0, ("boundary", "network")))  # the starting point
        message["type"] = "setup"
        return message

    def _extra_names(self) -> dict:
        names = {}
        if self.given is not None:
            names["given"] = f"your data ({self.given.source or self.given.name})"
        if self.uploaded is not None:
            names["upload"] = f"uploaded: {self.upload_name}"
        return names

    def _points(self) -> dict:
        prep = self.prep
        y_val = [] if prep.y_val is None else _values(prep.y_val)
        X_val = [] if prep.X_val is None else _values(prep.X_val)
        X_all = prep.X_train if prep.X_val is None else np.vstack([prep.X_train, prep.X_val])
        low, high = X_all.min(axis=0), X_all.max(axis=0)
        pad = 0.1 * (high - low) + 1e-6
        return {
            "train": _values(prep.X_train), "train_y": _values(prep.y_train),
            "val": X_val, "val_y": y_val,
            "bounds": [[float(low[0] - pad[0]), float(high[0] + pad[0])],
                       [float(low[1] - pad[1]), float(high[1] + pad[1])]],
        }  # fmt: skip

    def frame(self, first_cost: int, first_epoch: int, first_path: int, views=()) -> dict:
        """What changed since the given counts, and the requested views of the model now."""
        out: dict[str, Any] = {
            "type": "frame", "updates": self.updates, "epoch": self.epochs_done,
            "batch_in_epoch": self.batch_in_epoch, "wall_time": self.wall_time,
            "costs": self.step_costs[first_cost:], "cost_offset": first_cost,
            "epochs": self.epoch_logs[first_epoch:], "path": self.path[first_path:],
            "diverged": self.diverged,
        }  # fmt: skip
        # The views are small products: one BLAS thread. Several would spin on the other core
        # after each product, waiting for the next, and take it from the browser (measured on
        # 2 shared cores: 22 updates of 2-16-16-1 drawn per second before, 40 after).
        with backend.blas_threads(1):
            if "boundary" in views and self.data.n_features == 2:
                out["boundary"] = self.boundary()
            network = self.network() if "network" in views else None
        if network is not None:
            out["network"] = network
        return out

    def boundary(self) -> dict:
        """The model's output on a grid over the two features: class, confidence, or value."""
        import descend as ds

        (x0, x1), (y0, y1) = self._points()["bounds"]
        gx, gy = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(y0, y1, GRID))
        grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(ds.predict(self.model, grid), dtype=np.float64)
        out = np.nan_to_num(out.reshape(len(grid), -1))
        if self.data.task == "regression":
            return {"kind": "value", "z": _rounded(out[:, 0], 4), "n": GRID}
        # Probabilities as 0..255: what a colour can show, and a quarter of the JSON.
        if out.shape[1] == 1:
            return {"kind": "binary", "z": _bytes(out[:, 0]), "n": GRID}
        return {"kind": "classes", "cls": out.argmax(axis=1).tolist(),
                "z": _bytes(out.max(axis=1)), "n": GRID}  # fmt: skip

    def network(self) -> dict | None:
        """The network for one training sample: activations forward, derivatives backward
        (None when its cost overflows, as it does while training diverges)."""
        import descend as ds

        view_model = self._copy_of_model()
        i = min(self.settings["sample"], len(self.prep.X_train) - 1)
        xb = self.prep.X_train[i : i + 1]
        yb = self.y_train[i : i + 1]
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                result = ds.backprop(view_model, xb, yb, self.loss)
        except (ValueError, FloatingPointError):  # the cost overflows: nothing sensible to draw
            return None
        keys = ("W", "b", "dW", "db", "a", "z", "dz", "da_in")
        arrays = [xb[0]]
        for record in result:
            arrays += [record.layer.weight.data, record.layer.bias.data, record.dC_dW,
                       record.dC_db, record.a_out[0], record.z[0], record.dC_dz[0],
                       record.dC_da_in[0]]  # fmt: skip
        values = _rounded_all(arrays, 5)  # one rounding for all: a few calls, not dozens
        layers = [dict(zip(keys, values[1 + 8 * k : 9 + 8 * k], strict=True))
                  for k in range(len(result))]  # fmt: skip
        target = self.prep.y_train[i]
        return {
            "sample": i, "input": values[0], "layers": layers,
            "cost": _finite(result.cost), "target": _values(target),
            "prediction": layers[-1]["a"] if layers else [],
        }  # fmt: skip

    def _copy_of_model(self):
        """A model with the current weights: backprop writes .grad, the trained model's stay."""
        import descend as ds

        if self._view_model is None:
            self._view_model = ds.nn.from_config(self.model.get_config())
        self._view_model.load_state_dict(self.model.state_dict())
        return self._view_model

    # --- the two-parameter cost surface -----------------------------------------------------

    def _is_two_parameter(self) -> bool:
        return self.sizes == [1, 1] and self.loss == "mse" and self.output_activation is None

    def _two_params(self) -> list[float]:
        layer = self.model.layers[0]
        return [float(layer.weight.data[0, 0]), float(layer.bias.data[0])]

    def _surface_setup(self) -> dict | None:
        """For ``y = w x + b`` by MSE: the full training cost over (w, b), exact, on a grid."""
        if not self._is_two_parameter():
            return None
        x = np.asarray(self.prep.X_train, np.float64)[:, 0]
        y = np.asarray(self.y_train, np.float64).reshape(-1)
        sx, sy, sxx, sxy, syy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()
        try:
            w_opt, b_opt = np.linalg.solve(np.array([[sxx, sx], [sx, 1.0]]), np.array([sxy, sy]))
        except np.linalg.LinAlgError:  # one distinct x: no single best line
            return None
        w0, b0 = self._two_params()
        half = max(abs(w0 - w_opt), abs(b0 - b_opt), 1.0) * 1.5
        ws = np.linspace(w_opt - half, w_opt + half, SURFACE_GRID)
        bs = np.linspace(b_opt - half, b_opt + half, SURFACE_GRID)
        W, B = np.meshgrid(ws, bs)
        cost = W * W * sxx + 2 * W * B * sx + B * B - 2 * W * sxy - 2 * B * sy + syy
        return {
            "w": [float(ws[0]), float(ws[-1])], "b": [float(bs[0]), float(bs[-1])],
            "n": SURFACE_GRID, "cost": _rounded(cost.ravel(), 5),
            "minimum": [float(w_opt), float(b_opt)], "names": ["w", "b"],
        }  # fmt: skip


def _dense_sizes(model) -> list[int] | None:
    """``[in, out of each layer]`` of a Sequential of Dense layers (what the page draws)."""
    from descend.nn import Dense, Sequential

    if not isinstance(model, Sequential) or not all(isinstance(m, Dense) for m in model.layers):
        return None
    return [model.layers[0].in_features] + [m.out_features for m in model.layers]


def _rounded_all(arrays: list, digits: int) -> list[list]:
    """:func:`_rounded` of each array (nested lists keep their shape), computed at once."""
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    rounded = _rounded(flat, digits)
    out, start = [], 0
    for a in arrays:
        shape = np.shape(a)
        size = int(np.prod(shape))
        out.append(np.asarray(rounded[start : start + size]).reshape(shape).tolist())
        start += size
    return out


def _rounded(a, digits: int, nested: bool = False) -> list:
    """Numbers for drawing (the exact ones go out as costs and in the model file)."""
    arr = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
    # Relative rounding (small gradients keep their first digits), one decimal count per
    # power of ten present: np.round(x, d) divides by 10**d last, so each number is the double
    # nearest its short decimal and JSON writes it short (0.21152, not 0.21152000000000004).
    with np.errstate(divide="ignore"):
        power = np.floor(np.log10(np.abs(arr)))
    power[~np.isfinite(power)] = 0
    out = np.empty_like(arr)
    for p in np.unique(power):
        where = power == p
        out[where] = np.round(arr[where], int(digits - 1 - p))
    return out.tolist() if nested or out.ndim <= 1 else out.ravel().tolist()


def _bytes(p: np.ndarray) -> list[int]:
    return np.clip(np.rint(p * 255.0), 0, 255).astype(np.int64).tolist()


def _values(a) -> Any:
    return np.asarray(a).tolist()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
