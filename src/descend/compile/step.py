"""The compiled step and the compiled forward pass: plans traced once, replayed per batch."""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite

import numpy as np

from descend.autodiff.backward import leaf_grad
from descend.compile import rewrites
from descend.compile.backend import finite
from descend.compile.plan import Plan
from descend.compile.replay import Executor
from descend.compile.trace import trace_forward, trace_step

__all__ = ["CompiledForward", "CompiledStep", "compile_forward", "compile_step"]

# Plans kept per step: an epoch has at most two batch shapes (k rows and the remainder).
_MAX_PLANS = 4


def compile_step(
    model,
    loss_fn: Callable,
    optimizer,
    xb: np.ndarray,
    yb: np.ndarray,
    *,
    grads_read: bool = True,
    rewrite: tuple[str, ...] | None = None,
) -> CompiledStep:
    """Compile one training step of ``model``, ``loss_fn`` and ``optimizer`` from a batch.

    Traces one eager step on ``(xb, yb)`` (forward, cost, backward; nothing is updated) into a
    plan of calls of the primitives table, applies the rewrites, and returns a step that
    replays it: ``step.run(xb, yb)`` does one update, as ``zero_grad``, forward, cost,
    ``backward`` and ``optimizer.step`` would, and returns the cost.

    Parameters
    ----------
    model : Module
    loss_fn : callable ``(pred, target) -> one-element Tensor``
        A built-in cost (``ds.losses.get(name)``) or the user's own.
    optimizer : Optimizer
        The rule that makes every update (:meth:`~descend.optim.Optimizer.step`).
    xb : ndarray of shape (n, ...)
        A batch (its shape and dtype; another shape is traced again when it comes).
    yb : ndarray of shape (n, ...)
    grads_read : bool, default True
        Whether anything reads the parameters' ``.grad`` during training. When False, the rule
        may fold its update into the weight-gradient product (see
        :func:`descend.compile.rewrites.fold_updates`).
    rewrite : tuple of str, optional
        The rewrites to apply, by name (default: all of :data:`~descend.compile.rewrites.ALL`).

    Returns
    -------
    CompiledStep

    Raises
    ------
    NotCompilable
        With the reason, when the step cannot be replayed (then train eagerly).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 3, 1], output_activation="sigmoid", seed=0)
    >>> X, y = np.ones((4, 2), np.float32), np.array([0, 1, 1, 0])
    >>> step = compile_step(model, ds.losses.binary_cross_entropy, ds.optim.GD(0.1), X, y)
    >>> round(step.run(X, y), 4)
    0.6966
    >>> print(step.plan)  # doctest: +ELLIPSIS
    forward:
      z1 = x @ W1 + b1...
    """
    return CompiledStep(model, loss_fn, optimizer, xb, yb, grads_read=grads_read, rewrite=rewrite)


class CompiledStep:
    """One training update by replaying a traced plan (see :func:`compile_step`).

    Attributes
    ----------
    plan : Plan
        The plan of the batch shape last run (printable).
    grads_finite : bool
        False when the last :meth:`run` found a gradient that is not finite (then nothing was
        updated).
    """

    def __init__(self, model, loss_fn, optimizer, xb, yb, *, grads_read=True, rewrite=None):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.params = model.named_parameters()
        self.param_list = list(self.params.values())
        self.grads_read = grads_read
        self.rewrite = rewrites.ALL if rewrite is None else tuple(rewrite)
        unknown = set(self.rewrite) - set(rewrites.ALL)
        if unknown:
            raise ValueError(
                f"rewrite names {sorted(unknown)} are not rewrites; choose from {rewrites.ALL}"
            )
        self._runners: dict[tuple, rewrites.Runner] = {}
        self._last = self._runner_for(xb, yb)
        self.grads_finite = True

    @property
    def plan(self) -> Plan:
        """The plan of the batch shape last run."""
        return self._last.plan

    @property
    def output(self) -> np.ndarray | None:
        """The model's output for the last batch run (metrics read it)."""
        return self._last.output()

    def _runner_for(self, xb: np.ndarray, yb: np.ndarray) -> rewrites.Runner:
        key = (xb.shape, xb.dtype.str, np.shape(yb), getattr(yb, "dtype", None))
        runner = self._runners.get(key)
        if runner is None:
            plan = trace_step(self.model, self.loss_fn, xb, yb)
            if len(self._runners) >= _MAX_PLANS:
                self._runners.clear()
            runner = rewrites.apply(plan, self, xb, yb)
            self._runners[key] = runner
        return runner

    def run(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """One update on the batch; returns its cost (before the update).

        When the cost or a gradient is not finite, nothing is updated (``grads_finite`` says
        which); the caller stops training.
        """
        runner = self._runner_for(xb, yb)
        self._last = runner
        cost, grads = runner.gradients(xb, yb)
        if not isfinite(cost):
            return cost
        handed_out: set[int] = set()
        for p in self.param_list:
            p.grad = None
        finite_all = True
        for name, g in grads.items():
            p = self.params[name]
            p.grad = g = leaf_grad(g, p.data, handed_out)
            finite_all = finite_all and finite(g)
        finite_all = finite_all and runner.folded_finite()
        self.grads_finite = finite_all
        if finite_all:
            runner.update(self.optimizer, self.param_list)
        return cost

    def write_grads(self) -> None:
        """Write the ``.grad`` of parameters whose update was folded into a product (their
        gradient of the last update, from the factors kept in the plan's buffers)."""
        self._last.write_folded_grads(self.params)

    def shard_sums(self, xb: np.ndarray, yb: np.ndarray, shards: int):
        """The summed cost and summed gradients of ``shards`` row blocks of the batch (the
        entry point of the per-shard sums: :func:`descend.compile.rewrites.shard_sums`)."""
        return rewrites.shard_sums(self, xb, yb, shards)


def compile_forward(model, X: np.ndarray) -> CompiledForward:
    """Compile the model's forward pass (prediction) from a batch of inputs.

    Parameters
    ----------
    model : Module
    X : ndarray of shape (n, ...)

    Returns
    -------
    CompiledForward
        ``forward(X_chunk, out=None)`` gives the output for any number of rows (a new shape is
        traced again).

    Raises
    ------
    NotCompilable

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([4, 8, 3], output_activation="softmax", seed=0)
    >>> X = np.ones((5, 4), np.float32)
    >>> forward = compile_forward(model, X)
    >>> bool(np.array_equal(forward(X), ds.predict(model, X)))
    True
    """
    return CompiledForward(model, X)


class CompiledForward:
    """The model's output by replaying a traced forward plan (see :func:`compile_forward`)."""

    def __init__(self, model, X: np.ndarray) -> None:
        self.model = model
        self.params = model.named_parameters()
        self._executors: dict[tuple, Executor] = {}
        self._executor_for(X)

    def _executor_for(self, X: np.ndarray) -> Executor:
        key = (X.shape, X.dtype.str)
        executor = self._executors.get(key)
        if executor is None:
            plan = trace_forward(self.model, X)
            if len(self._executors) >= _MAX_PLANS:
                self._executors.clear()
            rewrites.reuse_buffers(plan, keep=())
            executor = self._executors[key] = Executor(plan, self.params)
        return executor

    @property
    def plan(self) -> Plan:
        return next(reversed(self._executors.values())).plan

    def __call__(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        executor = self._executor_for(X)
        result = executor(X)[executor.plan.output]
        if out is None:
            return result.copy()
        np.copyto(out, result)
        return out
