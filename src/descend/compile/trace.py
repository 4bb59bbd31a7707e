"""Tracing: run one eager step (forward, cost, backward) and write down every primitive call.

While :func:`trace_step` runs the step, the autodiff engine reports to a :class:`Recorder`
every row of the table it applies (``apply``: the forward of a row) and every step of its
backward pass (the seed ``dC/dC = 1``, each node's vjp, each sum of two contributions, each
leaf's gradient). The recorder names every array it sees by the role it plays:

* ``x``: the batch's inputs, and ``y``: its targets (or a reshaped/cast copy of them, as a cost
  prepares them: ``target = y.reshape(shape).astype(dtype)``, a data move, not math);
* a parameter of the model (read from ``p.data`` at every replay, so replaced arrays are seen);
* a constant (a number, or an array that does not depend on the batch);
* the result of an earlier call.

The result is a :class:`~descend.compile.plan.Plan`: the same calls, in the same order, on
numbered slots, which :mod:`descend.compile.replay` runs for every batch of the same shape and
dtype, without tensors. Something the plan could not reproduce raises
:class:`NotCompilable` with the reason: an array with the batch's number of rows that is neither
the inputs, the targets nor a result of a recorded call (the model computed it outside the
table, e.g. with NumPy on ``.data``), a primitive that is not a row of the table, a tensor that
is not a parameter of the model but wants a gradient, ``retain_grad``.

What a trace cannot see: Python control flow that depends on the values (an ``if`` on the data
takes the branch of the traced batch every time), as with any tracing compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from descend.autodiff import tensor as tensor_module
from descend.autodiff.primitives import PRIMITIVES, Primitive
from descend.autodiff.tensor import Tensor, no_grad
from descend.compile.plan import Op, Plan, Slot

__all__ = ["NotCompilable", "NotFinite", "Recorder", "trace_forward", "trace_step"]


class NotCompilable(Exception):
    """This model and cost cannot be compiled; ``reason`` says why (``fit`` then runs eager).

    Examples
    --------
    >>> err = NotCompilable("the cost is not a Tensor")
    >>> err.reason
    'the cost is not a Tensor'
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Recorder:
    """What the engine reports during one traced step, as slots and ops (see module doc)."""

    x: np.ndarray
    y: np.ndarray | None
    params: dict[str, Tensor]
    slots: list[Slot] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _ids: dict[int, int] = field(default_factory=dict)  # id(array) -> slot
    _tensors: dict[int, int] = field(default_factory=dict)  # id(parameter Tensor) -> slot
    _made_by: dict[int, Op] = field(default_factory=dict)  # slot -> the forward op writing it
    _keep: list = field(default_factory=list)  # every array seen: ids stay unique meanwhile
    grads: dict[str, int] = field(default_factory=dict)  # parameter name -> gradient slot
    seed_slot: int | None = None
    cost_slot: int | None = None

    def __post_init__(self) -> None:
        self._new_slot("x", "x", self.x)
        if self.y is not None:
            self._new_slot("y", "y", self.y)
        for name, p in self.params.items():
            s = self._new_slot("param", name, p.data)
            self._tensors[id(p)] = s

    # --- slots -----------------------------------------------------------------------------------
    def _new_slot(self, kind: str, name: str | None, value, source=None) -> int:
        shape = np.shape(value)
        dtype = getattr(value, "dtype", None)
        self.slots.append(Slot(kind, name, shape, dtype, value if kind == "const" else None))
        s = len(self.slots) - 1
        if isinstance(value, np.ndarray | np.generic):  # NumPy gives scalars for 0-d results
            self._ids[id(value)] = s
            self._keep.append(value)
        if source is not None:
            self.slots[s].source = source
        return s

    def slot_of(self, arg, value) -> int:
        """The slot of an input (``arg`` as given to ``apply``, ``value`` its array)."""
        if isinstance(arg, Tensor) and id(arg) in self._tensors:
            return self._tensors[id(arg)]
        if isinstance(value, np.ndarray | np.generic):
            known = self._ids.get(id(value))
            if known is not None:
                return known
            if isinstance(value, np.ndarray):
                return self._unknown_array(value)
        return self._new_slot("const", None, value)

    def _unknown_array(self, value: np.ndarray) -> int:
        for kind, batch in (("y", self.y), ("x", self.x)):
            if _same_values(value, batch):
                return self._new_slot("view", None, value, source=kind)
        n = self.x.shape[0] if self.x.ndim else 0
        if n > 1 and value.ndim >= 1 and value.shape[0] == n:
            self.problems.append(
                f"an array of shape {value.shape} (the batch's {n} rows) enters the table "
                "but is neither the inputs, the targets nor the result of a primitive: the "
                "model or the cost computes it outside the table (e.g. with NumPy on .data)"
            )
        return self._new_slot("const", None, value)

    # --- what the engine reports ----------------------------------------------------------------
    def forward(self, prim: Primitive, args, inputs, params, out) -> None:
        if PRIMITIVES.get(prim.name) is not prim:
            self.problems.append(
                f"primitive {prim.name!r} is not a row of the table; add it with "
                "descend.autodiff.register_primitive(name, forward, vjp)"
            )
        ins = tuple(self.slot_of(a, v) for a, v in zip(args, inputs, strict=True))
        static, dynamic = {}, {}
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                dynamic[key] = self.slot_of(None, value)
            else:
                if _holds_batch_array(value, self.x.shape[0] if self.x.ndim else 0):
                    self.problems.append(
                        f"parameter {key!r} of {prim.name} holds arrays of the batch's size"
                    )
                static[key] = value
        op = Op("forward", prim, ins, static, dynamic)
        op.outs = (self._new_slot("value", None, out),)
        self._made_by[op.outs[0]] = op
        self.ops.append(op)

    def seed(self, root: Tensor, grad: np.ndarray) -> None:
        self.cost_slot = self._ids.get(id(root.data))
        self.seed_slot = self._new_slot("const", "dC/dC", grad)
        self.slots[self.seed_slot].grad_of = self.cost_slot

    def vjp(self, node: Tensor, g, needs, input_grads) -> None:
        made = self._made_by.get(self._ids.get(id(node.data), -1))
        g_slot = self._ids.get(id(g))
        if made is None or g_slot is None:
            self.problems.append(f"the backward pass of {node.op} could not be followed")
            return
        needs_slot = self._new_slot("const", None, needs)
        op = Op("vjp", made.prim, (g_slot, made.outs[0], needs_slot, *made.ins), made.params,
                made.dynamic)  # fmt: skip
        outs = []
        for i, dp in enumerate(input_grads):
            if dp is None or not needs[i]:
                outs.append(None)
                continue
            s = self._new_slot("value", None, dp)
            self.slots[s].grad_of = made.ins[i]
            outs.append(s)
        op.outs = tuple(outs)
        self.ops.append(op)

    def accumulate(self, previous, dp, total) -> None:
        a, b = self._ids.get(id(previous)), self._ids.get(id(dp))
        if a is None or b is None:
            self.problems.append("a sum of two gradient contributions could not be followed")
            return
        op = Op("accumulate", PRIMITIVES["add"], (a, b), {}, {})
        s = self._new_slot("value", None, total)
        self.slots[s].grad_of = self.slots[a].grad_of
        op.outs = (s,)
        self.ops.append(op)

    def leaf(self, node: Tensor, g) -> None:
        s = self._tensors.get(id(node))
        if s is None:
            self.problems.append(
                f"a tensor of shape {node.shape} that is not a parameter of the model wants a "
                "gradient (requires_grad=True); compiled steps update the model's parameters only"
            )
            return
        if node._prim is not None:
            self.problems.append("retain_grad() on an intermediate result")
            return
        g_slot = self._ids.get(id(g))
        if g_slot is None:
            self.problems.append(f"the gradient of parameter {self.slots[s].name} was not followed")
            return
        self.grads[self.slots[s].name] = g_slot


def _same_values(value: np.ndarray, batch: np.ndarray | None) -> bool:
    """Whether ``value`` is ``batch`` reshaped and/or cast (what a cost does to its targets)."""
    if batch is None or value.size != batch.size or value.size == 0:
        return False
    if value.ndim == 0 or batch.ndim == 0 or value.shape[0] != batch.shape[0]:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        cast = np.asarray(batch).reshape(-1).astype(value.dtype, copy=False)
        return bool(np.array_equal(value.reshape(-1), cast))


def _holds_batch_array(value, n: int) -> bool:
    if isinstance(value, tuple | list):
        return any(_holds_batch_array(v, n) for v in value)
    return isinstance(value, np.ndarray) and n > 1 and value.ndim >= 1 and value.shape[0] == n


class _Tracing:
    """Install a recorder as the engine's tracer for the duration of a block."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def __enter__(self) -> Recorder:
        state = tensor_module._state
        if state.tracer is not None:
            raise NotCompilable("a step is already being traced (tracing does not nest)")
        state.tracer = self.recorder
        return self.recorder

    def __exit__(self, *exc) -> None:
        tensor_module._state.tracer = None


def trace_step(model, loss_fn: Callable, xb: np.ndarray, yb: np.ndarray) -> Plan:
    """Trace one eager step of ``model`` and ``loss_fn`` on a batch into a plan.

    The step is the textbook one (forward, cost, backward), run once on ``(xb, yb)``; the model's
    parameters and their ``.grad`` are left as they were.

    Parameters
    ----------
    model : Module
    loss_fn : callable ``(pred, target) -> one-element Tensor``
    xb : ndarray of shape (n, ...)
    yb : ndarray of shape (n, ...)

    Returns
    -------
    Plan

    Raises
    ------
    NotCompilable

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([3, 4, 2], output_activation="softmax", seed=0)
    >>> plan = trace_step(model, ds.losses.categorical_cross_entropy,
    ...                   np.ones((5, 3), np.float32), np.array([0, 1, 0, 1, 1]))
    >>> [op.prim.name for op in plan.forward_ops]  # the softmax output only when asked for
    ['linear', 'relu', 'linear', 'softmax_cross_entropy']
    """
    params = model.named_parameters()
    saved = [(p, p.grad) for p in params.values()]
    recorder = Recorder(xb, yb, params)
    try:
        for p in params.values():
            p.grad = None
        with _Tracing(recorder), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred = model(xb)
            cost = _traced_cost(loss_fn, pred, yb)
            _check_cost(cost)
            cost.backward()
    finally:
        for p, g in saved:
            p.grad = g
    output = getattr(pred, "data", None)
    return _plan_of(recorder, output, cost)


class NotFinite(NotCompilable):
    """The traced batch's values are not finite (the cost refused them): nothing to trace; the
    step has diverged."""


def _traced_cost(loss_fn, pred, yb):
    try:
        return loss_fn(pred, yb)
    except ValueError:
        data = getattr(pred, "data", None)
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and not np.isfinite(data).all():
            raise NotFinite("the model's output for the traced batch is not finite") from None
        raise


def _check_cost(cost) -> None:
    if not isinstance(cost, Tensor) or cost.data.size != 1:
        raise NotCompilable(
            f"the cost is {type(cost).__name__}, not a one-element Tensor: nothing to compile"
        )
    if not cost.requires_grad:
        raise NotCompilable("the cost does not depend on any parameter (no graph to replay)")


def _plan_of(recorder: Recorder, output, cost: Tensor) -> Plan:
    if recorder.problems:
        raise NotCompilable(recorder.problems[0])
    if recorder.cost_slot is None or recorder._ids.get(id(cost.data)) != recorder.cost_slot:
        raise NotCompilable("the cost was not computed by a primitive of the table")
    out_slot = recorder._ids.get(id(output)) if isinstance(output, np.ndarray) else None
    plan = Plan(
        slots=recorder.slots,
        ops=recorder.ops,
        cost=recorder.cost_slot,
        output=out_slot,
        grads=recorder.grads,
        params=list(recorder.params),
    )
    plan.prune()
    return plan


def trace_forward(model, X: np.ndarray) -> Plan:
    """Trace the model's forward pass on ``X`` (no graph) into a plan that predicts.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([3, 2], output_activation="sigmoid", seed=0)
    >>> [op.prim.name for op in trace_forward(model, np.ones((4, 3), np.float32)).ops]
    ['linear', 'sigmoid']
    """
    params = model.named_parameters()
    recorder = Recorder(X, None, params)
    with _Tracing(recorder), no_grad(), np.errstate(over="ignore", invalid="ignore"):
        out = model(X)
    if recorder.problems:
        raise NotCompilable(recorder.problems[0])
    data = getattr(out, "data", None)
    slot = recorder._ids.get(id(data)) if isinstance(data, np.ndarray) else None
    if slot is None or recorder.slots[slot].kind != "value":
        raise NotCompilable("the model's output is not the result of a primitive of the table")
    plan = Plan(slots=recorder.slots, ops=recorder.ops, cost=None, output=slot, grads={},
                params=list(params))  # fmt: skip
    plan.prune()
    return plan
