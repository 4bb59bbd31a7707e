"""The compiled step is derived from the eager graph: the same calls of the table, the same numbers.

Each model here is trained side by side, eagerly (zero_grad, forward, cost, backward,
optimizer.step) and by ``compile_step`` replaying its plan; costs, gradients and weights must
agree (float64 within 1e-12, float32 within 1e-5; with no rewrite that reorders a sum, bit for
bit).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import descend as ds
from descend.autodiff import PRIMITIVES, apply, register_primitive
from descend.compile import NotCompilable, compile_step, rewrites

TOL = {np.float64: 1e-12, np.float32: 1e-5}


class Residual(ds.nn.Module):
    """x -> x + W2 relu(W1 x + b1) + b2, then a softmax head: a residual block."""

    def __init__(self, width: int, classes: int, dtype, seed: int = 0) -> None:
        super().__init__()
        self.inner = ds.nn.Dense(width, width, activation="relu", seed=seed, dtype=dtype)
        self.back = ds.nn.Dense(width, width, seed=seed + 1, dtype=dtype)
        self.head = ds.nn.Dense(width, classes, activation="softmax", seed=seed + 2, dtype=dtype)

    def forward(self, x):
        return self.head(self.back(self.inner(x)) + x)


def _softplus_vjp(g, ans, needs, x):
    return (g * PRIMITIVES["sigmoid"].forward(x),)


SOFTPLUS = PRIMITIVES.get("softplus_test") or register_primitive(
    "softplus_test", lambda x: np.logaddexp(0, x), _softplus_vjp
)


class SoftplusNet(ds.nn.Module):
    """A hidden layer with a user-registered activation (its own forward and vjp)."""

    def __init__(self, n_in: int, dtype) -> None:
        super().__init__()
        self.hidden = ds.nn.Dense(n_in, 6, seed=3, dtype=dtype)
        self.out = ds.nn.Dense(6, 1, seed=4, dtype=dtype)

    def forward(self, x):
        return self.out(apply(SOFTPLUS, self.hidden(x)))


class Shared(ds.nn.Module):
    """One Dense layer applied twice (its weights used twice: their gradients add up)."""

    def __init__(self, width: int, dtype) -> None:
        super().__init__()
        self.twice = ds.nn.Dense(width, width, activation="tanh", seed=5, dtype=dtype)
        self.out = ds.nn.Dense(width, 1, seed=6, dtype=dtype)

    def forward(self, x):
        return self.out(self.twice(self.twice(x)))


def huber_like(pred, target):
    """A user's own cost: mean of sqrt(1 + (pred - target)^2) - 1."""
    t = np.asarray(target, dtype=pred.dtype).reshape(pred.shape)
    d = pred - t
    return ((d * d + 1.0).sqrt() - 1.0).mean()


def _data(n, n_in, dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if kind == "classes":
        return X, rng.integers(0, 3, n)
    if kind == "binary":
        return X, rng.integers(0, 2, n)
    return X, rng.normal(size=n).astype(dtype)


CASES = {
    "mlp_softmax": (lambda d: ds.nn.mlp([5, 7, 3], output_activation="softmax", seed=0, dtype=d),
                    "categorical_cross_entropy", "classes"),
    "mlp_sigmoid": (lambda d: ds.nn.mlp([5, 7, 1], output_activation="sigmoid", seed=0, dtype=d),
                    "binary_cross_entropy", "binary"),
    "mlp_mse_tanh": (lambda d: ds.nn.mlp([5, 4, 4, 1], activation="tanh", seed=0, dtype=d),
                     "mse", "values"),
    "residual": (lambda d: Residual(5, 3, d), "categorical_cross_entropy", "classes"),
    "user_activation": (lambda d: SoftplusNet(5, d), "mse", "values"),
    "shared_weights": (lambda d: Shared(5, d), "mse", "values"),
    "custom_cost": (lambda d: ds.nn.mlp([5, 6, 1], seed=0, dtype=d), huber_like, "values"),
}  # fmt: skip


def _eager_step(model, loss_fn, optimizer, X, y):
    model.zero_grad()
    cost = loss_fn(model(X), y)
    cost.backward()
    grads = {k: p.grad.copy() for k, p in model.named_parameters().items()}
    optimizer.step(model.parameters())
    return float(cost.data), grads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_step_equals_the_eager_step_and_trains_to_the_same_weights(case, dtype):
    build, loss, kind = CASES[case]
    loss_fn = ds.losses.get(loss)
    eager, compiled = build(dtype), build(dtype)
    X, y = _data(12, 5, dtype, kind)
    opt_e, opt_c = ds.optim.Adam(0.01), ds.optim.Adam(0.01)
    step = compile_step(compiled, loss_fn, opt_c, X, y)
    tol = TOL[dtype]
    for i in range(4):
        xb, yb = X[i % 2 * 6 : i % 2 * 6 + 6], y[i % 2 * 6 : i % 2 * 6 + 6]
        cost_e, grads_e = _eager_step(eager, loss_fn, opt_e, xb, yb)
        cost_c = step.run(xb, yb)
        assert cost_c == pytest.approx(cost_e, rel=tol, abs=tol)
        for name, p in compiled.named_parameters().items():
            np.testing.assert_allclose(p.grad, grads_e[name], rtol=tol, atol=tol, err_msg=name)
    for (name, a), b in zip(compiled.named_parameters().items(), eager.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_operation_of_the_plan_is_a_row_of_the_table(case):
    build, loss, kind = CASES[case]
    X, y = _data(6, 5, np.float64, kind)
    step = compile_step(build(np.float64), ds.losses.get(loss), ds.optim.GD(0.1), X, y)
    traced = step.plan
    step.run(X, y)  # and as rewritten
    for plan in (traced, step.plan):
        assert plan.ops
        for op in plan.ops + plan.output_ops:
            assert PRIMITIVES[op.prim.name] is op.prim
            assert op.kind in ("forward", "vjp", "accumulate", "fused")
            if op.kind == "accumulate":
                assert op.prim is PRIMITIVES["add"]
            if op.kind == "fused":  # the row's own fused form of its forward and vjp
                assert op.prim.fused is not None and "fuse_cost" in op.marks


def test_shared_weights_get_the_sum_of_both_uses():
    X, y = _data(6, 5, np.float64, "values")
    step = compile_step(Shared(5, np.float64), ds.losses.mse, ds.optim.GD(0.1), X, y)
    assert any(op.kind == "accumulate" for op in step.plan.ops)


def test_a_plan_is_traced_again_for_a_new_batch_shape_and_the_model_is_untouched_by_tracing():
    model = ds.nn.mlp([5, 4, 1], seed=0, dtype=np.float64)
    before = copy.deepcopy(model.state_dict())
    X, y = _data(10, 5, np.float64, "values")
    step = compile_step(model, ds.losses.mse, ds.optim.GD(0.1), X[:4], y[:4])
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
    step.run(X[:4], y[:4])
    step.run(X[4:], y[4:])  # 6 rows: another plan
    assert step.plan.slots[0].shape == (6, 5)


class NumpyInside(ds.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = ds.nn.Dense(3, 1, seed=0, dtype=np.float64)

    def forward(self, x):
        # computed outside the table: the trace cannot replay it for another batch
        return self.layer(ds.Tensor(np.tanh(np.asarray(x))))


def test_a_model_that_computes_outside_the_table_is_not_compilable_and_says_why():
    X, y = _data(8, 3, np.float64, "values")
    with pytest.raises(NotCompilable, match="outside the table"):
        compile_step(NumpyInside(), ds.losses.mse, ds.optim.GD(0.1), X, y)


def test_an_unregistered_primitive_is_not_compilable():
    from descend.autodiff.primitives import Primitive

    rogue = Primitive("rogue", lambda x: x * 2, lambda g, ans, needs, x: (2 * g,))

    class Rogue(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = ds.nn.Dense(3, 1, seed=0, dtype=np.float64)

        def forward(self, x):
            return apply(rogue, self.layer(x))

    X, y = _data(8, 3, np.float64, "values")
    with pytest.raises(NotCompilable, match="register_primitive"):
        compile_step(Rogue(), ds.losses.mse, ds.optim.GD(0.1), X, y)


def test_register_primitive_refuses_a_name_in_the_table():
    with pytest.raises(ValueError, match="already in the table"):
        register_primitive("relu", np.abs, lambda g, ans, needs, x: (g,))


def test_print_plan_lists_forward_then_backward_lines():
    model = ds.nn.mlp([5, 7, 3], output_activation="softmax", seed=0)
    X, y = _data(6, 5, np.float32, "classes")
    text = str(
        compile_step(model, ds.losses.categorical_cross_entropy, ds.optim.GD(0.1), X, y).plan
    )
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["forward:", "z1 = x @ W1 + b1", "a1 = relu(z1)"]
    assert "dC/dW1 = x.T @ dC/dz1" in text
    assert lines.index("backward:") > lines.index("a1 = relu(z1)")


# --- the rewrites, each against the eager step ---------------------------------------------------


@pytest.mark.parametrize("rewrite", [(), ("buffers",), ("fuse_cost",), ("fuse_cost", "buffers")])
@pytest.mark.parametrize("case", ["mlp_softmax", "mlp_sigmoid", "mlp_mse_tanh", "residual"])
def test_no_rewrite_buffer_reuse_and_fused_cost_give_the_eager_numbers_bit_for_bit(case, rewrite):
    build, loss, kind = CASES[case]
    loss_fn = ds.losses.get(loss)
    eager, compiled = build(np.float32), build(np.float32)
    X, y = _data(12, 5, np.float32, kind)
    opt_e, opt_c = ds.optim.Momentum(0.05), ds.optim.Momentum(0.05)
    step = compile_step(compiled, loss_fn, opt_c, X, y, rewrite=rewrite)
    for _ in range(3):
        cost_e, grads_e = _eager_step(eager, loss_fn, opt_e, X, y)
        assert step.run(X, y) == cost_e
        for name, p in compiled.named_parameters().items():
            np.testing.assert_array_equal(p.grad, grads_e[name])
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    marked = [op for op in step.plan.ops if "buffers" in op.marks]
    assert bool(marked) == ("buffers" in rewrite)
    fused = [op for op in step.plan.ops if op.kind == "fused"]
    assert bool(fused) == ("fuse_cost" in rewrite and loss == "categorical_cross_entropy")
    if "buffers" in rewrite:  # the same arrays at every update: nothing allocated for them
        grads_before = [p.grad for p in compiled.parameters()]
        step.run(X, y)
        assert all(p.grad is g for p, g in zip(compiled.parameters(), grads_before, strict=True))


def _wide(dtype):
    # a first weight of 36,000 entries, larger than its factors at 8 rows
    return ds.nn.mlp([200, 180, 3], output_activation="softmax", seed=0, dtype=dtype)


@pytest.fixture
def fold_small(monkeypatch):
    """fold_gd for weights of more than 1,000 entries (the first of _wide)."""
    monkeypatch.setattr(rewrites, "FOLD_MIN_WEIGHT", 1000)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gd_folded_into_the_weight_product_trains_to_the_eager_weights(dtype, fold_small):
    X, y = _data(8, 200, dtype, "classes")
    loss_fn = ds.losses.categorical_cross_entropy
    eager, compiled = _wide(dtype), _wide(dtype)
    opt_e, opt_c = ds.optim.GD(0.1), ds.optim.GD(0.1)
    step = compile_step(compiled, loss_fn, opt_c, X, y, rewrite=("buffers", "fold_gd"))
    step.reads_grads = False
    for _ in range(5):
        cost_e, grads_e = _eager_step(eager, loss_fn, opt_e, X, y)
        assert step.run(X, y) == pytest.approx(cost_e, rel=TOL[dtype])
    assert "0.weight" in step.plan.folded and "1.weight" not in step.plan.folded
    assert "fold_gd" in str(step.plan)
    assert compiled.layers[0].weight.grad is None  # not written out during training
    step.finish()
    tol = TOL[dtype]
    for name, p in compiled.named_parameters().items():
        np.testing.assert_allclose(p.grad, grads_e[name], rtol=tol, atol=tol, err_msg=name)
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=tol, atol=tol)
    assert opt_c.iterations == opt_e.iterations == 5  # the rule counted every update


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_folded_gradient_is_checked_finite_without_being_formed(dtype, fold_small):
    # The folded update's gradient a.T @ b is never written out: whether it is finite is
    # decided from the factors (a bound), or by forming it when the bound cannot tell.
    X, y = _data(8, 200, dtype, "classes")
    step = compile_step(_wide(dtype), ds.losses.categorical_cross_entropy, ds.optim.GD(0.1), X,
                        y, rewrite=("buffers", "fold_gd"))  # fmt: skip
    step.reads_grads = False
    step.run(X, y)
    runner = step._last
    a_slot, b_slot = step.plan.folded["0.weight"]
    env = runner.executor.env
    a, b = env[a_slot].copy(), env[b_slot].copy()
    assert runner.folded_finite()
    big = np.sqrt(np.finfo(dtype).max)  # finite factors whose product overflows
    cases = [
        (np.full_like(a, big), np.full_like(b, big), False),
        (np.full_like(a, big), np.zeros_like(b), True),  # the bound fails, the product not
        (a, np.where(np.arange(b.size).reshape(b.shape) == 3, np.nan, b), False),
        (np.where(np.arange(a.size).reshape(a.shape) == 5, np.inf, a), b, False),
    ]
    for a_case, b_case, expected in cases:
        env[a_slot], env[b_slot] = a_case, b_case
        with np.errstate(all="ignore"):
            got = runner.folded_finite()
            truth = bool(np.isfinite(a_case.T @ b_case).all())
        assert got == truth == expected


def test_gd_is_folded_only_into_weights_large_enough_to_gain():
    # (measured in rewrites: below about 65,536 entries the product and axpy cost less)
    X, y = _data(8, 300, np.float32, "classes")
    loss_fn = ds.losses.categorical_cross_entropy
    for width, folded in ((240, {"0.weight"}), (200, set())):  # 72,000 and 60,000 entries
        model = ds.nn.mlp([300, width, 3], output_activation="softmax", seed=0)
        step = compile_step(model, loss_fn, ds.optim.GD(0.1), X, y)
        step.reads_grads = False
        step.run(X, y)
        assert (300 * width > rewrites.FOLD_MIN_WEIGHT) == bool(folded)
        assert set(step.plan.folded) == folded


def test_gd_is_not_folded_while_something_reads_grad_nor_for_other_rules(fold_small):
    X, y = _data(8, 200, np.float32, "classes")
    loss_fn = ds.losses.categorical_cross_entropy
    step = compile_step(_wide(np.float32), loss_fn, ds.optim.GD(0.1), X, y)
    step.run(X, y)  # reads_grads stays True
    assert not step.plan.folded
    step = compile_step(_wide(np.float32), loss_fn, ds.optim.Adam(0.1), X, y)
    step.reads_grads = False
    step.run(X, y)
    assert not step.plan.folded


def test_gd_step_from_product_is_the_rule_and_other_rules_refuse_products():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    w1 = ds.Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    w2 = ds.Tensor(w1.data.copy(), requires_grad=True)
    w2.grad = a.T @ b
    ds.optim.GD(0.1).step([w1], products={0: (a, b)})
    ds.optim.GD(0.1).step([w2])
    np.testing.assert_allclose(w1.data, w2.data, rtol=1e-14)
    with pytest.raises(TypeError, match="cannot take its step from a product"):
        ds.optim.Adam(0.1).step([w1], products={0: (a, b)})


@pytest.fixture
def small_shards(monkeypatch):
    from descend.compile import rewrites

    monkeypatch.setattr(rewrites, "SHARD_MIN_ROWS", 64)
    monkeypatch.setattr(rewrites, "SHARD_MIN_FLOPS", 0)
    monkeypatch.setattr(rewrites, "SHARD_ROWS", 32)
    monkeypatch.setenv("DESCEND_THREADS", "2")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sum_of_per_shard_gradients_equals_the_eager_step(small_shards, dtype):
    X, y = _data(100, 5, dtype, "classes")
    build, loss, _ = CASES["residual"]
    loss_fn = ds.losses.get(loss)
    eager, compiled = build(dtype), build(dtype)
    opt_e, opt_c = ds.optim.Adam(0.01), ds.optim.Adam(0.01)
    step = compile_step(compiled, loss_fn, opt_c, X, y)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for _ in range(3):
        cost_e, grads_e = _eager_step(eager, loss_fn, opt_e, X, y)
        assert step.run(X, y) == pytest.approx(cost_e, rel=tol)
        for name, p in compiled.named_parameters().items():
            np.testing.assert_allclose(p.grad, grads_e[name], rtol=tol, atol=tol, err_msg=name)
    assert any("shards (4 row blocks" in r for r in step.plan.rewrites)
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=tol, atol=tol)


def test_shard_sums_entry_point_adds_up_to_the_whole_batch():
    from descend.compile import combine, shard_sums

    X, y = _data(30, 5, np.float64, "values")
    model = ds.nn.mlp([5, 4, 1], seed=0, dtype=np.float64)
    step = compile_step(model, ds.losses.mse, ds.optim.GD(0.1), X, y)
    parts = shard_sums(step, X, y, 4)
    assert [p.rows for p in parts] == [8, 8, 7, 7]
    cost, grads = combine(parts)
    model.zero_grad()
    whole = ds.losses.mse(model(X), y)
    whole.backward()
    assert cost == pytest.approx(float(whole.data), rel=1e-12)
    for name, p in model.named_parameters().items():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-12, atol=1e-14)


def test_a_cost_that_is_not_a_mean_over_rows_is_never_sharded(small_shards):
    X, y = _data(100, 5, np.float64, "values")
    step = compile_step(ds.nn.mlp([5, 6, 1], seed=0, dtype=np.float64), huber_like,
                        ds.optim.GD(0.1), X, y)  # fmt: skip
    step.run(X, y)
    assert not any("shards" in r for r in step.plan.rewrites)


# --- a freed step's runners serve the next model of the same structure ---------------------------


@pytest.fixture
def count_rewritten(monkeypatch):
    """How many plans were rewritten into new runners (not taken from a freed step)."""
    from descend.compile import step as step_module

    calls = [0]
    original = rewrites.apply

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(step_module.rewrites, "apply", counting)
    monkeypatch.setattr(step_module, "_IDLE", {})
    return calls


def _fit_small(seed, **kwargs):
    X, y = _data(50, 6, np.float64, "binary")  # batches of 16 rows and a last one of 2
    model = ds.nn.mlp([6, 5, 1], output_activation="sigmoid", seed=seed, dtype=np.float64)
    ds.fit(model, X, y, loss="binary_cross_entropy", optimizer=ds.optim.GD(0.1), batch_size=16,
           epochs=2, seed=0, progress=False, **kwargs)  # fmt: skip
    return model


def test_the_next_model_of_the_same_structure_reuses_the_freed_runners(count_rewritten,
                                                                      monkeypatch):  # fmt: skip
    first = _fit_small(0)
    assert count_rewritten[0] == 2  # the batches of 16 rows and the last one of 2
    second = _fit_small(1)
    assert count_rewritten[0] == 2  # the second fit rewrote nothing: it took the first's
    from descend.compile import step as step_module

    monkeypatch.setattr(step_module, "IDLE_MAX_BYTES", -1)  # nothing kept: made afresh
    step_module._IDLE.clear()
    fresh = _fit_small(1)
    assert count_rewritten[0] == 4
    for a, b in zip(second.parameters(), fresh.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)  # the same numbers, bit for bit
        np.testing.assert_array_equal(a.grad, b.grad)
    # the first model keeps its own last gradients, not the buffers the second one wrote into
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert a.grad is not None and not np.shares_memory(a.grad, b.grad)
    kept = [p.grad.copy() for p in first.parameters()]
    _fit_small(2)
    for p, g in zip(first.parameters(), kept, strict=True):
        np.testing.assert_array_equal(p.grad, g)


def test_runners_are_not_shared_between_live_steps_nor_taken_with_other_rewrites(
    count_rewritten,
):
    X, y = _data(16, 6, np.float64, "binary")
    models = [ds.nn.mlp([6, 5, 1], output_activation="sigmoid", seed=s, dtype=np.float64)
              for s in range(3)]  # fmt: skip
    loss_fn = ds.losses.binary_cross_entropy
    a = compile_step(models[0], loss_fn, ds.optim.GD(0.1), X, y)
    a.run(X, y)
    b = compile_step(models[1], loss_fn, ds.optim.GD(0.1), X, y)
    b.run(X, y)
    assert count_rewritten[0] == 2  # a is alive: b made its own
    del a
    c = compile_step(models[2], loss_fn, ds.optim.GD(0.1), X, y, rewrite=("buffers",))
    c.run(X, y)
    assert count_rewritten[0] == 3  # other rewrites: not a's runners
    assert b.plan is not c.plan


def test_runners_waiting_for_the_next_model_hold_neither_the_last_model_nor_its_data(
    count_rewritten,
):
    import gc
    import weakref

    from descend.compile import step as step_module

    model = _fit_small(0)
    assert step_module._IDLE  # its runners wait for the next model
    freed = weakref.ref(model.parameters()[0])
    del model
    gc.collect()
    assert freed() is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("targets", ["labels", "onehot"])
def test_a_fused_cost_is_its_forward_and_its_vjp_bit_for_bit(dtype, targets):
    prim = PRIMITIVES["softmax_cross_entropy"]
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(9, 4)) * 30).astype(dtype)  # large logits: the shift matters
    labels = rng.integers(0, 4, 9)
    target = labels if targets == "labels" else np.eye(4, dtype=dtype)[labels]
    g = np.asarray(0.5, dtype)
    cost, (grad,) = prim.fused(z, target=target, g=g)
    assert cost == prim.forward(z, target=target)
    np.testing.assert_array_equal(grad, prim.vjp(g, cost, (True,), z, target=target)[0])
    out = np.empty_like(z)
    assert prim.fused(z, target=target, g=g, out=(out,))[1][0] is out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_transposed_dx_writes_dx_column_major_and_gives_the_eager_numbers(case, dtype, monkeypatch):
    # taken here for every linear layer's dC/dx, whatever the backend would choose
    monkeypatch.setattr(rewrites, "transposed_product_faster", lambda *shape: True)
    build, loss, kind = CASES[case]
    loss_fn = ds.losses.get(loss) if isinstance(loss, str) else loss
    eager, compiled = build(dtype), build(dtype)
    X, y = _data(12, 5, dtype, kind)
    opt_e, opt_c = ds.optim.Momentum(0.05), ds.optim.Momentum(0.05)
    step = compile_step(compiled, loss_fn, opt_c, X, y, rewrite=("transposed_dx", "buffers"))
    tol = TOL[dtype]
    for _ in range(3):
        cost_e, grads_e = _eager_step(eager, loss_fn, opt_e, X, y)
        assert step.run(X, y) == pytest.approx(cost_e, rel=tol)
        for name, p in compiled.named_parameters().items():
            np.testing.assert_allclose(p.grad, grads_e[name], rtol=tol, atol=tol, err_msg=name)
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=tol, atol=tol)
    marked = [op for op in step.plan.ops if rewrites.TRANSPOSED in op.marks]
    takes_dx = [op for op in step.plan.ops if op.kind == "vjp" and op.prim.name == "linear"
                and op.outs[0] is not None]  # fmt: skip
    assert marked == takes_dx and marked  # every hidden layer's dC/dx, in these models
    for op in marked:
        dx = op.out_buffers[0]
        assert dx.flags.f_contiguous and not dx.flags.c_contiguous
        assert step._last.executor.env[op.outs[0]] is dx
    assert "transposed_dx" in str(step.plan)
    plain = compile_step(build(dtype), loss_fn, ds.optim.Momentum(0.05), X, y, rewrite=("buffers",))
    plain.run(X, y)
    assert "buffers" in str(plain.plan)
    assert not any(rewrites.TRANSPOSED in op.marks for op in plain.plan.ops)


def test_transposed_dx_is_chosen_by_the_backend_for_thin_float32_batches():
    from descend.compile.backend import blas_available, transposed_product_faster

    X, y = _data(32, 128, np.float32, "classes")
    step = compile_step(Residual(128, 3, np.float32), ds.losses.categorical_cross_entropy,
                        ds.optim.GD(0.1), X, y)  # fmt: skip
    step.run(X, y)
    marked = [op for op in step.plan.ops if rewrites.TRANSPOSED in op.marks]
    assert bool(marked) == blas_available()  # the inner layer's dC/dx: 32 x 128 x 128
    assert not transposed_product_faster(32, 128, 128, np.float64)
    assert not transposed_product_faster(2048, 128, 128, np.float32)
    assert not transposed_product_faster(32, 10, 128, np.float32)


@pytest.mark.parametrize("order", ["C", "F"])
def test_the_linear_vjp_writes_dx_into_either_layout_with_the_same_numbers(order):
    rng = np.random.default_rng(0)
    g, x = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    w, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    out = (np.empty((6, 3), order=order), np.empty((3, 4)), np.empty(4))
    dx, dw, db = PRIMITIVES["linear"].vjp(g, None, (True, True, True), x, w, b, out=out)
    assert dx is out[0] and dw is out[1] and db is out[2]
    np.testing.assert_allclose(dx, g @ w.T, rtol=1e-12)
    np.testing.assert_allclose(dw, x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(db, g.sum(axis=0), rtol=1e-12)
