"""Replaying a plan: the recorded calls of the table, on plain arrays, batch after batch.

:class:`Executor` writes a :class:`~descend.compile.plan.Plan` out once as a straight-line
Python function (one line per call: function, input slots, keyword arguments, output slots;
``executor.source`` shows it) and runs it over one list of values (the *environment*),
refilled at each call with the batch, the targets (as the cost viewed them) and the
parameters' current arrays. No tensor, graph or Python object per value is
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

    The plan's calls are written out once, when the executor is made, as the straight-line
    Python function :attr:`source` shows (one line per call of a table row, its functions,
    parameters and buffers bound as names): a replay is then one function call with no loop,
    dict or tuple per call, which is what a small batch's update spends its time on.

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
        reads = []
        for i, slot in enumerate(plan.slots):
            if slot.kind == "const":
                self.env[i] = slot.value
            elif slot.kind == "param":
                reads.append((i, params[slot.name]))
        views = [
            (i, 0 if slot.source == "x" else 1, slot.shape, slot.dtype)
            for i, slot in enumerate(plan.slots)
            if slot.kind == "view"
        ]
        self.replay, self.source = _function(plan.ops, reads, views, batch=True)
        self._output, _ = _function(plan.output_ops, [], [], batch=False)

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> list:
        """Run every step on batch ``x`` (and targets ``y``); returns the environment."""
        self.replay(self.env, x, y)
        return self.env

    def output(self) -> np.ndarray:
        """The model's output for the last batch run (its own calls run now, when asked)."""
        self._output(self.env, None, None)
        return self.env[self.plan.output]


def _function(ops: list, reads: list, views: list, *, batch: bool) -> tuple:
    """The replay of ``ops`` as one Python function ``(env, x, y) -> None``, and its source.

    Each call reads its inputs from ``env`` and writes its results there, as the plan numbers
    them; the functions called are the table rows' own (``op.prim.forward`` or ``.vjp``), with
    the parameters the trace recorded: nothing is computed here but those calls.
    """
    names: dict = {"_asarray": np.asarray, "_ARRAY": _ARRAY}
    lines = ["def replay(env, x, y):"]
    if batch:  # the batch and its targets; the parameters' arrays as they are now
        lines += ["    env[0] = x", "    if y is not None:", "        env[1] = y"]
    for k, (s, p) in enumerate(reads):
        names[f"p{k}"] = p
        lines.append(f"    env[{s}] = p{k}.data")
    for k, (s, source, shape, dtype) in enumerate(views):
        names[f"shape{k}"], names[f"dtype{k}"] = shape, dtype
        lines.append(
            f"    env[{s}] = _asarray(env[{source}]).reshape(shape{k}).astype(dtype{k}, copy=False)"
        )
    for j, op in enumerate(ops):
        lines += _call_lines(j, op, names)
    if len(lines) == 1:
        lines.append("    return None")
    source = "\n".join(lines) + "\n"
    # the text is made above from the plan's structure alone (slot numbers, and names whose
    # objects are bound in `names`), so plans of the same structure share one compiled code
    exec(_compiled(source), names)
    return names["replay"], source


def _compiled(source: str):
    """The code object of ``source``, compiled once per text (Python's compiler takes about a
    millisecond for a small plan: more than a short epoch's updates)."""
    code = _CODE.get(source)
    if code is None:
        if len(_CODE) >= _MAX_CODE:
            _CODE.clear()
        code = _CODE[source] = compile(source, "<descend plan replay>", "exec")
    return code


# compiled replay functions' code by source text (every fit of the same model, cost and batch
# shapes writes the same text)
_CODE: dict[str, object] = {}
_MAX_CODE = 64


def _call_lines(j: int, op, names: dict) -> list[str]:
    """The lines of call ``j``: ``r = f{j}(env[..], ..., key=..)`` and its results stored."""
    fn = op.prim.vjp if op.kind == "vjp" else op.prim.forward
    names[f"f{j}"] = fn
    args = [f"env[{s}]" for s in op.ins]
    kw = dict(op.params)
    if op.out_buffers is not None:
        kw["out"] = op.out_buffers
    for key, value in kw.items():
        if key not in op.dynamic:
            names[f"k{j}_{key}"] = value
            args.append(f"{key}=k{j}_{key}")
    args += [f"{key}=env[{s}]" for key, s in op.dynamic.items()]
    lines = [f"    r = f{j}({', '.join(args)})"]
    if op.kind != "vjp":  # a forward call and the sum of two contributions: one result
        out = op.outs[0]
        return [*lines, f"    env[{out}] = r if r.__class__ is _ARRAY else _asarray(r)"]
    kept = [(i, s) for i, s in enumerate(op.outs) if s is not None]
    if kept:
        lines.append(f"    {', '.join(f'env[{s}]' for _, s in kept)} = "
                     f"{', '.join(f'r[{i}]' for i, _ in kept)}")  # fmt: skip
    return lines
