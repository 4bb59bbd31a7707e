"""The compiled step: one eager step traced into a plan of primitive calls, then replayed.

``fit`` trains with the eager graph (the definition: zero the gradients, forward, cost,
``backward``, ``optimizer.step``) or with a compiled step derived from it:

1. :func:`~descend.compile.trace.trace_step` runs one eager step and records every call of the
   primitives table the engine makes, forward and backward, as a
   :class:`~descend.compile.plan.Plan`;
2. :mod:`~descend.compile.rewrites` applies named rewrites (buffer reuse, plain gradient
   descent folded into the weight-gradient product, the sum of per-shard gradients);
3. :mod:`~descend.compile.replay` runs the plan for every batch of the same shape and dtype,
   on plain arrays, and the optimizer makes the update.

Everything specific to NumPy's BLAS and threads is behind :mod:`descend.compile.backend`.

Examples
--------
>>> import numpy as np, descend as ds
>>> model = ds.nn.mlp([2, 4, 1], seed=0)
>>> X, y = np.ones((8, 2), np.float32), np.zeros(8, np.float32)
>>> step = ds.compile.compile_step(model, ds.losses.mse, ds.optim.GD(0.1), X, y)
>>> cost = step.run(X, y)
>>> print(step.plan.forward_ops[0].prim.name)
linear
"""

from descend.compile.plan import Plan
from descend.compile.rewrites import ShardSums, combine, shard_sums
from descend.compile.step import CompiledForward, CompiledStep, compile_forward, compile_step
from descend.compile.trace import NotCompilable, trace_forward, trace_step

__all__ = [
    "CompiledForward", "CompiledStep", "NotCompilable", "Plan", "ShardSums", "compile_forward",
    "combine", "compile_step", "shard_sums", "trace_forward", "trace_step",
]  # fmt: skip
