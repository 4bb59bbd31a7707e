"""Named rewrites of a plan: faster ways to run the same step, each tested against the eager one.

``buffers`` (:func:`reuse_buffers`)
    Each call of a row that can write into a given array (an optional ``out=`` of its forward
    or vjp: the same formula, see :mod:`descend.autodiff.primitives`) writes into a buffer made
    once per plan, so an update allocates little. The same numbers as the eager step, bit for
    bit. The parameters' ``.grad`` are then those buffers, overwritten by the next update (copy
    them in a callback to keep them; when the step is freed, each parameter gets a copy of its
    last gradient, and a small step's buffers serve the next model of the same structure).
    The gradients' buffers are parts of one array (:class:`GradientBuffers`: one sum of
    squares over it proves every gradient finite), shared by the plans of one step's batch
    shapes, which run one after the other.

``fold_gd`` (:func:`fold_updates`)
    When nothing reads ``.grad`` during training (``reads_grads`` False) and the rule can take a
    gradient as the product of two factors (:attr:`descend.optim.Optimizer.folds_products`:
    plain ``GD``), a weight whose gradient is ``a.T @ g`` (the weight of one ``linear`` or
    ``matmul``, used once) gets its update from the rule's
    :meth:`~descend.optim.GD.step_from_product`, ``theta <- theta - lr a^T g`` in one BLAS
    call, without the gradient written out and read back. Chosen where that saves work: a
    weight of more than ``FOLD_MIN_WEIGHT`` entries, larger than its two factors
    (``n (p + q) < p q`` for ``n`` rows). Nothing is updated before every gradient is proven
    finite (by the bound ``|a| |g|`` on its entries, else by computing it). Equal up to
    rounding (float32: about 1e-7 relative per update). The folded weights' ``.grad`` are
    written by ``finish()``.

``transposed_dx`` (:func:`transpose_dx`)
    A layer's ``dC/dx = g W^T`` (the vjp of ``linear``) whose product the BLAS computes faster
    as ``W g^T`` (:func:`~descend.compile.backend.transposed_product_faster`: a thin float32
    ``g``, 16 to 64 rows, on OpenBLAS) gets a column-major buffer from the ``buffers`` rewrite;
    the table's vjp writes ``W g^T`` into its row-major transpose. The same sums through
    another kernel: equal to the eager step's numbers up to rounding (bit for bit on the
    machines measured). Only with ``buffers``.

``fuse_cost`` (:func:`fuse_cost`)
    A cost whose table row has a fused form (:attr:`descend.autodiff.Primitive.fused`: the
    softmax cross-entropy) computes its value and its gradient ``dC/dz`` in one call that
    shares their common work (the shift, exponential and total of each row) instead of a
    forward call and a vjp call that each compute it. The same operations on the same values:
    bit for bit the eager step's numbers.

``shards`` (:func:`shard_sums`, :func:`combine`)
    The gradient of a mean cost over ``n`` rows is the sum of per-shard gradient sums divided
    by ``n``. A large batch (at least ``SHARD_MIN_ROWS`` rows and ``SHARD_MIN_FLOPS`` in its
    products) is cut into row blocks, one set per core: each block runs the same plan (traced
    for its shape, in buffers of its own worker) seeded with ``dC/dC`` = its rows, so that its
    gradients come out as sums over its rows (its cost: the mean times its rows); each core
    adds its blocks' sums in their order, the cores' sums are added in core order, then
    divided by ``n``. Only for the built-in costs (means over rows) and a plan whose rows do not
    mix (checked on the traced batch). Equal up to rounding (the sums are taken in another
    order); the blocks depend only on ``n`` and the number of workers, so the result is
    deterministic.

    The entry point for running shards elsewhere (other processes or machines) is
    :func:`shard_sums` on one machine's rows and :func:`combine` of every machine's
    :class:`ShardSums`, in a fixed order.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from math import prod

import numpy as np

from descend.compile.backend import (
    finite,
    map_pieces,
    n_workers,
    split_rows,
    squared_norm,
    transposed_product_faster,
)
from descend.compile.plan import Op, Plan, op_function
from descend.compile.replay import Executor

__all__ = [
    "ALL", "GradientBuffers", "Runner", "ShardSums", "apply", "combine", "fold_updates",
    "fuse_cost", "reuse_buffers", "shard_sums", "transpose_dx",
]  # fmt: skip

ALL = ("fuse_cost", "fold_gd", "transposed_dx", "buffers", "shards")
"""Every rewrite, by name, in the order they are applied."""

# fold_gd: only a weight of more entries than this. A folded update is one BLAS call through
# ctypes and a bound on its factors; a smaller weight's gradient product and axpy cost less.
# Measured (one BLAS thread, float32, n rows; written out + axpy against folded + bound, us;
# the bound then four reductions, now two dot products): 128x128 n=32: 14.6 vs 22.8, n=1: 8.3
# vs 19.3; 256x256 n=32: 57.6 vs 59.0, n=1: 21.5 vs 16.2; 784x256 n=32: 190 vs 166; 512x512
# n=32: 256 vs 208. Again with today's bound, the residual block 64-128-[128-128]+-10 at n=32
# with its 128x128 weights folded: 184 against 176 us an update (medians of 8 epochs).
FOLD_MIN_WEIGHT = 65536
# shards: a batch of at least SHARD_MIN_ROWS rows and SHARD_MIN_FLOPS in its products is cut
# into blocks of about SHARD_ROWS rows (a block's activations then stay in the cache).
# Measured on 2 cores, MLP 784-256-10, per update: 1,024 rows 5.1 ms cut against 4.8 ms whole,
# 2,048 rows 9.0 against 9.7, 4,096 rows 19.2 against 20.1, 20,000 rows 69 against 85.
SHARD_MIN_ROWS = 2048
SHARD_MIN_FLOPS = 8e8
SHARD_ROWS = 2048


class Runner:
    """Runs a (rewritten) plan for one batch shape: gradients, then the rule's update."""

    def __init__(self, plan: Plan, params: dict) -> None:
        self.plan = plan
        self.executor = Executor(plan, params)
        self._replay, self._env, self._cost = self.executor.replay, self.executor.env, plan.cost
        # the buffers rewrite's gradient buffers by slot: parts of one array, each a
        # parameter's own (see CompiledStep._hand_out_runner)
        views = {} if plan.grad_buffers is None else plan.grad_buffers.views
        self.grad_buffers = {plan.grads[n]: v for n, v in views.items()}
        # the bytes of the buffers the rewrites made for this plan
        self.buffer_bytes = sum(
            b.nbytes
            for op in plan.ops + plan.output_ops
            for b in (op.out_buffers if isinstance(op.out_buffers, tuple) else [op.out_buffers])
            if b is not None
        )
        self._take(params)

    def rebind(self, params: dict) -> None:
        """Run for these parameters (another model's, of the same names, shapes and dtypes)
        from now on, with the same plan and buffers; ``{}``: hold none (and no batch)."""
        self.executor.rebind(params)
        self._take(params)

    def _take(self, params: dict) -> None:
        plan = self.plan
        self.params = params
        self._ran = False
        names = list(params)
        if not params:  # put aside (see CompiledStep): no parameter is held
            self._folded, self._bounds, self.grad_slots, self.ungraded = [], [], [], []
            self.handed = None
            return
        self._folded = [
            (names.index(name), a, b, params[name]) for name, (a, b) in plan.folded.items()
        ]
        # (a slot, b slot, the bound on |a|^2 |b|^2 below which a.T @ b is finite: see
        # folded_finite; the square of float64's bound is inf, still sound: a finite product
        # of two squared norms is then below 1e308, so |a| |b| < 1e154)
        self._bounds = []
        for name, (a, b) in plan.folded.items():
            limit = 0.5 * float(np.finfo(params[name].data.dtype).max)
            self._bounds.append((a, b, limit * limit))
        # (parameter, gradient slot) of every gradient written out, and the parameters without
        # one (folded, or not used): their .grad is None after an update
        self.grad_slots = [(params[name], s) for name, s in plan.grads.items()]
        self.ungraded = [p for name, p in params.items() if name not in plan.grads]
        # set by the compiled step when every gradient array was handed to its parameter as it
        # is (the reused buffers): ([(parameter, slot, array)], the arrays whose sums prove
        # them all finite), else None
        self.handed: tuple | None = None

    def gradients(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The cost of the batch and every gradient that is written out, by parameter name."""
        cost = self.cost(xb, yb)
        env = self.executor.env
        return cost, {name: env[s] for name, s in self.plan.grads.items()}

    def cost(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """Run the plan on the batch; the cost (the gradients are in ``executor.env``)."""
        env = self._env
        self._replay(env, xb, yb)  # the executor's call, without its frame
        self._ran = True
        return float(env[self._cost])

    def output(self) -> np.ndarray | None:
        if not self._ran or self.plan.output is None:
            return None
        return self.executor.output()

    def folded_finite(self) -> bool:
        """Whether the folded gradients ``a.T @ b`` are finite: by the bound
        ``|(a.T @ b)_ij| <= |a| |b|`` (Cauchy-Schwarz; Frobenius norms, two dot products)
        where it holds with room to spare, else by computing them."""
        env = self.executor.env
        for a_slot, b_slot, limit_squared in self._bounds:
            a, b = env[a_slot], env[b_slot]
            bound_squared = squared_norm(a) * squared_norm(b)
            # NaN compares False; an overflowing norm is inf: both computed out
            if not bound_squared < limit_squared and not finite(np.dot(a.T, b)):
                return False
        return True

    def update(self, optimizer, params: list) -> None:
        """The rule's step: every written-out gradient from ``.grad``, the folded ones from
        their factors."""
        if not self._folded:
            optimizer.step(params)
            return
        env = self.executor.env
        optimizer.step(params, products={i: (env[a], env[b]) for i, a, b, _ in self._folded})

    def write_folded_grads(self) -> None:
        """Set the folded weights' ``.grad`` to their gradient of the last update."""
        if not self._ran:
            return
        env = self.executor.env
        for _, a, b, p in self._folded:
            with np.errstate(over="ignore", invalid="ignore"):  # a diverged last update's too
                p.grad = np.dot(env[a].T, env[b])


def apply(plan: Plan, step, optimizer) -> Runner:
    """Apply the step's rewrites (``step.rewrite``) to a freshly traced plan."""
    if "fuse_cost" in step.rewrite:
        fuse_cost(plan)
    if "fold_gd" in step.rewrite and not step.reads_grads:
        fold_updates(plan, optimizer, step.params)
    if "buffers" in step.rewrite:
        if "transposed_dx" in step.rewrite:
            transpose_dx(plan)
        # the step's batch shapes run one after the other: their gradients share buffers
        reuse_buffers(plan, shared=step.grad_buffers)
        if step.grad_buffers is None:
            step.grad_buffers = plan.grad_buffers
    return Runner(plan, step.params)


# --- fuse_cost -------------------------------------------------------------------------------


def fuse_cost(plan: Plan) -> bool:
    """The ``fuse_cost`` rewrite (see the module doc): the cost's forward call and the vjp
    call that starts the backward pass (from the seed ``dC/dC``) become one call of the row's
    fused form, when it has one. Returns whether it did."""
    fwd = next((op for op in plan.ops if op.kind == "forward" and op.outs[0] == plan.cost), None)
    if plan.cost is None or fwd is None or fwd.prim.fused is None:
        return False
    seed = plan.seed
    vjp = next(
        (
            op for op in plan.ops
            if op.kind == "vjp" and op.prim is fwd.prim and op.ins[0] == seed
            and op.ins[3:] == fwd.ins and op.params == fwd.params and op.dynamic == fwd.dynamic
            and all(s is not None for s in op.outs)
        ),
        None,
    )  # fmt: skip
    if seed is None or vjp is None:
        return False
    fused = Op("fused", fwd.prim, fwd.ins, fwd.params, {**fwd.dynamic, "g": seed},
               (plan.cost, *vjp.outs), [*fwd.marks, "fuse_cost"])  # fmt: skip
    plan.ops = [fused if op is fwd else op for op in plan.ops if op is not vjp]
    plan.rewrites.append("fuse_cost (the cost and its gradient in one call)")
    return True


# --- transposed_dx ---------------------------------------------------------------------------

TRANSPOSED = "transposed_dx"


def transpose_dx(plan: Plan) -> int:
    """The ``transposed_dx`` rewrite (see the module doc): marks the ``linear`` vjps whose
    ``dC/dx`` the ``buffers`` rewrite then gives a column-major buffer; returns how many."""
    keep = set(plan.grads.values()) | set(plan.folded_slots())  # row-major: read by BLAS calls
    marked = 0
    for op in plan.ops:
        dx = op.outs[0] if op.kind == "vjp" and op.prim.name == "linear" else None
        if dx is None or dx in keep:
            continue
        g, w = plan.slots[op.ins[0]], plan.slots[op.ins[4]]
        if (
            len(g.shape) == 2
            and len(w.shape) == 2
            and transposed_product_faster(g.shape[0], g.shape[1], w.shape[0], g.dtype)
        ):
            op.marks.append(TRANSPOSED)
            marked += 1
    if marked:
        plan.rewrites.append(f"transposed_dx ({marked} of dC/dx = g W^T as (W g^T)^T)")
    return marked


# --- buffers ---------------------------------------------------------------------------------


@cache
def _takes_out(fn) -> bool:
    if isinstance(fn, np.ufunc):
        return True
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# a gradient buffer starts at a multiple of this many bytes from the start of the one array
# holding them all (the vector instructions' alignment, when that array's start has it)
_ALIGN = 64


@dataclass
class GradientBuffers:
    """The buffers of the gradients of one plan: parts of one array.

    Attributes
    ----------
    flat : ndarray
        Every gradient's buffer, one after the other (zeros between them): one sum over it
        proves them all finite when it is.
    views : dict of str to ndarray
        Each parameter's gradient buffer (C-contiguous views into ``flat``), by name.
    """

    flat: np.ndarray
    views: dict[str, np.ndarray]


def _gradient_buffers(names: list[str], specs: list, shared) -> GradientBuffers | None:
    """The buffers of the gradients of ``names`` (``specs``: their shapes and dtypes):
    ``shared`` when it holds the same ones (the gradients of another batch shape of the same
    step), else one new array (zeros) holding them (aligned views); None when their dtypes
    differ."""
    if (
        shared is not None
        and list(shared.views) == names
        and all(
            v.shape == shape and v.dtype == dtype
            for v, (shape, dtype) in zip(shared.views.values(), specs, strict=True)
        )
    ):
        return shared
    dtypes = {dtype for _, dtype in specs}
    if len(dtypes) != 1:
        return None
    dtype = dtypes.pop()
    step = max(1, _ALIGN // dtype.itemsize)
    offsets, total = [], 0
    for shape, _ in specs:
        offsets.append(total)
        total += -(-prod(shape) // step) * step
    flat = np.zeros(total, dtype)
    views = {
        n: flat[offset : offset + prod(shape)].reshape(shape)
        for n, offset, (shape, _) in zip(names, offsets, specs, strict=True)
    }
    return GradientBuffers(flat, views)


def _buffer_layout(plan: Plan) -> tuple[list, list[str], list]:
    """Which calls write into buffers: ``(index, is a vjp, per output: (slot, shape, dtype,
    order) or None)``, the gradients among their outputs (names) and those gradients' shapes
    and dtypes."""
    calls = []
    for i, op in enumerate(plan.ops + plan.output_ops):
        fn = op_function(op)
        if not _takes_out(fn):
            continue
        # a vjp's gradients (a fused call's, after its value) take a tuple; a forward one array
        grads = op.kind in ("vjp", "fused")
        outs = []
        for k, s in enumerate(
            op.outs if op.kind == "vjp" else op.outs[1:] if grads else op.outs[:1]
        ):
            slot = None if s is None else plan.slots[s]
            ok = slot is not None and slot.dtype is not None and len(slot.shape) > 0
            order = "F" if k == 0 and TRANSPOSED in op.marks else "C"  # see transpose_dx
            outs.append((s, slot.shape, slot.dtype, order) if ok else None)
        if any(o is not None for o in outs):
            calls.append((i, grads, outs))
    written = {o[0] for _, _, outs in calls for o in outs if o is not None}
    names = [n for n, s in plan.grads.items() if s in written]
    specs = [(plan.slots[plan.grads[n]].shape, np.dtype(plan.slots[plan.grads[n]].dtype))
             for n in names]  # fmt: skip
    return calls, names, specs


def reuse_buffers(plan: Plan, shared: GradientBuffers | None = None) -> None:
    """The ``buffers`` rewrite (see the module doc): every call of a row with ``out=`` writes
    into a buffer of its own, made now and reused at every replay. The gradients' buffers are
    parts of one array (:attr:`Plan.grad_buffers`), so that one sum checks them all; given
    ``shared`` (another plan's, of the same gradients), those."""
    key = None
    if plan.origin is not None:  # which calls write where: once per traced plan and rewrites
        key = (plan.origin, tuple(plan.rewrites), len(plan.slots), len(plan.ops),
               len(plan.output_ops))  # fmt: skip
    layout = _BUFFER_LAYOUTS.get(key) if key is not None else None
    if layout is None:
        layout = _buffer_layout(plan)
        if key is not None:
            if len(_BUFFER_LAYOUTS) >= 64:
                _BUFFER_LAYOUTS.clear()
            _BUFFER_LAYOUTS[key] = layout
    calls, names, specs = layout
    plan.grad_buffers = _gradient_buffers(names, specs, shared) if names else None
    grads = {}
    if plan.grad_buffers is not None:
        grads = {plan.grads[n]: v for n, v in plan.grad_buffers.views.items()}
    ops = plan.ops + plan.output_ops
    for i, vjp, outs in calls:
        buffers = [_buffer(o, grads) for o in outs]
        op = ops[i]
        op.out_buffers = tuple(buffers) if vjp else buffers[0]
        op.marks.append("buffers")
    if calls:
        plan.rewrites.append(f"buffers ({len(calls)} calls write into reused buffers)")


def _buffer(out, grads: dict):
    """The buffer of one output ``(slot, shape, dtype, order)`` (None: none): its gradient's
    view when it is a parameter's gradient, else a new array."""
    if out is None:
        return None
    slot, shape, dtype, order = out
    return grads[slot] if slot in grads else np.empty(shape, dtype, order=order)


# the buffers rewrite's layouts, by traced plan and rewrites (see reuse_buffers)
_BUFFER_LAYOUTS: dict[tuple, tuple] = {}


# --- fold_gd ---------------------------------------------------------------------------------


def fold_updates(plan: Plan, optimizer, params: dict) -> list[str]:
    """The ``fold_gd`` rewrite (see the module doc); returns the folded parameters' names."""
    if not getattr(optimizer, "folds_products", False):
        return []
    made_by = {s: op for op in plan.ops for s in op.outs if s is not None}
    folded = []
    for name, g_slot in list(plan.grads.items()):
        op = made_by.get(g_slot)
        if op is None or op.kind != "vjp" or op.prim.name not in ("linear", "matmul"):
            continue
        factors = _weight_factors(plan, op, g_slot)
        if factors is None:
            continue
        n, p, q = plan.slots[factors[0]].shape[0], *params[name].data.shape
        if p * q <= FOLD_MIN_WEIGHT or n * (p + q) >= p * q:
            continue  # a small weight, or a gradient smaller than its factors: written out
        _drop_output(plan, op, 1)
        del plan.grads[name]
        plan.folded[name] = factors
        op.marks.append(f"fold_gd: {name}")
        folded.append(name)
    if folded:
        plan.rewrites.append(f"fold_gd ({', '.join(folded)})")
        plan.prune()
    return folded


def _weight_factors(plan: Plan, op, g_slot: int) -> tuple[int, int] | None:
    """``(a, g)`` when ``g_slot`` is the weight gradient ``a.T @ g`` of a 2-D product."""
    g, _, _, a, w = op.ins[:5]
    if op.outs[1] != g_slot:
        return None
    if len(plan.slots[a].shape) != 2 or len(plan.slots[w].shape) != 2:
        return None
    if plan.slots[w].kind != "param" or len(plan.slots[g].shape) != 2:
        return None
    return a, g


def _drop_output(plan: Plan, op, i: int) -> None:
    """Stop the vjp ``op`` computing its output ``i`` (its ``needs`` entry becomes False)."""
    needs_slot = op.ins[2]
    needs = list(plan.slots[needs_slot].value)
    needs[i] = False
    plan.slots.append(
        type(plan.slots[needs_slot])("const", None, (len(needs),), None, tuple(needs))
    )
    op.ins = (*op.ins[:2], len(plan.slots) - 1, *op.ins[3:])
    op.outs = tuple(None if j == i else s for j, s in enumerate(op.outs))


# --- shards ----------------------------------------------------------------------------------


@dataclass
class ShardSums:
    """The summed cost and summed gradients of some rows of a batch.

    Attributes
    ----------
    cost : float
        The sum of the rows' costs (the mean cost times ``rows``).
    grads : dict of str to ndarray
        Per parameter, the sum of the rows' gradients.
    rows : int
    """

    cost: float
    grads: dict[str, np.ndarray]
    rows: int


def shard_sums(step, xb: np.ndarray, yb: np.ndarray, shards: int) -> list[ShardSums]:
    """The summed cost and gradients of each of ``shards`` row blocks of a batch, in order.

    Each block runs the step's own plan (traced for the block's shape, seeded with ``dC/dC``
    = its rows: its gradients are then sums over its rows); its cost is the mean times its
    rows. :func:`combine` adds them up.

    Parameters
    ----------
    step : CompiledStep
    xb : ndarray of shape (n, ...)
    yb : ndarray of shape (n, ...)
    shards : int
        How many blocks (nearly equal, contiguous, in row order).

    Returns
    -------
    list of ShardSums

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([3, 1], seed=0, dtype=np.float64)
    >>> X, y = np.ones((6, 3)), np.zeros(6)
    >>> step = ds.compile.compile_step(model, ds.losses.mse, ds.optim.GD(0.1), X, y)
    >>> cost, grads = combine(shard_sums(step, X, y, 3))
    >>> bool(np.isclose(cost, ds.losses.mse(model(X), y).item()))
    True
    """
    out = []
    for start, stop in split_rows(len(xb), shards):
        part = _block_sums(step, xb[start:stop], yb[start:stop], worker=0)
        out.append(ShardSums(part.cost, {k: g.copy() for k, g in part.grads.items()}, part.rows))
    return out


def _block_sums(step, xb, yb, worker: int) -> ShardSums:
    # the sums as the block's buffers hold them (the worker's next block overwrites them)
    runner = step.block_runner(xb, yb, worker)
    cost, grads = runner.gradients(xb, yb)
    return ShardSums(cost * xb.shape[0], grads, xb.shape[0])


def seed_with_rows(runner: Runner, rows: int) -> None:
    """Seed a block's plan with ``dC/dC = rows``: the gradients of its mean cost come out
    multiplied by its rows, i.e. as sums over them (the vjps are linear in the seed)."""
    seed, env = runner.plan.seed, runner.executor.env
    if seed is not None:
        env[seed] = np.full_like(env[seed], rows)


def combine(parts: list[ShardSums]) -> tuple[float, dict[str, np.ndarray]]:
    """The mean cost and mean gradients of the rows of every part, added in the parts' order.

    Examples
    --------
    >>> a = ShardSums(2.0, {"w": np.array([2.0])}, 2)
    >>> b = ShardSums(4.0, {"w": np.array([1.0])}, 1)
    >>> combine([a, b])
    (2.0, {'w': array([1.])})
    """
    rows = sum(p.rows for p in parts)
    cost = sum(p.cost for p in parts) / rows
    grads = {}
    for name, g in parts[0].grads.items():
        total = g.copy()
        for p in parts[1:]:
            total += p.grads[name]
        total *= total.dtype.type(1 / rows)
        grads[name] = total
    return cost, grads


def shard_count(n: int, flops_per_row: float) -> int:
    """How many blocks a batch of ``n`` rows is cut into for the cores (0: not cut)."""
    if n < SHARD_MIN_ROWS or n * flops_per_row < SHARD_MIN_FLOPS:
        return 0
    workers = n_workers()
    if workers < 2:
        return 0
    blocks = max(workers, -(-n // SHARD_ROWS))
    return -(-blocks // workers) * workers  # each worker the same number of blocks


def parallel_shard_sums(step, xb: np.ndarray, yb: np.ndarray, blocks: int) -> list[ShardSums]:
    """The sums of ``blocks`` row blocks shared between the cores (block ``i`` on worker
    ``i % k``, in buffers of its own): one :class:`ShardSums` per worker, its blocks' sums
    added in their order as they come (no block's sums are kept apart)."""
    ranges = split_rows(len(xb), blocks)
    workers = min(n_workers(), len(ranges))
    totals: list = [None] * max(workers, 1)

    def block(worker: int, i: int) -> None:
        start, stop = ranges[i]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            part = _block_sums(step, xb[start:stop], yb[start:stop], worker)
            total = totals[worker]
            if total is None:
                grads = {k: g.copy() for k, g in part.grads.items()}
                totals[worker] = ShardSums(part.cost, grads, part.rows)
                return
            total.cost += part.cost
            total.rows += part.rows
            for k, g in part.grads.items():
                total.grads[k] += g

    map_pieces(block, len(ranges), workers=workers)
    return [t for t in totals if t is not None]
