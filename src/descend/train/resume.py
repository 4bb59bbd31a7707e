"""Resuming ``fit`` from a checkpoint: the same call, continued where it was saved.

Also what ``fit`` keeps so that it can be resumed: the arguments a resumed call must repeat
(:func:`fit_args`) and where the run is at the end of each epoch (:func:`epoch_done`).
"""

from __future__ import annotations

import numpy as np

from descend.io import ModelFileError
from descend.nn.module import Module
from descend.train.checkpoint import TrainingState, load_checkpoint, optimizer_config


def fit_args(loader, epochs: int, X, y, dtype, loss, metric_fns, validation) -> dict:
    """What a checkpoint records of this call of ``fit``, and a resumed call must repeat (JSON
    values): the batching, the shapes of a sample and of a target, the dtype, the cost, the
    metrics' names and the size of the validation set."""
    return {
        "epochs": epochs, "batch_size": int(loader.batch_size), "shuffle": bool(loader.shuffle),
        "steps_per_epoch": len(loader), "n_samples": int(loader.n_samples),
        "sample_shape": [int(s) for s in X.shape[1:]],
        "target_shape": [int(s) for s in y.shape[1:]],
        "dtype": str(np.dtype(dtype)), "loss": str(getattr(loss, "__name__", "loss")),
        "metrics": list(metric_fns),
        "validation_samples": None if validation is None else len(validation[0]),
    }  # fmt: skip


def epoch_done(state: TrainingState, epoch: int, rng) -> None:
    """Move ``state`` past epoch ``epoch``: to the start of the next one, no batch of it done,
    its running sums at zero and (when the state keeps it) the generator's state there, so that
    a checkpoint saved now resumes at that start."""
    state.epoch, state.batches_done, state.step = epoch + 1, 0, state.history.n_updates
    state.total, state.seen = 0.0, 0
    state.metric_sums = dict.fromkeys(state.metric_sums, 0.0)
    if state.rng_state is not None:
        state.rng_state = rng.bit_generator.state


def resume(path, state: TrainingState, rng, epochs: int, model: Module, optimizer):
    """Restore a checkpoint into this call's model, optimizer, history and state.

    Returns the generator to batch with (the saved state in it). Raises ValueError when the
    checkpoint was made by a different call (other than a larger ``epochs``)."""
    saved = load_checkpoint(path)
    where = f"resume_from={str(path)!r}"
    diffs = [
        f"{key}: {saved.fit.get(key)!r} in the checkpoint, {value!r} now"
        for key, value in state.fit.items()
        if key != "epochs" and saved.fit.get(key) != value
    ]
    if diffs:
        raise ValueError(
            f"{where} was saved by a different fit call ({'; '.join(diffs)}); resume with the "
            "same data and arguments (only epochs may grow)"
        )
    mine = {n: (p.shape, p.dtype) for n, p in model.named_parameters().items()}
    theirs = {n: (p.shape, p.dtype) for n, p in saved.model.named_parameters().items()}
    try:
        same_architecture = model.get_config() == saved.model.get_config()
    except (ValueError, TypeError, NotImplementedError):
        same_architecture = True  # a model that cannot describe itself: compare the weights
    if mine != theirs or not same_architecture:
        raise ValueError(
            f"{where} holds a different model ({saved.model!r} with parameters {theirs}); pass "
            "a model of the same architecture and dtype"
        )
    name = type(optimizer).__name__
    config = optimizer_config(optimizer)
    if name != saved.optimizer_class or (
        config is not None
        and saved.optimizer_config is not None
        and config != saved.optimizer_config
    ):
        raise ValueError(
            f"{where} was trained with {saved.optimizer_class} {saved.optimizer_config}, this "
            f"call gives {name} {config}; pass the same optimizer and hyperparameters (to change "
            "them, start a new fit from ds.load(path))"
        )
    if epochs < saved.epoch or (epochs == saved.epoch and saved.batches_done):
        raise ValueError(
            f"epochs={epochs}, but {where} has already done {saved.epoch} epochs"
            f"{f' and {saved.batches_done} updates of the next' if saved.batches_done else ''}; "
            f"pass epochs >= {saved.epoch + bool(saved.batches_done)}"
        )
    if set(saved.metric_sums) != set(state.metric_sums):
        raise ValueError(
            f"{where} was trained with metrics {sorted(saved.metric_sums)}, this call computes "
            f"{sorted(state.metric_sums)}; pass the same metrics"
        )
    try:
        optimizer.load_state_dict(saved.optimizer_state)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: the optimizer state cannot be restored ({exc})") from None
    model.load_state_dict(saved.model.state_dict())
    history = state.history
    history.epoch, history.step = saved.history.epoch, saved.history.step
    history.n_updates, history.n_epochs = saved.history.n_updates, saved.history.n_epochs
    history.wall_time = saved.history.wall_time
    state.epoch, state.batches_done, state.step = saved.epoch, saved.batches_done, saved.step
    state.total, state.seen = saved.total, saved.seen
    state.metric_sums = {k: saved.metric_sums[k] for k in state.metric_sums}
    if saved.rng_state is not None:
        if type(rng.bit_generator).__name__ != saved.rng_state["bit_generator"]:
            rng = np.random.Generator(getattr(np.random, saved.rng_state["bit_generator"])())
        rng.bit_generator.state = saved.rng_state
    state.rng_state = saved.rng_state
    return rng
