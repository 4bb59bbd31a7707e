"""``History``: what happened during training, per epoch and per update."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """The record of one call to :func:`descend.fit`.

    Attributes
    ----------
    epoch : dict of str to list of float
        One entry per epoch: ``"loss"`` (the mean of the batch costs during the epoch, weighted by
        batch size), each metric, and with validation data ``"val_loss"`` and ``"val_<metric>"``;
        also ``"lr"`` (the learning rate at the end of the epoch) and ``"time"`` (seconds).
    step : dict of str to list of float
        One entry per update: ``"loss"`` (the batch cost the update descended) and
        ``"batch_size"``.
    n_updates : int
        Gradient-descent updates taken.
    n_epochs : int
        Epochs completed.
    wall_time : float
        Seconds spent in ``fit``.
    params : dict
        The settings of the run (batch size, epochs, optimizer, ...).
    stopped_early : bool
        Whether a callback stopped training before the last epoch.
    interrupted : bool
        Whether training was interrupted (Ctrl-C, ``KeyboardInterrupt``): ``fit`` then returns
        the history so far, and the model holds the parameters of the last completed update.

    Examples
    --------
    >>> h = History()
    >>> h.log_epoch({"loss": 0.5}); h.log_epoch({"loss": 0.25})
    >>> h.epoch["loss"], h.n_epochs
    ([0.5, 0.25], 2)
    """

    epoch: dict[str, list[float]] = field(default_factory=dict)
    step: dict[str, list[float]] = field(default_factory=lambda: {"loss": [], "batch_size": []})
    n_updates: int = 0
    n_epochs: int = 0
    wall_time: float = 0.0
    params: dict = field(default_factory=dict)
    stopped_early: bool = False
    interrupted: bool = False

    @property
    def history(self) -> dict[str, list[float]]:
        """The per-epoch record (Keras's name for it)."""
        return self.epoch

    def log_epoch(self, logs: dict) -> None:
        """Append one epoch's numbers."""
        for key, value in logs.items():
            self.epoch.setdefault(key, []).append(float(value))
        self.n_epochs += 1

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.epoch.items() if v and k != "time"}
        flag = ", interrupted=True" if self.interrupted else ""
        return (
            f"History(epochs={self.n_epochs}, updates={self.n_updates}, "
            f"wall_time={self.wall_time:.3f}s, last={last}{flag})"
        )


def fit_params(loader, optimizer, loss, trainer, epochs: int) -> dict:
    """``history.params``: what this call of ``fit`` was, and which executor ran it.

    Parameters
    ----------
    loader : Batches
        The call's batches.
    optimizer : Optimizer
    loss : callable
        The cost.
    trainer : Trainer or ClusterTrainer
        It says which executor runs the updates (and, on the eager one, why).
    epochs : int

    Returns
    -------
    dict
        ``"epochs"``, ``"batch_size"``, ``"variant"``, ``"steps_per_epoch"``, ``"n_samples"``,
        ``"shuffle"``, ``"optimizer"``, ``"loss"``, ``"executor"``, and ``"why_eager"`` when
        the trainer fell back to the eager step.
    """
    params = {
        "epochs": epochs, "batch_size": loader.batch_size, "variant": loader.variant,
        "steps_per_epoch": len(loader), "n_samples": loader.n_samples, "shuffle": loader.shuffle,
        "optimizer": type(optimizer).__name__, "loss": getattr(loss, "__name__", "loss"),
        "executor": trainer.executor,
    }  # fmt: skip
    if trainer.why_eager is not None:
        params["why_eager"] = trainer.why_eager
    return params
