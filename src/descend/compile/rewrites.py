"""Named rewrites of a plan: faster ways to run the same step, each tested against the eager one.

``buffers`` (:func:`reuse_buffers`)
    Each call of a row that can write into a given array (an optional ``out=`` of its forward
    or vjp, the formula unchanged) writes into a buffer made once per plan, so an update
    allocates (almost) nothing. The same numbers as the eager step, bit for bit. The
    parameters' ``.grad`` are then those buffers, overwritten by the next update.

``fold_gd`` (:func:`fold_updates`)
    When nothing reads ``.grad`` during training and the rule can take a gradient as the
    product of two factors (:meth:`descend.optim.GD.step_from_product`), a weight whose
    gradient is ``a.T @ g`` (one ``linear`` or ``matmul``) gets ``theta <- theta - lr a^T g``
    from the rule in one call, without the gradient written out. Equal up to rounding.

``shards`` (:func:`shard_sums`)
    A large batch is cut into row blocks (shards); each shard's summed cost and summed
    gradients are computed by the same plan (per worker, on the cores), then added in a fixed
    order and divided by the batch's size. For a cost that is a mean over the rows. Equal up to
    rounding (the sums are taken in another order); the blocks and their order depend only on
    the number of rows and workers, so the result is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from descend.compile.plan import Plan
from descend.compile.replay import Executor

__all__ = ["ALL", "Runner", "ShardSums", "apply", "fold_updates", "reuse_buffers", "shard_sums"]

ALL = ("buffers", "fold_gd", "shards")
"""Every rewrite, by name, in the order they are applied."""


class Runner:
    """Runs a (rewritten) plan for one batch shape: gradients, then the rule's update."""

    def __init__(self, plan: Plan, params: dict) -> None:
        self.plan = plan
        self.executor = Executor(plan, params)
        self._env: list | None = None

    def gradients(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        env = self._env = self.executor(xb, yb)
        grads = {name: env[s] for name, s in self.plan.grads.items()}
        return float(env[self.plan.cost]), grads

    def output(self) -> np.ndarray | None:
        if self._env is None or self.plan.output is None:
            return None
        return self._env[self.plan.output]

    def folded_finite(self) -> bool:
        return True

    def update(self, optimizer, params: list) -> None:
        optimizer.step(params)

    def write_folded_grads(self, params: dict) -> None:
        return None


def apply(plan: Plan, step, xb: np.ndarray, yb: np.ndarray) -> Runner:
    """Apply the step's rewrites (``step.rewrite``) to a freshly traced plan."""
    if "buffers" in step.rewrite:
        reuse_buffers(plan, keep=())
    return Runner(plan, step.params)


def reuse_buffers(plan: Plan, keep=()) -> None:
    """The ``buffers`` rewrite (see the module doc)."""
    return None


def fold_updates(plan: Plan, optimizer) -> None:
    """The ``fold_gd`` rewrite (see the module doc)."""
    return None


@dataclass
class ShardSums:
    """The summed cost and summed gradients of some rows of a batch."""

    cost: float
    grads: dict[str, np.ndarray]
    rows: int


def shard_sums(step, xb: np.ndarray, yb: np.ndarray, shards: int) -> list[ShardSums]:
    """The per-shard sums of a batch (see the module doc)."""
    raise NotImplementedError
