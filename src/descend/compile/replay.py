"""Replaying a plan: the recorded calls of the table, on plain arrays, batch after batch.

:class:`Executor` turns a :class:`~descend.compile.plan.Plan` into a flat list of steps
``(function, input slots, keyword arguments, output slots)`` and runs them over one list of
values (the *environment*), refilled at each call with the batch, the targets (as the cost
viewed them) and the parameters' current arrays. No tensor, graph or Python object per value is
made: each step is one call of a row's ``forward`` or ``vjp``, the same function the eager
graph calls, with the same arguments, so the numbers are the eager step's to the last bit
(until a rewrite changes the order of a sum: :mod:`descend.compile.rewrites`).
"""

from __future__ import annotations

import numpy as np

from descend.compile.plan import Plan

__all__ = ["Executor"]

_ARRAY = np.ndarray


class Executor:
    """Runs one plan; holds its environment (and buffers) between calls.

    Parameters
    ----------
    plan : Plan
    params : dict of str to Tensor
        The model's parameters by name (their ``.data`` is read at every call).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> from descend.compile.trace import trace_forward
    >>> model = ds.nn.mlp([3, 2], seed=0)
    >>> X = np.ones((4, 3), np.float32)
    >>> run = Executor(trace_forward(model, X), model.named_parameters())
    >>> env = run(X)
    >>> bool(np.array_equal(env[run.plan.output], ds.predict(model, X)))
    True
    """

    def __init__(self, plan: Plan, params: dict) -> None:
        self.plan = plan
        self.env: list = [None] * len(plan.slots)
        self._params = []
        self._views = []
        for i, slot in enumerate(plan.slots):
            if slot.kind == "const":
                self.env[i] = slot.value
            elif slot.kind == "param":
                self._params.append((i, params[slot.name]))
            elif slot.kind == "view":
                source = 0 if slot.source == "x" else 1
                self._views.append((i, source, slot.shape, slot.dtype))
        self.steps = [_step(op) for op in plan.ops]
        self.output_steps = [_step(op) for op in plan.output_ops]

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> list:
        """Run every step on batch ``x`` (and targets ``y``); returns the environment."""
        env = self.env
        env[0] = x
        if y is not None:
            env[1] = y
        for s, p in self._params:
            env[s] = p.data
        for s, source, shape, dtype in self._views:
            env[s] = np.asarray(env[source]).reshape(shape).astype(dtype, copy=False)
        _run(self.steps, env)
        return env

    def output(self) -> np.ndarray:
        """The model's output for the last batch run (its own calls run now, when asked)."""
        _run(self.output_steps, self.env)
        return self.env[self.plan.output]


def _run(steps: list, env: list) -> None:
    for fn, ins, kw, dynamic, outs in steps:
        if dynamic:
            kw = dict(kw)
            for key, s in dynamic:
                kw[key] = env[s]
        result = fn(*[env[s] for s in ins], **kw)
        if outs.__class__ is int:
            env[outs] = result if result.__class__ is _ARRAY else np.asarray(result)
        else:
            for s, value in zip(outs, result, strict=False):
                if s is not None:
                    env[s] = value


def _step(op) -> tuple:
    kw = dict(op.params)
    if op.out_buffers is not None:
        kw["out"] = op.out_buffers
    dynamic = tuple(op.dynamic.items())
    if op.kind == "vjp":
        return op.prim.vjp, op.ins, kw, dynamic, op.outs
    # a forward call and the sum of two contributions (the row add) have one result
    return op.prim.forward, op.ins, kw, dynamic, op.outs[0]
