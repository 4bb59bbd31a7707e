"""The compiled step and the compiled forward pass: plans traced once, replayed per batch."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from math import isfinite

import numpy as np

from descend import losses
from descend.autodiff.backward import leaf_grad
from descend.compile import rewrites
from descend.compile.backend import finite, n_workers, split_rows, squared_norm
from descend.compile.plan import Plan
from descend.compile.replay import Executor
from descend.compile.trace import NotFinite, trace_forward, trace_step
from descend.nn.activations import Activation, activation_name, get_activation
from descend.nn.dense import Dense
from descend.nn.sequential import Sequential

__all__ = ["CompiledForward", "CompiledStep", "compile_forward", "compile_step"]

# The rows of a batch the first trace (when the step is made) uses at the most: a batch from
# rewrites.SHARD_MIN_ROWS rows on may be cut into row blocks, which are traced for their shape.
TRACE_MAX_ROWS = rewrites.SHARD_MIN_ROWS
# Plans kept per step: an epoch has at most two batch shapes (k rows and the remainder).
_MAX_PLANS = 4
# Traced plans of built-in architectures, by structure (see _structure): a new model of the
# same layers, cost and batch shape (every fit call of a benchmark or a sweep) is not traced
# again. Each step copies the plan before its rewrites, so no buffer is shared between models.
_TRACED: dict[tuple, Plan] = {}
_MAX_TRACED = 32


def _structure(model, loss_fn, xb: np.ndarray, yb: np.ndarray, layers=False) -> tuple | None:
    """What a traced plan of a built-in architecture depends on, or None for any other model:
    a Sequential of Dense and Activation layers with built-in activations, a built-in cost
    (``layers``: the model's :func:`_layers`, when known)."""
    if layers is False:
        layers = _layers(model, loss_fn)
    if layers is None:
        return None
    y_dtype = getattr(yb, "dtype", None)
    return (layers, loss_fn, xb.shape, xb.dtype.str, np.shape(yb), y_dtype)


def _layers(model, loss_fn) -> tuple | None:
    """The layers of a built-in architecture (their kinds, activations and weights' shapes),
    or None for any other model or cost (see :func:`_structure`)."""
    if type(model) is not Sequential or loss_fn not in losses.LOSSES.values():
        return None
    layers = []
    for layer in model.layers:
        if type(layer) is Dense:
            act, fn = layer.activation, layer.activation_fn
            shape = (layer.weight.shape, layer.weight.dtype.str, layer.bias is not None)
        elif type(layer) is Activation:
            act, fn, shape = layer.activation, layer.fn, None
        else:
            return None
        name = activation_name(act)
        if name is None or get_activation(name) is not fn:
            return None
        layers.append((type(layer).__name__, name, shape))
    return tuple(layers)


def _traced(model, loss_fn, xb: np.ndarray, yb: np.ndarray, layers=False) -> Plan:
    """``trace_step``, or a copy of the plan traced for a model of the same structure
    (``layers``: the model's :func:`_layers`, when known)."""
    key = _structure(model, loss_fn, xb, yb, layers)
    plan = _TRACED.get(key) if key is not None else None
    if plan is None:
        plan = trace_step(model, loss_fn, xb, yb)
        if key is not None:
            if len(_TRACED) >= _MAX_TRACED:
                _TRACED.clear()
            _TRACED[key] = plan
    return plan.copy()


# The plans of finished steps (with their buffers), by what they were made for: a later step
# of a model of the same built-in structure, cost and rewrites (the next fit of a sweep, of a
# benchmark, of a playground's reset) binds them to its own parameters instead of tracing and
# rewriting them again, as a jit cache would. Only a small step's plans are kept, and only
# while no step uses them: a step takes them, and gives them back when it is freed. The row
# blocks of a large batch (their buffers are touched page by page the first time: 5-8 ms of a
# 100 ms full-batch update of MLP 784-256-10 on 20,000 rows) are kept for one step at a time.
IDLE_MAX_BYTES = 1 << 20
IDLE_BLOCKS_MAX_BYTES = 32 << 20
_MAX_IDLE = 8


@dataclass
class _Lease:
    """What a step gives back to ``_IDLE`` when it is freed: its runners (the same dicts it
    fills) and their gradients' buffers, under its key, with the flags they were made for."""

    key: tuple
    flags: tuple[bool, bool]
    runners: dict[tuple, rewrites.Runner]
    blocks: dict[tuple, rewrites.Runner]
    grad_buffers: rewrites.GradientBuffers | None = None


@dataclass
class _Idle:
    """A freed step's runners by batch shape, the gradients' buffers they share, and what
    their rewrites depended on (``reads_grads`` and whether the rule folds products)."""

    runners: dict[tuple, rewrites.Runner]
    blocks: dict[tuple, rewrites.Runner]
    grad_buffers: rewrites.GradientBuffers | None
    flags: tuple[bool, bool]


_IDLE: dict[tuple, _Idle] = {}


def _release(lease: _Lease) -> None:
    """When a step is freed: its parameters keep their last gradients (copies of the buffers
    they were), and its runners wait in ``_IDLE`` for the next step of the same key."""
    runners, blocks = lease.runners, lease.blocks
    for runner in runners.values():
        env = runner.executor.env
        for p, s in runner.grad_slots:
            if p.grad is not None and p.grad is env[s]:
                p.grad = p.grad.copy()
    if sum(runner.buffer_bytes for runner in runners.values()) > IDLE_MAX_BYTES:
        runners = {}
    if sum(runner.buffer_bytes for runner in blocks.values()) > IDLE_BLOCKS_MAX_BYTES:
        blocks = {}
    if not (runners or blocks):
        return
    for runner in (*runners.values(), *blocks.values()):
        runner.rebind({})  # the model and its last batch are not held while they wait
    if len(_IDLE) >= _MAX_IDLE:
        _IDLE.clear()
    if blocks:  # one step's row blocks at a time (a list: a freed step may come from any thread)
        for idle in list(_IDLE.values()):
            idle.blocks = {}
    grad_buffers = lease.grad_buffers if runners else None
    _IDLE[lease.key] = _Idle(dict(runners), dict(blocks), grad_buffers, lease.flags)


def compile_step(
    model,
    loss_fn: Callable,
    optimizer,
    xb: np.ndarray,
    yb: np.ndarray,
    *,
    rewrite: tuple[str, ...] | None = None,
) -> CompiledStep:
    """Compile one training step of ``model``, ``loss_fn`` and ``optimizer`` from a batch.

    Traces one eager step on ``(xb, yb)`` (forward, cost, backward; nothing is updated) into a
    plan of calls of the primitives table and returns a step that replays it, with the
    rewrites of :mod:`descend.compile.rewrites`: ``step.run(xb, yb)`` does one update, as
    ``zero_grad``, forward, cost, ``backward`` and ``optimizer.step`` would, and returns the
    cost.

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
    rewrite : tuple of str, optional
        The rewrites to apply, by name (default: all of :data:`~descend.compile.rewrites.ALL`;
        ``()`` for none: the eager step's numbers bit for bit).

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
    return CompiledStep(model, loss_fn, optimizer, xb, yb, rewrite=rewrite)


class CompiledStep:
    """One training update by replaying a traced plan (see :func:`compile_step`).

    Attributes
    ----------
    plan : Plan
        The plan of the batch shape last run (printable).
    reads_grads : bool, default True
        Whether something reads the parameters' ``.grad`` during training; set it to False
        before the first :meth:`run` to allow the ``fold_gd`` rewrite (then :meth:`finish`
        writes the folded weights' ``.grad``).
    grads_finite : bool
        False when the last :meth:`run` found a gradient that is not finite (then nothing was
        updated).
    targets_checked : bool
        Set by the caller when every target was checked before training (the plan only
        converts each batch's targets, as the cost does, and never checks them).
    """

    def __init__(self, model, loss_fn, optimizer, xb, yb, *, rewrite=None) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.params = model.named_parameters()
        self.param_list = list(self.params.values())
        self.reads_grads = True
        self.targets_checked = False
        self.grads_finite = True
        self.rewrite = rewrites.ALL if rewrite is None else tuple(rewrite)
        unknown = set(self.rewrite) - set(rewrites.ALL)
        if unknown:
            raise ValueError(
                f"rewrite names {sorted(unknown)} are not rewrites; choose from {rewrites.ALL}"
            )
        self._runners: dict[tuple, rewrites.Runner] = {}
        # the gradients' buffers, shared by the runners of every batch shape (one at a time)
        self.grad_buffers: rewrites.GradientBuffers | None = None
        self._blocks: dict[tuple, rewrites.Runner] = {}
        self._shards_ok: bool | None = None if "shards" in self.rewrite else False
        self._flops_per_row = _flops_per_row(self.param_list)
        layers = self._layers = _layers(model, loss_fn)
        # the key of the runners this step gives back when freed (None: not kept, see _IDLE)
        self._idle_key = None if layers is None else (layers, loss_fn, self.rewrite)
        self._idle: _Idle | None = None  # what this step took from _IDLE (see _take_idle)
        self._lease: _Lease | None = None  # what it gives back (made at its first batch)
        self._leased = False
        # A large batch is traced on its first rows here (the same calls; its own shape is
        # traced when it runs whole, and a batch cut into row blocks never is): tracing runs
        # the eager step, whose memory grows with the rows.
        xb, yb = xb[:TRACE_MAX_ROWS], yb[:TRACE_MAX_ROWS]
        first = None
        if self._idle_key not in _IDLE:  # (a structure whose runners wait there compiles)
            first = _traced(model, loss_fn, xb, yb, layers)  # NotCompilable here, not later
        # the batch to trace for .plan if it is asked for before the first run
        self._first = (xb, yb) if first is None else None
        self._pending: tuple | None = (_key(xb, yb), first)
        self._last: rewrites.Runner | None = None
        self._last_shape: tuple | None = None  # the last batch's shapes and dtypes, its runner
        self._last_blocks: list[rewrites.Runner] = []
        self._last_plan = first

    @property
    def plan(self) -> Plan:
        """The plan of the batch shape last run (before the first run: as traced)."""
        if self._last_plan is None:
            self._last_plan = _traced(self.model, self.loss_fn, *self._first, self._layers)
        return self._last_plan

    @property
    def output(self) -> np.ndarray | None:
        """The model's output for the last batch run (metrics read it)."""
        if self._last is not None:
            return self._last.output()
        if self._last_blocks:  # the last batch ran in row blocks: their outputs, in order
            return np.concatenate([runner.output() for runner in self._last_blocks])
        return None

    def _runner_for(self, xb: np.ndarray, yb: np.ndarray) -> rewrites.Runner:
        last = self._last_shape
        if last is not None and type(yb) is np.ndarray:  # the same shapes as the last batch
            x_shape, x_dtype, y_shape, y_dtype, runner = last
            if xb.shape == x_shape and yb.shape == y_shape:
                if xb.dtype == x_dtype and yb.dtype == y_dtype:
                    return runner
        key = _key(xb, yb)
        runner = self._runners.get(key)
        if runner is None:
            if len(self._runners) >= _MAX_PLANS:
                self._runners.clear()
            runner = self._from_idle("runners", key)
            if runner is None:
                pending, self._pending = self._pending, None
                plan = pending[1] if pending and pending[0] == key else None
                if plan is None:
                    plan = _traced(self.model, self.loss_fn, xb, yb, self._layers)
                runner = rewrites.apply(plan, self, self.optimizer)
            self._runners[key] = runner
            if self._lease is not None:
                self._lease.grad_buffers = self.grad_buffers
        self._last_shape = (xb.shape, xb.dtype, np.shape(yb), getattr(yb, "dtype", None), runner)
        return runner

    def _from_idle(self, kind: str, key: tuple) -> rewrites.Runner | None:
        """A freed step's runner of ``kind`` ("runners" or "blocks") for ``key``, bound to
        these parameters, or None."""
        if not self._leased:
            self._take_idle()
        runner = getattr(self._idle, kind).pop(key, None) if self._idle is not None else None
        if runner is not None:
            runner.rebind(self.params)
        return runner

    def _take_idle(self) -> None:
        """At the first batch: take the runners a freed step of the same key left (when made
        with the same ``reads_grads`` and rule), and arrange to give this step's back."""
        self._leased = True
        if self._idle_key is None:
            return  # nothing is taken or given back
        flags = (self.reads_grads, bool(getattr(self.optimizer, "folds_products", False)))
        idle = _IDLE.pop(self._idle_key, None)
        if idle is not None and idle.flags == flags:
            self._idle = idle
            if idle.runners:
                self.grad_buffers = idle.grad_buffers
        self._lease = _Lease(self._idle_key, flags, self._runners, self._blocks, self.grad_buffers)
        release = weakref.finalize(self, _release, self._lease)
        release.atexit = False  # nothing to give back when the interpreter ends

    def block_runner(self, xb: np.ndarray, yb: np.ndarray, worker: int) -> rewrites.Runner:
        """The runner of a row block's shape for ``worker`` (gradients only; traced in the
        calling thread when new)."""
        key = (worker, *_key(xb, yb))
        runner = self._blocks.get(key)
        if runner is None:
            runner = self._from_idle("blocks", key)
            if runner is None:
                plan = _traced(self.model, self.loss_fn, xb, yb)
                if "buffers" in self.rewrite:
                    rewrites.reuse_buffers(plan)
                runner = rewrites.Runner(plan, self.params)
                rewrites.seed_with_rows(runner, len(xb))
            self._blocks[key] = runner
        return runner

    def run(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """One update on the batch; returns its cost (before the update).

        When the cost or a gradient is not finite, nothing is updated (``grads_finite`` says
        which); the caller stops training.
        """
        last = self._last_shape
        if (
            last is not None
            and xb.shape == last[0]
            and yb.__class__ is np.ndarray
            and yb.shape == last[2]
            and xb.dtype == last[1]
            and yb.dtype == last[3]
        ):  # the shapes of the last batch, which ran whole: the same runner (and no trace)
            runner = self._last = last[4]
            blocks = 0
            cost = runner.cost(xb, yb)
        else:
            try:
                blocks = self._shard_blocks(xb, yb)
                if blocks:
                    self._last_shape = None
                    cost, grads = self._sharded(xb, yb, blocks)
                else:
                    runner = self._last = self._runner_for(xb, yb)
                    self._last_plan, self._first = runner.plan, None
                    cost = runner.cost(xb, yb)
            except NotFinite:  # a new shape's trace met values that are not finite: diverged
                return float("nan")
        if not isfinite(cost):
            return cost
        if blocks:
            all_finite = self._hand_out([(self.params[name], g) for name, g in grads.items()])
            self.grads_finite = all_finite
            if all_finite:
                self.optimizer.step(self.param_list)
            return cost
        all_finite = self._hand_out_runner(runner) and runner.folded_finite()
        self.grads_finite = all_finite
        if all_finite:
            runner.update(self.optimizer, self.param_list)
        return cost

    def _hand_out(self, pairs: list) -> bool:
        """Set every parameter's ``.grad`` (None where ``pairs`` has no gradient for it), as
        the eager step would; whether every gradient is finite."""
        handed_out: set[int] = set()
        all_finite = True
        for p in self.param_list:
            p.grad = None
        for p, g in pairs:
            p.grad = g = leaf_grad(g, p.data, handed_out)
            all_finite = all_finite and finite(g)
        return all_finite

    def _hand_out_runner(self, runner: rewrites.Runner) -> bool:
        """:meth:`_hand_out` of a runner's gradients. When the last update handed out the
        same arrays as they were (the reused buffers) and every ``.grad`` still holds them,
        there is nothing to set: only their finiteness is checked, by one sum of squares over
        the array holding them all (or one per gradient)."""
        env, handed = runner.executor.env, runner.handed
        ungraded = runner.ungraded
        if handed is not None and (not ungraded or all(p.grad is None for p in ungraded)):
            pairs, sums = handed
            for p, s, g in pairs:
                if p.grad is not g or env[s] is not g:
                    break
            else:
                total = 0.0  # NaN and inf propagate into a sum of squares: see _flat
                for flat in sums:
                    total += squared_norm(flat)
                return isfinite(total) or all(finite(g) for _, _, g in pairs)
        return self._hand_out_again(runner)

    def _hand_out_again(self, runner: rewrites.Runner) -> bool:
        """Set every ``.grad`` from the runner's gradient slots; a gradient in a buffer of its
        own (the buffers rewrite's) is given as it is, any other as the eager step gives it."""
        env, buffers = runner.executor.env, runner.grad_buffers
        handed_out: set[int] = set()
        for p in self.param_list:
            p.grad = None
        pairs, own = [], True
        for p, s in runner.grad_slots:
            g, data = env[s], p.data
            if g is buffers.get(s) and g.dtype == data.dtype and g.shape == data.shape:
                p.grad = g  # a part of the one gradient array that no other parameter holds
                handed_out.add(id(g))
            else:
                p.grad = g = leaf_grad(g, data, handed_out)
                own = False
            pairs.append((p, s, g))
        if own and runner.plan.grad_buffers is not None:
            sums = [runner.plan.grad_buffers.flat]  # every gradient, and zeros between them
            all_finite = finite(sums[0])
        else:
            sums = [_flat(g) for _, _, g in pairs]
            all_finite = all(finite(g) for _, _, g in pairs)
        if all(env[s] is g and g.flags.c_contiguous for _, s, g in pairs):
            # given as they are (and their flat views are views): the next update may skip
            runner.handed = (pairs, sums)
        else:
            runner.handed = None
        return all_finite

    def finish(self) -> None:
        """Write the ``.grad`` of the weights whose update was folded into a product (their
        gradient of the last update); call it when training ends."""
        for runner in self._runners.values():
            if runner is self._last:
                runner.write_folded_grads()

    # --- the shards rewrite --------------------------------------------------------------------
    def _shard_blocks(self, xb: np.ndarray, yb: np.ndarray) -> int:
        if self._shards_ok is False:
            return 0
        blocks = rewrites.shard_count(len(xb), self._flops_per_row)
        if blocks and self._shards_ok is None:
            self._shards_ok = self._shards_agree(xb, yb, blocks)
        return blocks if self._shards_ok else 0

    def _sharded(self, xb, yb, blocks: int) -> tuple[float, dict[str, np.ndarray]]:
        ranges = split_rows(len(xb), blocks)
        workers = min(n_workers(), blocks)
        self._last_blocks = [  # traced here, not in the workers
            self.block_runner(xb[start:stop], yb[start:stop], i % workers)
            for i, (start, stop) in enumerate(ranges)
        ]
        parts = rewrites.parallel_shard_sums(self, xb, yb, blocks)
        self._last = None
        plan = self.plan
        plan.rewrites[:] = [r for r in plan.rewrites if "shards" not in r]
        plan.rewrites.append(f"shards ({blocks} row blocks, sums added in order)")
        return rewrites.combine(parts)

    def _shards_agree(self, xb, yb, blocks: int) -> bool:
        """Whether the sum of the blocks' gradients equals the whole batch's: a built-in cost
        (a mean over rows), and a model whose rows do not mix: known for a Sequential of Dense
        and activation layers, else checked on this batch (within rounding)."""
        if self.loss_fn not in losses.LOSSES.values():
            return False
        if _structure(self.model, self.loss_fn, xb, yb) is not None:
            return True  # Dense and activation layers: each row's output depends on that row only
        whole = _traced(self.model, self.loss_fn, xb, yb)
        cost, grads = rewrites.Runner(whole, self.params).gradients(xb, yb)
        self._last_plan = whole
        for i, (start, stop) in enumerate(split_rows(len(xb), blocks)):
            self.block_runner(xb[start:stop], yb[start:stop], i % min(n_workers(), blocks))
        shard_cost, shard_grads = rewrites.combine(
            rewrites.parallel_shard_sums(self, xb, yb, blocks)
        )
        tol = 1e-4 if xb.dtype == np.float32 else 1e-9
        close = np.isclose(shard_cost, cost, rtol=tol)
        for name, g in grads.items():
            scale = float(np.abs(g).max()) or 1.0
            close = close and bool(np.allclose(shard_grads[name], g, rtol=tol, atol=tol * scale))
        return bool(close)


def _flat(g: np.ndarray) -> np.ndarray:
    """A flat view of gradient ``g`` whose sum of squares, added to the others', proves them
    all finite when the total is (see :func:`~descend.compile.backend.finite`; else
    :func:`finite` asks each); no values for an array :func:`finite` never checks."""
    return g.reshape(-1) if g.dtype.kind == "f" else g.reshape(-1)[:0].astype(np.float64)


def _key(xb: np.ndarray, yb: np.ndarray) -> tuple:
    return (xb.shape, xb.dtype.str, np.shape(yb), getattr(yb, "dtype", None))


def _flops_per_row(params: list) -> float:
    # the products of one row, forward: 2 per weight of a matrix (biases and vectors aside)
    return 2.0 * sum(p.data.size for p in params if p.data.ndim == 2)


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
            rewrites.reuse_buffers(plan)
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
