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

from dataclasses import dataclass

import numpy as np

from descend.compile.plan import Plan, op_function

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
        layout = _layout(plan)
        self.env: list = [None] * len(plan.slots)
        for i in layout.consts:
            self.env[i] = plan.slots[i].value
        self._reads, self._consts = layout.reads, layout.consts
        # the parameters the replay reads, by position: a list it holds, refilled by rebind
        self._params = [params[name] for _, name in layout.reads]
        self.replay = _bind(layout.replay, plan.ops, self._params, layout.views)
        self._output = _bind(layout.output, plan.output_ops, [], [])
        self.source = layout.replay.source

    def rebind(self, params: dict) -> None:
        """Read these parameters (another model's of the same names and shapes) from now on;
        forget the values of the last batch (the buffers stay)."""
        self._params[:] = [params[name] for _, name in self._reads] if params else []
        env = self.env
        kept = [env[i] for i in self._consts]
        env[:] = [None] * len(env)
        for i, value in zip(self._consts, kept, strict=True):
            env[i] = value

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> list:
        """Run every step on batch ``x`` (and targets ``y``); returns the environment."""
        self.replay(self.env, x, y)
        return self.env

    def output(self) -> np.ndarray:
        """The model's output for the last batch run (its own calls run now, when asked)."""
        self._output(self.env, None, None)
        return self.env[self.plan.output]


@dataclass
class _Text:
    """A replay function's source, its compiled code, and the names it binds: ``(name, kind,
    index, key)``, read from the plan's calls (``fn``, ``kw``) or views (the parameters are
    read from the list ``_params``)."""

    source: str
    code: object
    names: list[tuple[str, str, int, str | None]]


@dataclass
class _Layout:
    """What an executor of a plan makes of its structure alone (shared by the copies of one
    traced plan with the same rewrites): the constant and parameter slots, the views, and
    the text of the replay and of the output's calls."""

    consts: list[int]
    reads: list[tuple[int, str]]
    views: list[tuple[int, int, tuple, object]]
    replay: _Text
    output: _Text


def _layout(plan: Plan) -> _Layout:
    """The layout of ``plan``: found again for a copy of the same traced plan with the same
    rewrites (the key below), else made."""
    key = None
    if plan.origin is not None:
        key = (plan.origin, tuple(plan.rewrites), len(plan.slots), len(plan.ops),
               len(plan.output_ops))  # fmt: skip
        layout = _LAYOUTS.get(key)
        if layout is not None:
            return layout
    consts, reads = [], []
    for i, slot in enumerate(plan.slots):
        if slot.kind == "const":
            consts.append(i)
        elif slot.kind == "param":
            reads.append((i, slot.name))
    views = [
        (i, 0 if slot.source == "x" else 1, slot.shape, slot.dtype)
        for i, slot in enumerate(plan.slots)
        if slot.kind == "view"
    ]
    layout = _Layout(
        consts, reads, views, _text(plan.ops, reads, views, batch=True),
        _text(plan.output_ops, [], [], batch=False),
    )  # fmt: skip
    if key is not None:
        if len(_LAYOUTS) >= _MAX_CODE:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


def _text(ops: list, reads: list, views: list, *, batch: bool) -> _Text:
    """The replay of ``ops`` as the source of one Python function ``(env, x, y) -> None``.

    Each call reads its inputs from ``env`` and writes its results there, as the plan numbers
    them; the functions called are the table rows' own (``op.prim.forward`` or ``.vjp``), with
    the parameters the trace recorded: nothing is computed here but those calls.
    """
    names: list = []
    lines = ["def replay(env, x, y):"]
    if batch:  # the batch and its targets; the parameters' arrays as they are now
        lines += ["    env[0] = x", "    if y is not None:", "        env[1] = y"]
    for k, (s, _) in enumerate(reads):
        lines.append(f"    env[{s}] = _params[{k}].data")
    for k, (s, source, _, _) in enumerate(views):
        names += [(f"shape{k}", "shape", k, None), (f"dtype{k}", "dtype", k, None)]
        lines.append(
            f"    env[{s}] = _asarray(env[{source}]).reshape(shape{k}).astype(dtype{k}, copy=False)"
        )
    for j, op in enumerate(ops):
        lines += _call_lines(j, op, names)
    if len(lines) == 1:
        lines.append("    return None")
    source = "\n".join(lines) + "\n"
    # the text is made above from the plan's structure alone (slot numbers, and names whose
    # objects are bound by _bind), so plans of the same structure share one compiled code
    return _Text(source, _compiled(source), names)


def _bind(text: _Text, ops: list, reads: list, views: list):
    """The function of ``text`` with its names bound to these calls, views and the list of
    parameters ``reads`` (read by position at each call: refilled to read others)."""
    names: dict = {"_asarray": np.asarray, "_ARRAY": _ARRAY, "_params": reads}
    for name, kind, k, key in text.names:
        if kind == "fn":
            names[name] = op_function(ops[k])
        elif kind == "kw":
            op = ops[k]
            names[name] = op.out_buffers if key == "out" else op.params[key]
        else:
            names[name] = views[k][2 if kind == "shape" else 3]
    exec(text.code, names)
    # taken out of its own globals: no reference cycle, so an executor (its buffers) is freed
    # when its step is, not at the next garbage collection
    return names.pop("replay")


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
# shapes writes the same text), and the layouts of plans by their traced plan and rewrites
_CODE: dict[str, object] = {}
_LAYOUTS: dict[tuple, _Layout] = {}
_MAX_CODE = 64


def _call_lines(j: int, op, names: list) -> list[str]:
    """The lines of call ``j``: ``r = f{j}(env[..], ..., key=..)`` and its results stored."""
    names.append((f"f{j}", "fn", j, None))
    args = [f"env[{s}]" for s in op.ins]
    keys = list(op.params)
    if op.out_buffers is not None:
        keys.append("out")
    for key in keys:
        if key not in op.dynamic:
            names.append((f"k{j}_{key}", "kw", j, key))
            args.append(f"{key}=k{j}_{key}")
    args += [f"{key}=env[{s}]" for key, s in op.dynamic.items()]
    lines = [f"    r = f{j}({', '.join(args)})"]
    if op.kind == "fused":  # the cost's value, then its gradients
        kept = [(i, s) for i, s in enumerate(op.outs[1:]) if s is not None]
        return [*lines, "    v = r[0]", f"    env[{op.outs[0]}] = v if v.__class__ is _ARRAY "
                "else _asarray(v)",
                f"    {', '.join(f'env[{s}]' for _, s in kept)} = "
                f"{', '.join(f'r[1][{i}]' for i, _ in kept)}"]  # fmt: skip
    if op.kind != "vjp":  # a forward call and the sum of two contributions: one result
        out = op.outs[0]
        return [*lines, f"    env[{out}] = r if r.__class__ is _ARRAY else _asarray(r)"]
    kept = [(i, s) for i, s in enumerate(op.outs) if s is not None]
    if kept:
        lines.append(f"    {', '.join(f'env[{s}]' for _, s in kept)} = "
                     f"{', '.join(f'r[{i}]' for i, _ in kept)}")  # fmt: skip
    return lines
