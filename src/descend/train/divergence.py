"""Divergence: a cost that becomes NaN or infinite, or that explodes while it stays finite.

A learning rate far too large does not always end in NaN. The cost can climb to 1e26 and only
then overflow, or shoot up and come back down to a level that looks like a result (a softmax's
cost grows only like its logits), or grow for hundreds of epochs to 1e196 in float64. ``fit``
therefore also stops when the cost of an update is more than ``EXPLOSION`` times its value at the
start of the run, and goes back to the parameters from before the explosion.

*The start* is the largest cost of the first updates that together saw ``START_SAMPLES`` samples
(all of them when there are fewer): the largest, so that one easy sample at batch size 1 does not
make a small start. *Before the explosion* is the start of the latest epoch that followed only
calm epochs, those whose costs all stayed below ``CALM`` times the start: a copy of the
parameters is taken there (one copy per epoch, into the same buffers). A call of ``fit`` that
resumes a checkpoint finds the same start in the history it restores, but goes back no further
than the epoch it resumed at.

The factor is far above what training that converges shows: across the examples, the guide and
the tests, no update's cost goes above a few times the start (the largest ratio seen was below
50), while the runs that diverge pass it within a few updates or epochs of taking off.
"""

from __future__ import annotations

import numpy as np

from descend.train.history import History
from descend.train.trainer import DivergenceError

EXPLOSION = 1e4
CALM = 1e2
START_SAMPLES = 32


class DivergenceWatch:
    """Watches the costs of one ``fit`` run for an explosion; see the module documentation.

    The loop compares each cost with ``limit`` (one comparison per update) and calls
    :meth:`check` when it is above: ``limit`` is -inf until the start is known, then
    ``EXPLOSION`` times the start.
    """

    def __init__(self, params: list, history: History) -> None:
        self.params, self.history = params, history
        self.limit = -np.inf
        self.start: float | None = None
        self._seen, self._largest = 0, -np.inf
        self._snapshot: list[np.ndarray] | None = None
        self._snapshot_epoch = 0
        self._mark = 0  # the first update of the current epoch, in history.step
        self._snapshot_mark = 0  # the first update after the copy was taken
        # A resumed run: its start is found again from the history, as the first call found it.
        for value, n in zip(history.step["loss"], history.step["batch_size"], strict=False):
            if self.start is not None:
                break
            self._collect(value, int(n))

    def _collect(self, value: float, n: int) -> None:
        self._largest = max(self._largest, value)
        self._seen += n
        n_samples = self.history.params.get("n_samples", START_SAMPLES)
        if self._seen >= min(START_SAMPLES, n_samples):
            if self._largest > 0:
                self.start = self._largest
                self.limit = EXPLOSION * self.start
            else:  # a cost of the user's own that is not positive: no scale to compare with
                self.limit = np.inf

    def start_epoch(self, epoch: int) -> None:
        """Take the copy to go back to, when the epoch before was calm (or this is the first)."""
        costs = self.history.step["loss"][self._mark :]
        calm = self.start is not None and (not costs or max(costs) < CALM * self.start)
        self._mark = len(self.history.step["loss"])
        if self._snapshot is None:
            self._snapshot = [p.data.copy() for p in self.params]
        elif calm:
            for kept, p in zip(self._snapshot, self.params, strict=True):
                np.copyto(kept, p.data)
        else:
            return
        self._snapshot_epoch, self._snapshot_mark = epoch, self._mark

    def check(self, value: float, n: int, step: int, epoch: int, lr: float) -> None:
        """Called with a cost of ``n`` samples above ``limit``: learn the start from it, or stop
        the run."""
        if self.start is None:
            self._collect(value, n)
            return
        self._restore()
        raise DivergenceError(
            f"training diverged at update {step} (epoch {epoch}): the cost became {value:.4g}, "
            f"more than {EXPLOSION:,.0f} times its value at the start ({self.start:.4g}). The "
            f"model is back to its parameters at the start of epoch {self._snapshot_epoch}, "
            f"before the cost rose. {_advice(lr)}",
            step=step, epoch=epoch, lr=lr, history=self.history, what="the cost", value=value,
        )  # fmt: skip

    def diverged(self, what: str, value, step: int, epoch: int, lr: float) -> DivergenceError:
        """The error for a cost or gradient that is not finite. When the cost had already risen
        far (above ``CALM`` times the start) since the last calm epoch, the parameters go back
        to that epoch's; otherwise they stay the last finite ones."""
        costs = self.history.step["loss"][self._snapshot_mark :]
        risen = self.start is not None and bool(costs) and max(costs) >= CALM * self.start
        if risen:
            self._restore()
            kept = (
                f"The cost had risen to {max(costs):.4g} before (more than {CALM:.0f} times its "
                f"start, {self.start:.4g}): the model is back to its parameters at the start of "
                f"epoch {self._snapshot_epoch}, before the cost rose"
            )
        else:
            kept = "The model keeps the parameters from before this update, the last finite ones"
        return DivergenceError(
            f"training diverged at update {step} (epoch {epoch}): {what} became {value}. "
            f"{kept}. {_advice(lr)}",
            step=step, epoch=epoch, lr=lr, history=self.history, what=what, value=value,
        )  # fmt: skip

    def _restore(self) -> None:
        for kept, p in zip(self._snapshot or (), self.params, strict=False):
            np.copyto(p.data, kept)


def _advice(lr: float) -> str:
    return (
        f"Try a smaller learning rate (lr={lr:g} now; e.g. lr={lr / 10:g}), standardise the "
        f"inputs X and, for a regression, the targets y (targets in the hundreds make the "
        f"squared error and its gradients far larger), or check the data for extreme values"
    )
