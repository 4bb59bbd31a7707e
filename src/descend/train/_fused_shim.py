"""TEMPORARY: the compiled-step door over today's :class:`~descend.train.fused.FusedStep`.

The Trainer asks for a compiled step through ``compile_step(model, loss_fn, optimizer, xb, yb)``
(the door of :mod:`descend.compile`, which replaces this module and ``train/fused.py``). Until
that lands, this adapter gives the same door over the hand-written fused step, so that ``fit``
keeps its speed. It is the only place in ``train/`` that still reaches into an optimizer's
internals (``_prepare``, ``_count_step``); both go with it.

What the Trainer reads from a compiled step (the door's contract):

* ``run(xb, yb) -> float``: one update through the optimizer; the cost of the batch before it.
  When the cost or a gradient is not finite, nothing is updated (``grads_finite`` says which).
* ``grads_finite``: whether the last ``run``'s gradients were all finite.
* ``output``: the network's output for the last batch (an array), for metrics.
* ``plan``: something printable (None here: the fused step has no plan to show).
* ``finish()``: write out whatever ``run`` deferred (the weights' ``.grad``).
* ``reads_grads`` (set by the Trainer): whether ``.grad`` must hold the gradients after every
  ``run``; when False a plain-GD update may be folded into the weight-gradient product.
* ``targets_checked`` (set by the Trainer): the targets were checked and converted already
  (:func:`descend.losses.check_target`), so each batch is only converted.
"""

from __future__ import annotations

from math import isfinite

import numpy as np

from descend import optim
from descend.train import fused


class NotCompilable(Exception):
    """The model and cost cannot be compiled; the message says why (``trainer.why_eager``)."""


def compile_step(model, loss_fn, optimizer, xb, yb) -> _FusedDoor:
    """The fused step for this model, cost and optimizer, or NotCompilable with the reason."""
    step = fused.compile_step(model, loss_fn)
    if step is None:
        raise NotCompilable(
            "only a Sequential of Dense layers with built-in activations and a matching built-in "
            "cost is compiled for now"
        )
    return _FusedDoor(step, model.parameters(), optimizer)


def _plain_gd(optimizer) -> bool:
    # theta <- theta - lr * g exactly: no clipping, no weight decay, not a subclass's rule
    return (
        type(optimizer) is optim.GD and optimizer.clip_norm is None and not optimizer.weight_decay
    )


class _FusedDoor:
    plan = None

    def __init__(self, step: fused.FusedStep, params: list, optimizer) -> None:
        self._step, self._params, self._optimizer = step, params, optimizer
        self.reads_grads = True
        self._fold: bool | None = None  # decided at the first run (reads_grads is set by then)

    @property
    def targets_checked(self) -> bool:
        return self._step._targets_checked

    @targets_checked.setter
    def targets_checked(self, value: bool) -> None:
        self._step._targets_checked = bool(value)

    @property
    def output(self) -> np.ndarray | None:
        return self._step.output

    @property
    def grads_finite(self) -> bool:
        return self._step.grads_finite

    def run(self, xb: np.ndarray, yb: np.ndarray) -> float:
        step, optimizer = self._step, self._optimizer
        if self._fold is None:
            self._fold = _plain_gd(optimizer) and not self.reads_grads
            if self._fold:
                optimizer._prepare(self._params)  # the state step() would make
        if self._fold:
            cost = step.descend(xb, yb, optimizer.lr)
            if isfinite(cost) and step.grads_finite:
                optimizer._count_step()  # the update was applied inside
            return cost
        cost = step(xb, yb)
        if isfinite(cost) and step.grads_finite:
            optimizer.step(self._params)
        return cost

    def finish(self) -> None:
        if self._fold:
            self._step.write_grads()
