"""Checkpoints: save a training run as it goes, and resume it exactly where it stopped.

A checkpoint is one file, written atomically (a temporary file, fsync, rename: a crash or a kill
while writing leaves the previous checkpoint as it was). It is a model file
(:func:`descend.save`'s format, so ``ds.load(checkpoint)`` gives the model) with more members,
never pickled:

=============================  ==================================================================
member                         content
=============================  ==================================================================
``model.json``, ``<p>.npy``    the architecture and the weights, as in a model file
``checkpoint.json``            where the run is: the epoch in progress, the batches done in it,
                               the update count; the random generator's state at the start of
                               the epoch (``bit_generator.state``); the running sums of the
                               epoch's loss and metrics; the optimizer's class, configuration and
                               counters; what the history holds; the arguments of ``fit`` that
                               must not change on resume
``optimizer.state.<i>.<b>``    the optimizer's buffers (momentum, Adam's moments, ...)
``history.epoch.<i>.npy``,     the history's lists (per epoch and per update) as float64 or int64
``history.step.<i>.npy``       arrays, so that long runs stay small and exact
=============================  ==================================================================

How resuming is exact
---------------------
``fit(..., resume_from=path)`` restores the weights, the optimizer state, the history and the
running sums, sets the batching generator to its state at the start of the interrupted epoch,
draws that epoch's permutation again (the same one) and skips the batches already done. Every
later number is then computed from the same values in the same order as in an uninterrupted run:
weights and history are equal bit for bit (all but the wall-clock times ``history.epoch["time"]``
and ``history.wall_time``).

What must match on resume: the data (same number of samples and shapes, and the same values:
they are not stored, so they are not checked), ``batch_size``, ``shuffle``, the cost, the
metrics, the validation set's size, the model (architecture, shapes, dtypes) and the optimizer
(class and hyperparameters). A mismatch raises a ValueError naming what differs. ``epochs`` may
be larger than in the first call (training continues to the new total, as an uninterrupted run
of that many epochs would), never smaller than the epochs already done. The ``seed`` is
ignored: the generator's saved state replaces it. The state of other callbacks (e.g.
:class:`~descend.train.EarlyStopping`'s patience) is not saved: they start afresh (a
``Recorder`` records the resumed part of the run).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from descend import optim
from descend.io import (
    CHECKPOINT_MEMBER,
    CONFIG_MEMBER,
    ArchiveReader,
    model_members,
    read_model,
    remove_stale_temporaries,
    write_archive,
)
from descend.nn.module import Module
from descend.train.callbacks import Callback
from descend.train.history import History

__all__ = ["Checkpoint", "TrainingState", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "descend-checkpoint"
CHECKPOINT_VERSION = 1
# The bit generators whose state a checkpoint may restore (no other name is ever looked up).
_BIT_GENERATORS = {
    name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
}
_UNITS = ("steps", "epochs")
# What fit was doing when it ended; Checkpoint saves at the end only after the first three.
_SAVE_AT_END = ("completed", "stopped", "interrupted")


class TrainingState:
    """Where a training run is: what a checkpoint stores and ``fit`` restores.

    ``fit`` keeps one up to date for its :class:`Checkpoint` callbacks;
    :func:`load_checkpoint` returns one read from a file.

    Attributes
    ----------
    model : Module
        The model (in a loaded state: built from the file, with its weights).
    optimizer : Optimizer or None
        The optimizer (in a loaded state: rebuilt from its configuration with its state loaded;
        None when the configuration could not be described, e.g. a plain-callable ``lr``).
    optimizer_class : str
    optimizer_config : dict or None
        ``optimizer.get_config()``.
    optimizer_state : dict
        ``optimizer.state_dict()``.
    history : History
        Everything recorded so far.
    epoch : int
        The epoch in progress, counted from 0: the number of epochs completed.
    batches_done : int
        Batches (updates) of that epoch already done.
    step : int
        Updates done in the whole run.
    rng_state : dict or None
        The batching generator's ``bit_generator.state`` at the start of epoch ``epoch`` (None
        when the batches are not shuffled).
    total, seen : float, int
        The running sums of the epoch's loss: sum of (batch cost x batch size), and samples.
    metric_sums : dict of str to float
        The running sums of the epoch's metrics (x batch size).
    fit : dict
        The arguments of ``fit`` that a resumed call must repeat (see the module documentation).
    status : str
        ``"running"``, then how ``fit`` ended: ``"completed"``, ``"stopped"`` (by a callback),
        ``"interrupted"`` (Ctrl-C), ``"diverged"`` or ``"failed"`` (another exception).

    Examples
    --------
    >>> import tempfile, numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(40, seed=0)
    >>> path = tempfile.mkdtemp() + "/run.ckpt"
    >>> _ = ds.fit(ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0), X, y,
    ...            loss="categorical_cross_entropy", optimizer="adam", batch_size=10, epochs=2,
    ...            seed=0, callbacks=[ds.Checkpoint(path)], progress=False)
    >>> state = ds.load_checkpoint(path)
    >>> state.epoch, state.step, state.history.n_updates, state.optimizer.iterations
    (2, 8, 8, 8)
    """

    def __init__(self, model, optimizer, history: History, fit: dict, metric_names=()) -> None:
        self.model = model
        self.optimizer = optimizer
        self.optimizer_class = type(optimizer).__name__ if optimizer is not None else ""
        self.optimizer_config: dict | None = None
        self.optimizer_state: dict = {}
        self.history = history
        self.fit = fit
        self.epoch = 0
        self.batches_done = 0
        self.step = 0
        self.rng_state: dict | None = None
        self.total = 0.0
        self.seen = 0
        self.metric_sums: dict[str, float] = dict.fromkeys(metric_names, 0.0)
        self.status = "running"

    @property
    def position(self) -> tuple[int, int, int]:
        """``(epoch, batches_done, step)``."""
        return self.epoch, self.batches_done, self.step

    def __repr__(self) -> str:
        return (
            f"TrainingState(epoch={self.epoch}, batches_done={self.batches_done}, "
            f"step={self.step}, optimizer={self.optimizer_class}, status={self.status!r})"
        )


def optimizer_config(optimizer) -> dict | None:
    """``optimizer.get_config()`` as plain JSON, or None when it cannot be described.

    Examples
    --------
    >>> import descend as ds
    >>> optimizer_config(ds.optim.GD(0.1))["config"]["lr"]
    0.1
    >>> optimizer_config(ds.optim.GD(lambda step: 0.1)) is None   # a plain-callable schedule
    True
    """
    try:
        return _json_roundtrip(optimizer.get_config())
    except (TypeError, ValueError, AttributeError):
        return None


def _json_roundtrip(value):
    return json.loads(json.dumps(value))


def _jsonable(value):
    """A bit generator's state as JSON: arrays become lists, NumPy ints Python ints."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _list_array(values: list, key: str) -> np.ndarray:
    if all(type(v) is int for v in values):
        return np.asarray(values, dtype=np.int64)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"the history list {key!r} holds values that are not numbers; a checkpoint stores "
            "numbers only"
        ) from None


def save_checkpoint(path: str | os.PathLike, state: TrainingState) -> Path:
    """Write ``state`` to one checkpoint file, atomically (see the module documentation).

    Parameters
    ----------
    path : str or PathLike
    state : TrainingState
        As kept by ``fit`` (a :class:`Checkpoint` callback calls this for you).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, descend as ds
    >>> from descend.train.checkpoint import TrainingState, save_checkpoint
    >>> state = TrainingState(ds.nn.mlp([2, 1], seed=0), ds.optim.Adam(), ds.History(), fit={})
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/c.ckpt", state)
    >>> ds.load_checkpoint(path).position
    (0, 0, 0)
    """
    config, arrays = model_members(state.model)
    optimizer = state.optimizer
    opt_state = optimizer.state_dict() if optimizer is not None else state.optimizer_state
    scalars, array_keys = {}, []
    for key, value in opt_state.items():
        if isinstance(value, np.ndarray):
            arrays[f"optimizer.{key}"] = value
            array_keys.append(key)
        else:
            scalars[key] = int(value)
    history = state.history
    epoch_keys, step_keys = list(history.epoch), list(history.step)
    for i, key in enumerate(epoch_keys):
        arrays[f"history.epoch.{i}"] = _list_array(history.epoch[key], key)
    for i, key in enumerate(step_keys):
        arrays[f"history.step.{i}"] = _list_array(history.step[key], key)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "position": {"epoch": state.epoch, "batches_done": state.batches_done, "step": state.step},
        "rng": None if state.rng_state is None else _jsonable(state.rng_state),
        "sums": {"total": state.total, "seen": state.seen, "metrics": dict(state.metric_sums)},
        "optimizer": {
            "class": type(optimizer).__name__ if optimizer is not None else state.optimizer_class,
            "config": optimizer_config(optimizer) if optimizer is not None else None,
            "scalars": scalars,
            "arrays": array_keys,
        },
        "history": {
            "epoch_keys": epoch_keys,
            "step_keys": step_keys,
            "n_updates": history.n_updates,
            "n_epochs": history.n_epochs,
            "wall_time": history.wall_time,
            "params": _jsonable(history.params),
        },
        "fit": state.fit,
    }
    return write_archive(path, {CONFIG_MEMBER: config, CHECKPOINT_MEMBER: checkpoint}, arrays)


# ------------------------------------------------------------------------------------ reading


def _integer(archive: ArchiveReader, table, key: str, where: str) -> int:
    value = table.get(key) if isinstance(table, dict) else None
    if type(value) is not int or value < 0:
        raise archive.error(
            f"{CHECKPOINT_MEMBER}: {where}{key} is {value!r}, expected an integer >= 0"
        )
    return value


def _real(archive: ArchiveReader, table, key: str, where: str) -> float:
    value = table.get(key) if isinstance(table, dict) else None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise archive.error(f"{CHECKPOINT_MEMBER}: {where}{key} is {value!r}, expected a number")
    return float(value)


def _str_list(archive: ArchiveReader, value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise archive.error(f"{CHECKPOINT_MEMBER}: {where} is not a list of names")
    if len(set(value)) != len(value):
        raise archive.error(f"{CHECKPOINT_MEMBER}: {where} repeats a name")
    return value


def _restore_generator(archive: ArchiveReader, state) -> dict | None:
    if state is None:
        return None
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise archive.error(
            f"{CHECKPOINT_MEMBER}: the random generator {name!r} is not one of "
            f"{sorted(_BIT_GENERATORS)}"
        )
    try:
        bit_generator = _BIT_GENERATORS[name]()
        bit_generator.state = state
        return bit_generator.state
    except (TypeError, ValueError, KeyError, OverflowError, IndexError) as exc:
        raise archive.error(
            f"{CHECKPOINT_MEMBER}: the random generator's state is invalid ({exc})"
        ) from None


def _read_history(archive: ArchiveReader, table, used: set[str]) -> History:
    if not isinstance(table, dict):
        raise archive.error(f"{CHECKPOINT_MEMBER} has no 'history' table")
    n_updates = _integer(archive, table, "n_updates", "history.")
    n_epochs = _integer(archive, table, "n_epochs", "history.")
    wall_time = _real(archive, table, "wall_time", "history.")
    params = table.get("params")
    if not isinstance(params, dict):
        raise archive.error(f"{CHECKPOINT_MEMBER}: history.params is not a table")
    history = History(n_updates=n_updates, n_epochs=n_epochs, wall_time=wall_time, params=params)
    history.step = {}
    for part, length, dtypes in (
        ("epoch", n_epochs, (np.float64,)),
        ("step", n_updates, (np.float64, np.int64)),
    ):
        keys = _str_list(archive, table.get(f"{part}_keys"), f"history.{part}_keys")
        lists = {}
        for i, key in enumerate(keys):
            name = f"history.{part}.{i}"
            array = archive.read_array(
                name, shape=(length,), dtypes=dtypes, what=f"the history's {part} list {key!r}"
            )
            lists[key] = array.tolist()
            used.add(f"{name}.npy")
        setattr(history, part, lists)
    if "loss" not in history.step or "batch_size" not in history.step:
        raise archive.error(f"{CHECKPOINT_MEMBER}: the history has no per-update loss")
    return history


def _read_optimizer(archive: ArchiveReader, table, model: Module, used: set[str]):
    if not isinstance(table, dict):
        raise archive.error(f"{CHECKPOINT_MEMBER} has no 'optimizer' table")
    cls = table.get("class")
    config = table.get("config")
    scalars = table.get("scalars")
    if not isinstance(cls, str) or not (config is None or isinstance(config, dict)):
        raise archive.error(f"{CHECKPOINT_MEMBER}: the optimizer's class or config is invalid")
    if not isinstance(scalars, dict) or not all(
        type(v) is int and v >= 0 for v in scalars.values()
    ):
        raise archive.error(f"{CHECKPOINT_MEMBER}: the optimizer's counters are invalid")
    state = dict(scalars)
    shapes = [p.shape for p in model.parameters()]
    for key in _str_list(archive, table.get("arrays"), "optimizer.arrays"):
        parts = key.split(".")
        index = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
        if parts[0] != "state" or not 0 <= index < len(shapes):
            raise archive.error(f"{CHECKPOINT_MEMBER}: optimizer array {key!r} is unexpected")
        name = f"optimizer.{key}"
        state[key] = archive.read_array(name, shape=shapes[index], what=f"the optimizer's {key!r}")
        used.add(f"{name}.npy")
    optimizer = None
    if config is not None:
        try:
            optimizer = optim.from_config(config)
            optimizer.load_state_dict(state)
        except Exception as exc:  # anything the file makes the optimizer raise
            raise archive.error(
                f"the optimizer cannot be restored ({type(exc).__name__}: {exc})"
            ) from None
        if type(optimizer).__name__ != cls:
            raise archive.error(f"{CHECKPOINT_MEMBER}: the optimizer's class and config differ")
    n_params = state.get("n_params")
    if n_params not in (0, len(shapes)):
        raise archive.error(
            f"{CHECKPOINT_MEMBER}: the optimizer's state is for {n_params} parameters, the model "
            f"has {len(shapes)}"
        )
    return optimizer, cls, config, state


def load_checkpoint(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by :class:`Checkpoint`, checking every part of it.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    TrainingState
        The model (with its weights), the optimizer (with its state), the history and the
        position of the run.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        When the file is not a valid checkpoint (truncated, altered, hostile, another format);
        the message names the problem.

    Examples
    --------
    >>> import tempfile, descend as ds
    >>> X, y = ds.datasets.moons(40, seed=0)
    >>> path = tempfile.mkdtemp() + "/run.ckpt"
    >>> _ = ds.fit(ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0), X, y,
    ...            loss="categorical_cross_entropy", batch_size=10, epochs=3, seed=0,
    ...            callbacks=[ds.Checkpoint(path, every=4, unit="steps")], progress=False)
    >>> state = ds.load_checkpoint(path)
    >>> state.epoch, state.batches_done, len(state.history.step["loss"])
    (3, 0, 12)
    """
    with ArchiveReader(path, what="checkpoint") as archive:
        info = archive.read_json(CHECKPOINT_MEMBER)
        if info.get("format") != CHECKPOINT_FORMAT:
            raise archive.error(f"{CHECKPOINT_MEMBER} does not describe a descend checkpoint")
        if info.get("version") != CHECKPOINT_VERSION:
            raise archive.error(
                f"checkpoint version {info.get('version')!r} is not supported (this descend "
                f"reads version {CHECKPOINT_VERSION})"
            )
        model, used = read_model(archive)
        used.add(CHECKPOINT_MEMBER)
        position = info.get("position")
        epoch = _integer(archive, position, "epoch", "position.")
        batches_done = _integer(archive, position, "batches_done", "position.")
        step = _integer(archive, position, "step", "position.")
        sums = info.get("sums")
        total = _real(archive, sums, "total", "sums.")
        seen = _integer(archive, sums, "seen", "sums.")
        metric_sums = sums.get("metrics")
        if not isinstance(metric_sums, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in metric_sums.values()
        ):
            raise archive.error(
                f"{CHECKPOINT_MEMBER}: sums.metrics is not a table of finite numbers"
            )
        fit = info.get("fit")
        if not isinstance(fit, dict):
            raise archive.error(f"{CHECKPOINT_MEMBER} has no 'fit' table")
        rng_state = _restore_generator(archive, info.get("rng"))
        optimizer, cls, config, opt_state = _read_optimizer(
            archive, info.get("optimizer"), model, used
        )
        history = _read_history(archive, info.get("history"), used)
        archive.check_members(used)
        if history.n_updates != step or history.n_epochs != epoch:
            raise archive.error(
                f"{CHECKPOINT_MEMBER}: the position (epoch {epoch}, update {step}) and the "
                f"history ({history.n_epochs} epochs, {history.n_updates} updates) disagree"
            )
        steps_per_epoch = fit.get("steps_per_epoch")
        if isinstance(steps_per_epoch, int) and batches_done > steps_per_epoch:
            raise archive.error(
                f"{CHECKPOINT_MEMBER}: {batches_done} batches done in an epoch of {steps_per_epoch}"
            )
    state = TrainingState(model, optimizer, history, fit)
    state.optimizer_class, state.optimizer_config, state.optimizer_state = cls, config, opt_state
    state.epoch, state.batches_done, state.step = epoch, batches_done, step
    state.rng_state = rng_state
    state.total, state.seen, state.metric_sums = float(total), seen, dict(metric_sums)
    state.status = "saved"
    return state


# ----------------------------------------------------------------------------------- callback


class Checkpoint(Callback):
    """Save the training run to one file as it goes; resume it with ``fit(resume_from=path)``.

    Each save writes the model, the optimizer's state, the random generator's state, the
    position (epoch, batch within the epoch, update) and the history, atomically: the file is
    replaced only once the new one is complete on disk, so a crash or a kill at any moment
    leaves the previous checkpoint readable. See :mod:`descend.train.checkpoint` for the format
    and for what a resumed call must repeat.

    Parameters
    ----------
    path : str or PathLike
        The file, rewritten at each save. ``{epoch}`` and ``{step}`` in it are replaced by the
        position (epochs completed, updates done), which keeps one file per save, e.g.
        ``"run-{step}.ckpt"``; any other character, braces and brackets included, is taken
        literally.
    every : int, default 1
        Save every ``every`` units.
    unit : {"epochs", "steps"}, default "epochs"
        ``"epochs"``: after every ``every``-th epoch; ``"steps"``: after every ``every``-th
        update (counted over the whole run).
    save_on_end : bool, default True
        Also save when training ends (completed, stopped by a callback, or interrupted with
        Ctrl-C), so that nothing since the last save is lost. Never after a divergence: the last
        checkpoint is then left as it was.

    Notes
    -----
    Each save first removes the temporary files that killed saves to the same file left behind
    (``.<name>.<8 characters>.tmp`` next to it, see :func:`descend.io.remove_stale_temporaries`):
    two runs must not share one checkpoint path.

    Attributes
    ----------
    last_path : Path or None
        The file of the last save.
    n_saved : int
        Saves during the last ``fit``.

    Examples
    --------
    >>> import tempfile, numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(100, seed=0)
    >>> path = tempfile.mkdtemp() + "/run.ckpt"
    >>> def train(epochs, **kw):
    ...     model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    ...     h = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer="adam",
    ...                batch_size=10, epochs=epochs, seed=0, progress=False, **kw)
    ...     return model, h
    >>> _ = train(2, callbacks=[ds.Checkpoint(path)])          # stops after 2 epochs
    >>> resumed, h = train(5, resume_from=path)                # goes on to 5
    >>> straight, h_straight = train(5)                        # 5 in one go
    >>> bool(np.array_equal(resumed[0].weight.data, straight[0].weight.data))
    True
    >>> h.step["loss"] == h_straight.step["loss"]
    True
    """

    reads_gradients = False  # fit may fold plain GD into the weight product

    def __init__(
        self,
        path: str | os.PathLike,
        every: int = 1,
        unit: str = "epochs",
        save_on_end: bool = True,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        if unit not in _UNITS:
            raise ValueError(f"unit must be 'epochs' or 'steps', got {unit!r}")
        self.path = Path(path)
        self.every = int(every)
        self.unit = unit
        self.save_on_end = bool(save_on_end)
        self.state: TrainingState | None = None
        self.last_path: Path | None = None
        self.n_saved = 0
        self._saved_at = None

    def set_training_state(self, state: TrainingState) -> None:
        """Called by ``fit``: the state this callback saves."""
        self.state = state

    def _target(self) -> Path:
        # Plain replacement, not str.format: a folder named "dir{x}" is a name, not a field.
        text = str(self.path)
        state = self.state
        text = text.replace("{epoch}", str(state.epoch)).replace("{step}", str(state.step))
        return Path(text)

    def on_train_begin(self, logs: dict) -> None:
        if self.state is None:
            raise RuntimeError("Checkpoint only works as a callback of descend.fit")
        self.n_saved = 0
        self._saved_at = None
        self.state.model.get_config()  # fail now, not at the first save, if it cannot be saved

    def save(self) -> Path:
        """Save now; returns the file written."""
        target = self._target()
        remove_stale_temporaries(target)  # left by a save that was killed
        self.last_path = save_checkpoint(target, self.state)
        self.n_saved += 1
        self._saved_at = self.state.position
        return self.last_path

    def on_step_end(self, step: int, logs: dict) -> None:
        if self.unit == "steps" and (step + 1) % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.unit == "epochs" and (epoch + 1) % self.every == 0:
            self.save()

    def on_train_end(self, logs: dict) -> None:
        state = self.state
        if (
            state is not None
            and self.save_on_end
            and state.status in _SAVE_AT_END
            and self._saved_at != state.position
        ):
            self.save()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, every={self.every}, unit={self.unit!r})"
