"""A plan: one training step (or one forward pass) as a list of calls of the primitives table.

Every value of the step lives in a numbered *slot*: the batch's inputs ``x`` and targets ``y``,
the parameters, constants, and the result of each call. Every call (:class:`Op`) is a row of
:data:`~descend.autodiff.primitives.PRIMITIVES`, run one of two ways:

* ``forward``: the row's forward, as the eager graph ran it (``z1 = x @ W1 + b1``);
* ``vjp``: the row's vector-Jacobian product, as the engine's backward pass ran it
  (``dC/dW1 = x.T @ dC/dz1``), and ``accumulate``: the row ``add``, summing two contributions
  to one gradient, as the engine does when a value is used twice.

The only other steps are data moves: a cost's view of the targets (``y`` reshaped and cast).
``print(plan)`` lists the plan forward then backward, with the rewrites that changed a call
(:mod:`descend.compile.rewrites`) marked at the end of its line.

The display formulas below (:data:`_SHOW`) are text for people; the plan never computes with
them: every number comes from the table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from descend.autodiff.primitives import Primitive

__all__ = ["Op", "Plan", "Slot"]


@dataclass
class Slot:
    """One value of the step: its role (``kind``), name, shape and dtype."""

    kind: str  # "x" | "y" | "param" | "const" | "view" | "value"
    name: str | None
    shape: tuple[int, ...]
    dtype: Any
    value: Any = None  # a constant's value
    source: str | None = None  # a view's batch array: "x" or "y"
    grad_of: int | None = None  # the slot this value is the gradient dC/d(...) of


@dataclass
class Op:
    """One call of a table row: ``kind`` is "forward", "vjp" or "accumulate"."""

    kind: str
    prim: Primitive
    ins: tuple[int, ...]
    params: dict[str, Any]
    dynamic: dict[str, int]  # parameters that are slots (a cost's targets)
    outs: tuple[int | None, ...] = ()
    marks: list[str] = field(default_factory=list)  # the rewrites that changed this call
    out_buffers: Any = None  # set by the buffer-reuse rewrite


@dataclass
class Plan:
    """The calls of one step, on numbered slots (see the module doc)."""

    slots: list[Slot]
    ops: list[Op]
    cost: int | None
    output: int | None
    grads: dict[str, int]
    params: list[str]
    rewrites: list[str] = field(default_factory=list)
    folded: dict[str, tuple[int, int]] = field(default_factory=dict)  # param -> (a slot, b slot)
    output_ops: list[Op] = field(default_factory=list)  # only for the output: run when asked
    # set by the buffer-reuse rewrite: the gradients' buffers, parts of one array (or None)
    grad_buffers: Any = None
    # the same number for a traced plan and its copies: with the same rewrites, the same
    # structure (an executor's layout is made once for them: see replay._layout)
    origin: int | None = None

    def copy(self) -> Plan:
        """A copy to rewrite: its own calls and slot list (the slots' values are shared: the
        rewrites never change them), without the buffers of the rewrites (every field but
        ``grad_buffers``, by position: a new field is added here too)."""
        if self.origin is None:
            self.origin = next(_ORIGINS)
        return Plan(
            list(self.slots), [_copy_op(op) for op in self.ops], self.cost, self.output,
            dict(self.grads), self.params, list(self.rewrites), dict(self.folded),
            [_copy_op(op) for op in self.output_ops], None, self.origin,
        )  # fmt: skip

    @property
    def seed(self) -> int | None:
        """The slot of the seed ``dC/dC`` that starts the backward pass (None: no cost)."""
        if self.cost is None:
            return None
        return next(
            (i for i, s in enumerate(self.slots) if s.kind == "const" and s.grad_of == self.cost),
            None,
        )

    @property
    def forward_ops(self) -> list[Op]:
        """The forward calls (a fused cost's call among them: its value is forward)."""
        return [op for op in self.ops if op.kind in ("forward", "fused")]

    @property
    def backward_ops(self) -> list[Op]:
        """The backward calls (a fused cost's call among them: its gradient is backward)."""
        return [op for op in self.ops if op.kind != "forward"]

    def prune(self) -> None:
        """Drop calls whose results nothing needs; the calls that only the model's output needs
        (a softmax whose cost took the logits) go to ``output_ops``, run when it is asked for.
        A forward plan (no cost) keeps its output's calls in ``ops``."""
        needed = set(self.grads.values()) | set(self.folded_slots())
        if self.cost is not None:
            needed.add(self.cost)
        elif self.output is not None:
            needed.add(self.output)
        every = self.ops + self.output_ops  # the output's calls only read forward values
        ops = _needed(every, needed)
        self.output_ops = []
        if self.cost is not None and self.output is not None and self.output not in needed:
            done = {s for op in ops for s in op.outs}
            self.output_ops = [op for op in _needed(every, {self.output}) if op.outs[0] not in done]
        self.ops = ops

    def folded_slots(self) -> list[int]:
        return [s for pair in self.folded.values() for s in pair]

    def __str__(self) -> str:
        names = _Names(self)
        lines = ["forward:"]
        lines += ["  " + _line(op, names) for op in self.forward_ops]
        lines += ["  " + _line(op, names) + "   (the output: when asked)" for op in self.output_ops]
        backward = self.backward_ops
        if backward:
            lines.append("backward:")
            lines += ["  " + _line(op, names, backward=True) for op in backward]
        for param, (a, b) in self.folded.items():
            lines.append(
                f"  {names.param(param)} -= lr * {names[a]}.T @ {names[b]}"
                "   [GD folded into the weight-gradient product]"
            )
        if self.rewrites:
            lines.append("rewrites: " + ", ".join(self.rewrites))
        return "\n".join(lines)

    __repr__ = __str__


_ORIGINS = itertools.count()


def op_function(op: Op):
    """The table's function that call ``op`` runs: the row's forward, vjp, or fused form."""
    if op.kind == "vjp":
        return op.prim.vjp
    return op.prim.fused if op.kind == "fused" else op.prim.forward


def _copy_op(op: Op) -> Op:
    return Op(op.kind, op.prim, op.ins, op.params, op.dynamic, op.outs, list(op.marks))


def _needed(ops: list[Op], needed: set[int]) -> list[Op]:
    """The calls of ``ops`` that the slots ``needed`` depend on (``needed`` grows to the slots
    they read), in order."""
    kept: list[Op] = []
    for op in reversed(ops):
        if any(s is not None and s in needed for s in op.outs):
            kept.append(op)
            needed.update(op.ins)
            needed.update(op.dynamic.values())
    kept.reverse()
    return kept


class _Names:
    """Readable names for the slots: ``x``, ``y``, ``W1``/``b1`` for the weight and bias of the
    first layer (``z1`` its pre-activation, ``a1`` its activation), ``C`` the cost, ``dC/d...``
    the gradients, ``t3`` any other intermediate value."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.names: dict[int, str] = {}
        self._params: dict[str, str] = {}
        self._layer_of: dict[str, int] = {}
        for i, slot in enumerate(plan.slots):
            if slot.kind in ("x", "y"):
                self.names[i] = slot.kind
            elif slot.kind == "param":
                self.names[i] = self.param(slot.name)
        self._name_forward()

    def param(self, name: str) -> str:
        known = self._params.get(name)
        if known is not None:
            return known
        prefix, _, leaf = name.rpartition(".")
        letter = {"weight": "W", "bias": "b"}.get(leaf)
        if letter is None:
            self._params[name] = name
            return name
        layer = self._layer_of.setdefault(prefix, len(self._layer_of) + 1)
        self._params[name] = f"{letter}{layer}"
        return self._params[name]

    def _name_forward(self) -> None:
        plan, layer, temp = self.plan, 0, 0
        for op in plan.forward_ops + plan.output_ops:
            out = op.outs[0]
            if out == plan.cost:
                self.names[out] = "C"
            elif op.prim.name in ("linear", "matmul") and _takes_param(plan, op):
                layer += 1
                self.names[out] = f"z{layer}"
            elif _is_activation(op) and self.names.get(op.ins[0], "").startswith("z"):
                self.names[out] = "a" + self.names[op.ins[0]][1:]
            else:
                temp += 1
                self.names[out] = f"t{temp}"

    def __getitem__(self, s: int | None) -> str:
        if s is None:
            return "_"
        known = self.names.get(s)
        if known is not None:
            return known
        slot = self.plan.slots[s]
        if slot.grad_of is not None:
            return "dC/d" + self[slot.grad_of]
        if slot.kind == "view":
            return f"{slot.source}.reshape{slot.shape}.astype({np.dtype(slot.dtype).name})"
        if slot.kind == "const":
            return _show_const(slot.value)
        return f"t{s}"


def _takes_param(plan: Plan, op: Op) -> bool:
    return any(plan.slots[s].kind == "param" for s in op.ins[1:])


def _is_activation(op: Op) -> bool:
    return op.prim.name in (
        "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"
    ) or op.prim.name not in _SHOW  # fmt: skip


def _show_const(value) -> str:
    if isinstance(value, np.ndarray):
        return f"const{value.shape}" if value.size > 1 else str(value.reshape(-1)[0])
    if isinstance(value, tuple) and all(isinstance(v, bool) for v in value):
        return "needs"
    return repr(value)


# How each row reads (display only): its forward, and its vjp's result for input i.
_SHOW: dict[str, tuple[str, tuple[str, ...]]] = {
    "linear": ("{0} @ {1} + {2}", ("{g} @ {1}.T", "{0}.T @ {g}", "sum({g}, axis=0)")),
    "matmul": ("{0} @ {1}", ("{g} @ {1}.T", "{0}.T @ {g}")),
    "add": ("{0} + {1}", ("{g}", "{g}")),
    "subtract": ("{0} - {1}", ("{g}", "-{g}")),
    "multiply": ("{0} * {1}", ("{g} * {1}", "{g} * {0}")),
    "divide": ("{0} / {1}", ("{g} / {1}", "-{g} * {ans} / {1}")),
    "relu": ("relu({0})", ("{g} * ({0} > 0)",)),
    "leaky_relu": ("leaky_relu({0})", ("where({0} > 0, {g}, 0.01 * {g})",)),
    "sigmoid": ("sigmoid({0})", ("{g} * {ans} * (1 - {ans})",)),
    "tanh": ("tanh({0})", ("{g} * (1 - {ans}**2)",)),
    "softmax": ("softmax({0})", ("{ans} * ({g} - sum({g} * {ans}, axis=-1))",)),
    "softmax_cross_entropy": (
        "softmax_cross_entropy({0}, target={target})",
        ("{g} * (softmax({0}) - {target}) / n",),
    ),
    "sigmoid_binary_cross_entropy": (
        "sigmoid_binary_cross_entropy({0}, target={target})",
        ("{g} * (sigmoid({0}) - {target}) / N",),
    ),
    "mean": ("mean({0})", ("{g} / N broadcast to {0}",)),
    "sum": ("sum({0})", ("{g} broadcast to {0}",)),
    "exp": ("exp({0})", ("{g} * {ans}",)),
    "log": ("log({0})", ("{g} / {0}",)),
    "power": ("{0} ** {1}", ("{g} * {1} * {0} ** ({1} - 1)", "{g} * {ans} * log({0})")),
    "negative": ("-{0}", ("-{g}",)),
}


def _line(op: Op, names: _Names, backward: bool = False) -> str:
    """The line(s) of call ``op``; of a fused call, its value's (forward) or its gradients'."""
    inputs = [names[s] for s in (op.ins[3:] if op.kind == "vjp" else op.ins)]
    args = {k: names[s] for k, s in op.dynamic.items()}
    args.setdefault("target", "y")
    marks = f"   [{', '.join(op.marks)}]" if op.marks else ""
    show = _SHOW.get(op.prim.name)
    if op.kind == "fused":
        value = op.outs[0]
        op = Op("forward" if not backward else "vjp", op.prim, op.ins, op.params, op.dynamic,
                op.outs[:1] if not backward else op.outs[1:], op.marks)  # fmt: skip
        if backward:  # its gradient, from the seed and the value it computed with it
            args.update(g=names[op.dynamic["g"]], ans=names[value])
            return _gradient_lines(op, names, inputs, args, show, marks)
    if op.kind == "forward":
        if show is None:
            inner = ", ".join(names[s] for s in op.ins)
            text = f"{op.prim.name}({inner})"
        else:
            text = show[0].format(*inputs, **args)
        return f"{names[op.outs[0]]} = {text}{marks}"
    if op.kind == "accumulate":
        a, b = op.ins
        return f"{names[op.outs[0]]} = {names[a]} + {names[b]}   (used twice: sum){marks}"
    args.update(g=names[op.ins[0]], ans=names[op.ins[1]])
    return _gradient_lines(op, names, inputs, args, show, marks)


def _gradient_lines(op: Op, names: _Names, inputs: list, args: dict, show, marks: str) -> str:
    parts = []
    for i, out in enumerate(op.outs):
        if out is None:
            continue
        if show is None or i >= len(show[1]):
            text = f"{op.prim.name}.vjp({args['g']})[{i}]"
        else:
            text = show[1][i].format(*inputs, **args)
        parts.append(f"{names[out]} = {text}")
    # one line per gradient; the marks go on the first
    return "\n  ".join([parts[0] + marks, *parts[1:]]) if parts else marks
