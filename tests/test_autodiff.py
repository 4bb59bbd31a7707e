"""descend.autodiff: every primitive against central differences, forward values against NumPy,
operators, gradient accumulation, no_grad, deep graphs, grad/gradcheck, stability, PyTorch."""

import threading
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import descend as ds
from descend.autodiff import PRIMITIVES, Primitive, apply, ops, toposort, unbroadcast
from descend.autodiff.primitives import BUILTIN

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
NONEMPTY_AXES_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)


# --------------------------------------------------------------------------- helpers


def numeric_grad(f, *arrays, eps=1e-6):
    """Central differences (f(x + eps e_j) - f(x - eps e_j)) / 2 eps of a NumPy function f."""
    xs = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for x in xs:
        g = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            original = x[j]
            x[j] = original + eps
            plus = f(*xs)
            x[j] = original - eps
            minus = f(*xs)
            x[j] = original
            g[j] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def check_op(ds_fn, np_fn, *arrays, wrt=None, rtol=1e-6, atol=1e-8, seed=0):
    """Forward equals NumPy; backward with a random cotangent equals central differences.

    ``ds_fn`` takes tensors, ``np_fn`` the same arrays; ``wrt`` lists which arguments are
    differentiated (all by default; the others are passed as plain arrays). A random
    cotangent R (not all ones) is used so that a transposed or misplaced vjp cannot pass.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    wrt = tuple(range(len(arrays))) if wrt is None else tuple(wrt)
    expected = np.asarray(np_fn(*arrays))
    tensors = [ds.Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(arrays)]
    out = ds_fn(*tensors)
    assert isinstance(out, ds.Tensor)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-13, atol=1e-14)

    R = np.random.default_rng(seed).uniform(0.5, 1.5, expected.shape)
    R *= np.where(np.random.default_rng(seed + 1).random(expected.shape) < 0.5, -1.0, 1.0)
    out.backward(grad=R)

    def cost(*xs):
        full = list(arrays)
        for i, x in zip(wrt, xs, strict=True):
            full[i] = x
        return float(np.sum(R * np_fn(*full)))

    numeric = numeric_grad(cost, *[arrays[i] for i in wrt])
    for i, num in zip(wrt, numeric, strict=True):
        analytic = tensors[i].grad
        assert analytic is not None and analytic.shape == arrays[i].shape
        np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol)

    # descend's own gradcheck agrees on the same point.
    def scalar(*ts):
        full = list(arrays)
        for i, t in zip(wrt, ts, strict=True):
            full[i] = t
        return (ds_fn(*full) * R).sum()

    result = ds.gradcheck(scalar, *[arrays[i] for i in wrt], rtol=rtol, atol=atol)
    assert result.ok, result
    return out


def signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def away_from_zero(rng, shape, low=0.2, high=2.0):
    return rng.uniform(low, high, shape) * signs(rng, shape)


def distinct(rng, shape):
    """Values at least 0.3 apart: no ties, and central differences never swap the order."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.3 - 0.15 * size + rng.uniform(0, 0.05)).reshape(shape)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


# --------------------------------------------------------------------------- every primitive
# One case per row of PRIMITIVES: (descend function, NumPy reference, arrays). The table is
# iterated below, so a new primitive without a case here fails the suite.

_R = np.random.default_rng(1234)
_LABELS = np.array([2, 0, 1, 2])
_ONEHOT = np.eye(3)[_LABELS]
_BINARY = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
_COND = np.array([[True, False, True], [False, False, True]])

CASES = {
    "add": lambda: (lambda a, b: a + b, np.add, _R.normal(size=(2, 3)), _R.normal(size=(3,))),
    "subtract": lambda: (
        lambda a, b: a - b, np.subtract, _R.normal(size=(2, 1)), _R.normal(size=(1, 3)),
    ),
    "multiply": lambda: (
        lambda a, b: a * b, np.multiply, _R.normal(size=(2, 3)), _R.normal(size=(2, 1)),
    ),
    "divide": lambda: (
        lambda a, b: a / b, np.divide, _R.normal(size=(2, 3)), away_from_zero(_R, (3,)),
    ),
    "power": lambda: (
        lambda a, b: a**b, np.power, _R.uniform(0.5, 2, (2, 3)), _R.uniform(-2, 2, (2, 1)),
    ),
    "negative": lambda: (lambda a: -a, np.negative, _R.normal(size=(2, 3))),
    "matmul": lambda: (
        lambda a, b: a @ b, np.matmul, _R.normal(size=(2, 3, 4)), _R.normal(size=(4, 2)),
    ),
    "linear": lambda: (
        ops.linear, lambda x, w, b: x @ w + b,
        _R.normal(size=(4, 3)), _R.normal(size=(3, 2)), _R.normal(size=(2,)),
    ),
    "sum": lambda: (
        lambda a: a.sum(axis=(0, 2), keepdims=True),
        lambda a: np.sum(a, axis=(0, 2), keepdims=True), _R.normal(size=(2, 3, 2)),
    ),
    "mean": lambda: (lambda a: ops.mean(a, axis=1), lambda a: a.mean(axis=1),
                     _R.normal(size=(2, 3, 2))),
    "max": lambda: (lambda a: a.max(axis=-1), lambda a: a.max(axis=-1), distinct(_R, (3, 4))),
    "reshape": lambda: (lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1),
                        _R.normal(size=(2, 3, 2))),
    "transpose": lambda: (lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1),
                          _R.normal(size=(2, 3, 4))),
    "getitem": lambda: (lambda a: a[[0, 2, 2], 1:], lambda a: a[[0, 2, 2], 1:],
                        _R.normal(size=(3, 4))),
    "concatenate": lambda: (
        lambda a, b: ops.concatenate([a, b], axis=1),
        lambda a, b: np.concatenate([a, b], axis=1),
        _R.normal(size=(2, 3)), _R.normal(size=(2, 1)),
    ),
    "where": lambda: (
        lambda a, b: ops.where(_COND, a, b), lambda a, b: np.where(_COND, a, b),
        _R.normal(size=(2, 3)), _R.normal(size=(3,)),
    ),
    "exp": lambda: (ops.exp, np.exp, _R.normal(size=(2, 3))),
    "log": lambda: (ops.log, np.log, _R.uniform(0.2, 3, (2, 3))),
    "sqrt": lambda: (ops.sqrt, np.sqrt, _R.uniform(0.2, 3, (2, 3))),
    "abs": lambda: (ops.abs, np.abs, away_from_zero(_R, (2, 3))),
    "clip": lambda: (
        lambda a: ops.clip(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5),
        np.array([[-1.0, -0.3, 0.2], [0.4, 0.9, -0.7]]),
    ),
    "relu": lambda: (ops.relu, lambda a: np.maximum(a, 0), away_from_zero(_R, (2, 3))),
    "leaky_relu": lambda: (
        lambda a: ops.leaky_relu(a, 0.2), lambda a: np.where(a > 0, a, 0.2 * a),
        away_from_zero(_R, (2, 3)),
    ),
    "sigmoid": lambda: (ops.sigmoid, np_sigmoid, _R.normal(size=(2, 3)) * 3),
    "tanh": lambda: (ops.tanh, np.tanh, _R.normal(size=(2, 3))),
    "softmax": lambda: (lambda a: ops.softmax(a, axis=0), lambda a: np_softmax(a, axis=0),
                        _R.normal(size=(3, 2))),
    "log_softmax": lambda: (ops.log_softmax, np_log_softmax, _R.normal(size=(2, 4))),
    "softmax_cross_entropy": lambda: (
        lambda z: apply(PRIMITIVES["softmax_cross_entropy"], z, target=_LABELS),
        lambda z: -np.mean(np_log_softmax(z)[np.arange(4), _LABELS]),
        _R.normal(size=(4, 3)) * 2,
    ),
    "sigmoid_binary_cross_entropy": lambda: (
        lambda z: apply(PRIMITIVES["sigmoid_binary_cross_entropy"], z, target=_BINARY),
        lambda z: np.mean(-_BINARY * np.log(np_sigmoid(z))
                          - (1 - _BINARY) * np.log(1 - np_sigmoid(z))),
        _R.normal(size=(3, 2)) * 2,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_primitive_against_central_differences(name):
    assert name in CASES, f"primitive {name!r} has no gradient check in CASES"
    ds_fn, np_fn, *arrays = CASES[name]()
    out = check_op(ds_fn, np_fn, *arrays)
    # The case really exercises this primitive.
    assert name in {t.op for t in toposort(out)}


def test_cases_cover_exactly_the_table():
    assert set(CASES) == set(BUILTIN)
    for name, prim in PRIMITIVES.items():
        assert isinstance(prim, Primitive) and prim.name == name


def test_fused_cross_entropy_with_one_hot_target():
    z = _R.normal(size=(4, 3))
    check_op(
        lambda t: apply(PRIMITIVES["softmax_cross_entropy"], t, target=_ONEHOT),
        lambda t: -np.sum(_ONEHOT * np_log_softmax(t)) / 4,
        z,
    )


# --------------------------------------------------------------------------- property based

ARITHMETIC = {
    "add": (lambda a, b: a + b, np.add, lambda rng, s: rng.normal(size=s)),
    "subtract": (lambda a, b: a - b, np.subtract, lambda rng, s: rng.normal(size=s)),
    "multiply": (lambda a, b: a * b, np.multiply, lambda rng, s: rng.normal(size=s)),
    "divide": (lambda a, b: a / b, np.divide, away_from_zero),
    "power": (lambda a, b: a**b, np.power, lambda rng, s: rng.uniform(-2, 2, s)),
}


@SETTINGS
@given(
    name=st.sampled_from(sorted(ARITHMETIC)),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=SEEDS,
    wrt=st.sampled_from([(0, 1), (0,), (1,)]),
)
def test_arithmetic_with_broadcasting(name, shapes, seed, wrt):
    ds_fn, np_fn, right = ARITHMETIC[name]
    rng = np.random.default_rng(seed)
    s1, s2 = shapes.input_shapes
    # power needs a positive base; the others take any left operand.
    a = rng.uniform(0.5, 2, s1) if name == "power" else rng.normal(size=s1)
    b = right(rng, s2)
    check_op(ds_fn, np_fn, a, b, wrt=wrt, seed=seed % 1000)


@SETTINGS
@given(shape=SHAPES, seed=SEEDS, scalar=st.sampled_from([2.0, -0.5, 3]))
def test_scalars_on_either_side(shape, seed, scalar):
    x = np.random.default_rng(seed).uniform(0.5, 2, shape)
    pairs = [
        (lambda t: scalar + t, lambda a: scalar + a),
        (lambda t: t - scalar, lambda a: a - scalar),
        (lambda t: scalar - t, lambda a: scalar - a),
        (lambda t: scalar * t, lambda a: scalar * a),
        (lambda t: scalar / t, lambda a: scalar / a),
        (lambda t: t**scalar, lambda a: a**scalar),
        (lambda t: abs(scalar) ** t, lambda a: abs(scalar) ** a),
    ]
    for ds_fn, np_fn in pairs:
        check_op(ds_fn, np_fn, x)


REDUCTIONS = {
    "sum": (ops.sum, np.sum),
    "mean": (ops.mean, np.mean),
    "max": (ops.max, np.max),
}


@SETTINGS
@given(name=st.sampled_from(sorted(REDUCTIONS)), shape=NONEMPTY_AXES_SHAPES, seed=SEEDS,
       keepdims=st.booleans(), data=st.data())  # fmt: skip
def test_reductions_over_axes(name, shape, seed, keepdims, data):
    ndim = len(shape)
    axis = data.draw(
        st.none() | st.integers(-ndim, ndim - 1) | hnp.valid_tuple_axes(ndim), label="axis"
    )
    ds_fn, np_fn = REDUCTIONS[name]
    x = distinct(np.random.default_rng(seed), shape)
    check_op(
        lambda t: ds_fn(t, axis=axis, keepdims=keepdims),
        lambda a: np_fn(a, axis=axis, keepdims=keepdims),
        x,
    )


@SETTINGS
@given(shape=NONEMPTY_AXES_SHAPES, seed=SEEDS, data=st.data())
def test_reshape(shape, seed, data):
    size = int(np.prod(shape))
    target = data.draw(
        st.sampled_from([(-1,), (size, 1), (1, size), tuple(reversed(shape)), (1, *shape, 1)])
    )
    x = np.random.default_rng(seed).normal(size=shape)
    check_op(lambda t: t.reshape(target), lambda a: a.reshape(target), x)
    check_op(lambda t: ops.reshape(t, target), lambda a: np.reshape(a, target), x)


@SETTINGS
@given(shape=NONEMPTY_AXES_SHAPES, seed=SEEDS, data=st.data())
def test_transpose_with_axes(shape, seed, data):
    ndim = len(shape)
    perm = data.draw(st.permutations(range(ndim)), label="perm")
    negative = data.draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim), label="neg")
    axes = tuple(a - ndim if neg else a for a, neg in zip(perm, negative, strict=True))
    x = np.random.default_rng(seed).normal(size=shape)
    check_op(lambda t: t.transpose(axes), lambda a: np.transpose(a, axes), x)
    check_op(lambda t: ops.transpose(t, axes), lambda a: np.transpose(a, axes), x)
    check_op(lambda t: t.T, lambda a: a.T, x)


@SETTINGS
@given(shape=NONEMPTY_AXES_SHAPES, seed=SEEDS, data=st.data())
def test_getitem(shape, seed, data):
    kind = data.draw(st.sampled_from(["basic", "integer", "mask", "row_mask"]), label="kind")
    if kind == "basic":
        index = data.draw(hnp.basic_indices(shape, allow_newaxis=True), label="index")
    elif kind == "integer":
        index = data.draw(
            hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2)),
            label="index",
        )
    elif kind == "mask":
        index = data.draw(hnp.arrays(np.bool_, shape), label="index")
    else:
        index = data.draw(hnp.arrays(np.bool_, shape[:1]), label="index")
    x = np.random.default_rng(seed).normal(size=shape)
    check_op(lambda t: t[index], lambda a: a[index], x)


@SETTINGS
@given(seed=SEEDS, data=st.data())
def test_concatenate_along_axes(seed, data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    base = data.draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim), label="base")
    sides = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="sides")
    rng = np.random.default_rng(seed)
    shapes = []
    for side in sides:
        s = list(base)
        s[axis] = side
        shapes.append(tuple(s))
    parts = [rng.normal(size=s) for s in shapes]
    check_op(
        lambda *ts: ops.concatenate(ts, axis=axis),
        lambda *xs: np.concatenate(xs, axis=axis),
        *parts,
    )


@SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
    seed=SEEDS,
)
def test_where_with_broadcasting(shapes, seed):
    sc, sx, sy = shapes.input_shapes
    rng = np.random.default_rng(seed)
    cond = rng.random(sc) < 0.5
    check_op(
        lambda a, b: ops.where(cond, a, b),
        lambda a, b: np.where(cond, a, b),
        rng.normal(size=sx),
        rng.normal(size=sy),
    )


@SETTINGS
@given(shape=SHAPES, seed=SEEDS, bounds=st.sampled_from([(-0.5, 0.5), (None, 0.3), (-0.2, None)]))
def test_clip_away_from_the_bounds(shape, seed, bounds):
    low, high = bounds
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    for bound in (low, high):
        if bound is not None:  # keep every value at least 0.01 from a kink
            x = np.where(np.abs(x - bound) < 0.01, bound + 0.05, x)
    check_op(lambda t: ops.clip(t, low, high), lambda a: np.clip(a, low, high), x)
    check_op(lambda t: t.clip(low, high), lambda a: np.clip(a, low, high), x)


@SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2, max_side=3
    ),
    seed=SEEDS,
)
def test_matmul_1d_2d_batched(shapes, seed):
    sx, sy = shapes.input_shapes
    rng = np.random.default_rng(seed)
    check_op(ops.matmul, np.matmul, rng.normal(size=sx), rng.normal(size=sy))
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, rng.normal(size=sx), rng.normal(size=sy))


@SETTINGS
@given(n=st.integers(1, 4), i=st.integers(1, 4), o=st.integers(1, 4), seed=SEEDS)
def test_linear(n, i, o, seed):
    rng = np.random.default_rng(seed)
    check_op(
        ops.linear,
        lambda x, w, b: x @ w + b,
        rng.normal(size=(n, i)),
        rng.normal(size=(i, o)),
        rng.normal(size=(o,)),
    )


UNARY = {
    "exp": (ops.exp, np.exp, lambda rng, s: rng.normal(size=s)),
    "log": (ops.log, np.log, lambda rng, s: rng.uniform(0.2, 3, s)),
    "sqrt": (ops.sqrt, np.sqrt, lambda rng, s: rng.uniform(0.2, 3, s)),
    "abs": (ops.abs, np.abs, away_from_zero),
    "negative": (lambda t: -t, np.negative, lambda rng, s: rng.normal(size=s)),
    "relu": (ops.relu, lambda a: np.maximum(a, 0), away_from_zero),
    "leaky_relu": (
        lambda t: ops.leaky_relu(t, negative_slope=0.1),
        lambda a: np.where(a > 0, a, 0.1 * a),
        away_from_zero,
    ),
    "sigmoid": (ops.sigmoid, np_sigmoid, lambda rng, s: rng.normal(size=s) * 4),
    "tanh": (ops.tanh, np.tanh, lambda rng, s: rng.normal(size=s) * 2),
    "method_exp": (lambda t: t.exp(), np.exp, lambda rng, s: rng.normal(size=s)),
    "method_log": (lambda t: t.log(), np.log, lambda rng, s: rng.uniform(0.2, 3, s)),
    "method_sqrt": (lambda t: t.sqrt(), np.sqrt, lambda rng, s: rng.uniform(0.2, 3, s)),
    "method_abs": (lambda t: t.abs(), np.abs, away_from_zero),
}


@SETTINGS
@given(name=st.sampled_from(sorted(UNARY)), shape=SHAPES, seed=SEEDS)
def test_elementwise_functions(name, shape, seed):
    ds_fn, np_fn, values = UNARY[name]
    check_op(ds_fn, np_fn, values(np.random.default_rng(seed), shape))


@SETTINGS
@given(shape=NONEMPTY_AXES_SHAPES, seed=SEEDS, data=st.data())
def test_softmax_and_log_softmax_on_axes(shape, seed, data):
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    x = np.random.default_rng(seed).normal(size=shape) * 2
    out = check_op(lambda t: ops.softmax(t, axis=axis), lambda a: np_softmax(a, axis), x)
    np.testing.assert_allclose(out.data.sum(axis=axis), 1.0, rtol=1e-14)
    check_op(lambda t: ops.log_softmax(t, axis=axis), lambda a: np_log_softmax(a, axis), x)


# --------------------------------------------------------------------------- kinks and ties


def test_max_splits_the_gradient_evenly_between_ties():
    x = ds.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])

    m = ds.Tensor(
        np.array([[2.0, 2.0, 2.0], [0.0, 5.0, 1.0], [4.0, -1.0, 4.0]]), requires_grad=True
    )
    m.max(axis=1).backward(grad=np.array([3.0, 1.0, 2.0]))
    np.testing.assert_allclose(m.grad, [[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])

    k = ds.Tensor(np.array([[3.0, 1.0], [3.0, 2.0], [0.0, 2.0]]), requires_grad=True)
    k.max(axis=0, keepdims=True).backward(grad=np.array([[1.0, 4.0]]))
    np.testing.assert_allclose(k.grad, [[0.5, 0.0], [0.5, 2.0], [0.0, 2.0]])


def test_gradients_at_the_kinks_follow_the_documented_convention():
    x = np.array([-1.0, 0.0, 2.0])
    assert np.array_equal(ds.grad(lambda t: ops.relu(t).sum())(x), [0.0, 0.0, 1.0])
    assert np.array_equal(ds.grad(lambda t: ops.abs(t).sum())(x), [-1.0, 0.0, 1.0])
    slope = ds.grad(lambda t: ops.leaky_relu(t, 0.1).sum())(x)
    np.testing.assert_array_equal(slope, [0.1, 0.1, 1.0])
    # clip passes the gradient on the bounds themselves (inside [low, high], bounds included)
    c = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert np.array_equal(ds.grad(lambda t: ops.clip(t, -1, 1).sum())(c), [0, 1, 1, 1, 0])


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, (1, 1, 4)), g.sum(axis=(0, 1), keepdims=True))
    assert unbroadcast(g, ()).shape == () and unbroadcast(g, ()) == g.sum()
    assert unbroadcast(g, g.shape) is g


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="low or high"):
        ops.clip(np.ones(2))
    with pytest.raises(ValueError, match="low or high"):
        ds.Tensor(np.ones(2)).clip()


# --------------------------------------------------------------------------- operators


def test_operators_values_and_gradients_by_formula():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2, (2, 3))
    M = rng.normal(size=(3, 4))
    L = rng.normal(size=(5, 2))

    def grad_of(build):
        t = ds.Tensor(a, requires_grad=True)
        out = build(t)
        assert isinstance(out, ds.Tensor) and out.requires_grad
        out.sum().backward()
        return out.data, t.grad

    ones = np.ones_like(a)
    cases = [
        (lambda t: t + 2, a + 2, ones),
        (lambda t: 2 + t, 2 + a, ones),
        (lambda t: M[:, 0] * 0 + t, a, ones),
        (lambda t: t - 1.5, a - 1.5, ones),
        (lambda t: 2 - t, 2 - a, -ones),
        (lambda t: a - t, np.zeros_like(a), -ones),
        (lambda t: t * 3, a * 3, 3 * ones),
        (lambda t: a * t, a * a, a),
        (lambda t: t / 4, a / 4, ones / 4),
        (lambda t: 4 / t, 4 / a, -4 / a**2),
        (lambda t: t**3, a**3, 3 * a**2),
        (lambda t: 2**t, 2**a, 2**a * np.log(2)),
        (lambda t: -t, -a, -ones),
        (lambda t: t @ M, a @ M, np.ones((2, 4)) @ M.T),
        (lambda t: L @ t, L @ a, L.T @ np.ones((5, 3))),
        (lambda t: t[1], a[1], np.array([[0.0] * 3, [1.0] * 3])),
        (lambda t: t[:, ::-1], a[:, ::-1], ones),
        (lambda t: t[t > 1.0], a[a > 1.0], (a > 1.0).astype(float)),
    ]
    for build, value, gradient in cases:
        out, g = grad_of(build)
        np.testing.assert_allclose(out, value, rtol=1e-15)
        np.testing.assert_allclose(g, gradient, rtol=1e-14)


def test_comparisons_give_plain_boolean_arrays():
    t = ds.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for result, expected in [
        (t > 2, [False, False, True]),
        (t >= 2, [False, True, True]),
        (t < ds.Tensor(np.array([2.0, 2.0, 2.0])), [True, False, False]),
        (t <= 2, [True, True, False]),
    ]:
        assert isinstance(result, np.ndarray) and result.dtype == bool
        np.testing.assert_array_equal(result, expected)


def test_tensor_basics():
    t = ds.Tensor([[1, 2], [3, 4]], dtype=np.float64, requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.size == 4 and len(t) == 2
    assert t.dtype == np.float64 and t.is_leaf and t.op is None
    assert t.numpy() is t.data
    d = (t * 2).detach()
    assert d.is_leaf and not d.requires_grad
    assert ds.Tensor(np.array([5.0])).item() == 5.0
    assert "requires_grad=True" in repr(t) and "op=multiply" in repr(t * 2)
    with pytest.raises(TypeError, match="floating-point"):
        ds.Tensor(np.array([1, 2]), requires_grad=True)


# --------------------------------------------------------------------------- accumulation


def test_two_backward_calls_on_two_graphs_add_up():
    x = ds.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * 2).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 + 2 * x.data)


def test_second_backward_on_the_same_graph_adds_the_same_gradient_again():
    x = ds.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = (ops.tanh(x) * x).sum()
    y.backward()
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first, rtol=1e-15)
    expected = np.tanh(x.data) + x.data * (1 - np.tanh(x.data) ** 2)
    np.testing.assert_allclose(first, expected, rtol=1e-14)


def test_setting_grad_to_none_resets():
    x = ds.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert np.array_equal(x.grad, [6.0, 6.0])
    x.grad = None
    (x * 3).sum().backward()
    assert np.array_equal(x.grad, [3.0, 3.0])


def test_grad_only_on_leaves_unless_retained():
    x = ds.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    kept = (x * 5).retain_grad()
    y = (h * h).sum() + (kept * 2).sum()
    y.backward()
    assert not h.is_leaf and h.op == "multiply"
    assert h.grad is None and y.grad is None
    np.testing.assert_array_equal(kept.grad, [2.0, 2.0])
    np.testing.assert_array_equal(x.grad, 18 * x.data + 10)


def test_a_leaf_used_twice_gets_the_summed_gradient():
    x0 = np.array([1.5, -2.0, 0.5])
    for build, expected in [
        (lambda x: x * x, 2 * x0),
        (lambda x: x + x, np.full(3, 2.0)),
        (lambda x: x * x * x, 3 * x0**2),
        (lambda x: x - x, np.zeros(3)),
        (lambda x: ops.concatenate([x, x[::-1], x[[0, 0]]]), np.array([4.0, 2.0, 2.0])),
    ]:
        x = ds.Tensor(x0, requires_grad=True)
        build(x).sum().backward()
        np.testing.assert_allclose(x.grad, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "build",
    [
        lambda a, b: (a + b).sum(),
        lambda a, b: ((a + b) * np.array([1.0, 2.0, 3.0])).sum(),
        lambda a, b: ((a + b.reshape(3)) * np.array([1.0, 2.0, 3.0])).sum(),
        lambda a, b: ((a + b.T) * np.array([1.0, 2.0, 3.0])).sum(),
    ],
    ids=["sum", "weighted", "through-reshape", "through-transpose"],
)
def test_leaves_sharing_an_upstream_gradient_get_independent_arrays(build):
    a = ds.Tensor(np.ones(3), requires_grad=True)
    b = ds.Tensor(np.ones(3), requires_grad=True)
    build(a, b).backward()
    assert np.array_equal(a.grad, b.grad)
    before = b.grad.copy()
    a.grad[...] = 99.0
    np.testing.assert_array_equal(b.grad, before)


def test_backward_never_aliases_the_callers_gradient_array():
    a = ds.Tensor(np.ones(3), requires_grad=True)
    b = ds.Tensor(np.ones(3), requires_grad=True)
    seed_grad = np.array([1.0, 2.0, 3.0])
    (a + b).backward(grad=seed_grad)
    seed_grad[...] = -7.0
    np.testing.assert_array_equal(a.grad, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0, 3.0])


def test_backward_errors():
    x = ds.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="requires_grad"):
        ds.Tensor(np.ones(3)).sum().backward()
    with pytest.raises(ValueError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(grad=np.ones(2))


def test_gradient_dtype_follows_the_leaf():
    x = ds.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x * np.arange(3.0)).sum().backward()  # float64 on the way, float32 leaf
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 2.0])


def test_toposort_puts_parents_before_children():
    x = ds.Tensor(np.ones(2), requires_grad=True)
    a = x * 2
    b = a + x
    c = (a * b).sum()
    order = toposort(c)
    pos = {id(t): i for i, t in enumerate(order)}
    assert order[-1] is c and len(order) == 5
    for t in order:
        for p in t._parents:
            if p is not None:
                assert pos[id(p)] < pos[id(t)]


# --------------------------------------------------------------------------- no_grad


def test_no_grad_builds_no_graph():
    w = ds.Tensor(np.ones(3), requires_grad=True)
    assert ds.autodiff.is_grad_enabled()
    with ds.no_grad():
        assert not ds.autodiff.is_grad_enabled()
        y = (w * 2).sum()
    assert not y.requires_grad and y.op is None and y.is_leaf and y._parents == ()
    assert y.item() == 6.0
    assert ds.autodiff.is_grad_enabled()
    assert (w * 2).requires_grad


def test_no_grad_nested_and_restored_after_an_exception():
    with ds.no_grad():
        with ds.no_grad():
            pass
        assert not ds.autodiff.is_grad_enabled()
    assert ds.autodiff.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with ds.no_grad():
            1 / 0  # noqa: B018
    assert ds.autodiff.is_grad_enabled()

    @ds.no_grad()
    def predict(w):
        return w * 2

    assert not predict(ds.Tensor(np.ones(2), requires_grad=True)).requires_grad
    assert ds.autodiff.is_grad_enabled()


def test_no_grad_is_per_thread():
    seen = {}

    def other():
        seen["enabled"] = ds.autodiff.is_grad_enabled()

    with ds.no_grad():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["enabled"] is True


# --------------------------------------------------------------------------- deep graphs


def test_a_chain_of_100000_ops_backpropagates():
    n, c = 100_000, 1.00001
    x = ds.Tensor(np.array(0.5), requires_grad=True)
    y = x
    for _ in range(n):
        y = y * c
    y.backward()
    np.testing.assert_allclose(y.item(), 0.5 * c**n, rtol=1e-9)
    np.testing.assert_allclose(x.grad, c**n, rtol=1e-9)
    assert len(toposort(y)) == n + 1

    ref = weakref.ref(y)
    del y
    assert ref() is None  # freed without a RecursionError


# --------------------------------------------------------------------------- grad, gradcheck


def test_grad_and_value_and_grad_with_argnums():
    x = np.array([1.0, -2.0, 0.5])
    w = np.array([0.3, 0.7, -1.1])

    def f(a, b):
        return (a * b**2).sum()

    np.testing.assert_allclose(ds.grad(f)(x, w), w**2)
    np.testing.assert_allclose(ds.grad(f, argnums=1)(x, w), 2 * x * w)
    np.testing.assert_allclose(ds.grad(f, argnums=-1)(x, w), 2 * x * w)
    value, (gx, gw) = ds.value_and_grad(f, argnums=(0, 1))(x, w)
    assert isinstance(value, float) and value == pytest.approx(np.sum(x * w**2), rel=1e-15)
    np.testing.assert_allclose(gx, w**2)
    np.testing.assert_allclose(gw, 2 * x * w)
    value, gw_only = ds.value_and_grad(f, argnums=(1,))(x, w)
    assert isinstance(gw_only, tuple) and len(gw_only) == 1
    # integer input is differentiated in float64; an unused argument gets zeros
    np.testing.assert_allclose(ds.grad(lambda a: (a * a).sum())(np.array([1, 2])), [2.0, 4.0])
    np.testing.assert_array_equal(ds.grad(lambda a, b: b.sum(), argnums=0)(x, w), np.zeros(3))
    with pytest.raises(ValueError, match="argnums"):
        ds.grad(f, argnums=2)(x, w)
    with pytest.raises(ValueError, match="one-element"):
        ds.grad(lambda a: a * 2)(x)


def test_gradcheck_passes_a_correct_gradient():
    result = ds.gradcheck(lambda a, b: (ops.tanh(a @ b) ** 2).sum(), np.ones((2, 3)) * 0.3,
                          np.linspace(-1, 1, 12).reshape(3, 4))  # fmt: skip
    assert result.ok and bool(result) and result.max_rel_error < 1e-7
    assert [g.shape for g in result.analytic] == [(2, 3), (3, 4)]


def _wrong_square(x):
    # d(x^2)/dx is 2x; this vjp forgets the 2.
    return apply(Primitive("wrong_square", np.square, lambda g, ans, n, x: (g * x,)), x)


def test_gradcheck_detects_a_wrong_gradient():
    x = np.array([0.5, -1.0, 2.0])
    result = ds.gradcheck(lambda t: _wrong_square(t).sum(), x)
    assert not result.ok and not bool(result)
    assert result.max_rel_error > 0.4  # analytic x against numeric 2x: relative error 1/2
    np.testing.assert_allclose(result.numeric[0], 2 * x, rtol=1e-7)
    np.testing.assert_allclose(result.analytic[0], x)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        ds.gradcheck(lambda t: _wrong_square(t).sum(), x, raise_on_failure=True)
    with pytest.raises(ValueError, match="at least one array"):
        ds.gradcheck(lambda: None)


# --------------------------------------------------------------------------- stability


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_of_huge_inputs_is_finite(dtype):
    x = ds.Tensor(np.array([-1e4, 0.0, 1e4], dtype=dtype), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = ops.sigmoid(x)
        s.sum().backward()
    assert s.dtype == dtype
    np.testing.assert_array_equal(s.data, [0.0, 0.5, 1.0])
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_array_equal(x.grad, [0.0, 0.25, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_of_huge_logits_are_finite(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    for fn in (ops.softmax, ops.log_softmax):
        t = ds.Tensor(z, requires_grad=True)
        out = fn(t)
        (out * np.array([1.0, 2.0, 3.0], dtype=dtype)).sum().backward()
        assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad))
    np.testing.assert_allclose(ops.softmax(z).data, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    # with a gap of 1e4 the answer is exact: log_softmax = z - max (the sum of exps rounds to 1)
    np.testing.assert_array_equal(ops.log_softmax(z).data[0], [0.0, -2e4, -1e4])


@pytest.mark.parametrize("shape", [(64, 2), (200, 10), (1000, 64), (63, 10), (200, 65), (5, 3)])
def test_max_keepdims_equals_numpys_max_bit_for_bit(shape):
    from descend.autodiff.primitives import max_keepdims

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    x[1, 0], x[2, -1], x[3, :] = np.nan, np.inf, -np.inf  # NaN must win its row, as in np.max
    x[4, :] = -0.0
    got = max_keepdims(x)
    want = x.max(axis=-1, keepdims=True)
    assert got.shape == want.shape == (shape[0], 1)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[1, 0]) and got[2, 0] == np.inf and got[3, 0] == -np.inf
    np.testing.assert_array_equal(max_keepdims(x, axis=0), x.max(axis=0, keepdims=True))


# --------------------------------------------------------------------------- PyTorch


def _assert_close_to_torch(ours, theirs):
    theirs = theirs.detach().numpy()
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14 * scale)


def _assert_same_as_torch(f_ds, f_torch, *arrays):
    torch = pytest.importorskip("torch")
    tensors = [ds.Tensor(a, requires_grad=True) for a in arrays]
    out = f_ds(*tensors)
    out.backward()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    ref = f_torch(*ts)
    ref.backward()
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)
    for t, r in zip(tensors, ts, strict=True):
        _assert_close_to_torch(t.grad, r.grad)


def test_mlp_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    arrays = [
        rng.normal(size=(6, 5)),  # x
        rng.normal(size=(5, 8)) * 0.5, rng.normal(size=8) * 0.1,
        rng.normal(size=(8, 7)) * 0.5, rng.normal(size=7) * 0.1,
        rng.normal(size=(7, 6)) * 0.5, rng.normal(size=6) * 0.1,
        rng.normal(size=(6, 4)) * 0.5,
    ]  # fmt: skip
    Y = np.eye(4)[rng.integers(0, 4, 6)]

    def ours(x, w1, b1, w2, b2, w3, b3, w4):
        h = ops.relu(ops.linear(x, w1, b1))
        h = ops.tanh(h @ w2 + b2)
        h = ops.sigmoid(ops.linear(h, w3, b3))
        p = ops.softmax(h @ w4)
        return -(Y * ops.log(p)).sum() / 6 + (w1 * w1).mean()

    def theirs(x, w1, b1, w2, b2, w3, b3, w4):
        h = torch.relu(x @ w1 + b1)
        h = torch.tanh(h @ w2 + b2)
        h = torch.sigmoid(h @ w3 + b3)
        p = torch.softmax(h @ w4, dim=-1)
        return -(torch.tensor(Y) * torch.log(p)).sum() / 6 + (w1 * w1).mean()

    _assert_same_as_torch(ours, theirs, *arrays)


def test_broadcasting_expression_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    a, b, c = rng.normal(size=(2, 3, 1)), rng.normal(size=(3, 4)), rng.uniform(0.5, 2, (4,))

    def ours(a, b, c):
        u = (a * b - c) / (1 + ops.exp(b)) + ops.sqrt(ops.abs(a) + 1) ** c
        v = ops.log_softmax(u, axis=0) + ops.where(u.data > 0, u, 0.5 * u)
        w = ops.concatenate([v, ops.transpose(v, (0, 2, 1)).reshape(2, 3, 4)], axis=1)
        return w.max(axis=2).mean() + ops.clip(w, -0.7, 0.9).mean(axis=(0, 2), keepdims=True).sum()

    def theirs(a, b, c):
        u = (a * b - c) / (1 + torch.exp(b)) + torch.sqrt(torch.abs(a) + 1) ** c
        v = torch.log_softmax(u, dim=0) + torch.where(u > 0, u, 0.5 * u)
        w = torch.cat([v, torch.permute(v, (0, 2, 1)).reshape(2, 3, 4)], dim=1)
        return (
            torch.amax(w, dim=2).mean()
            + torch.clamp(w, -0.7, 0.9).mean(dim=(0, 2), keepdim=True).sum()
        )

    _assert_same_as_torch(ours, theirs, a, b, c)


def test_indexing_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 5))
    rows = np.array([3, 0, 3, 3, 3])  # (3, 4) twice: a repeated index
    mask = x > 0.2
    weights = rng.normal(size=5)

    def ours(t):
        picked = t[rows, [0, 1, 1, 4, 4]] * weights
        return picked.sum() + (t[mask] ** 2).sum() + (t[1:, ::2] * t[:-1, 1::2].sum()).sum()

    def theirs(t):
        picked = t[torch.tensor(rows), torch.tensor([0, 1, 1, 4, 4])] * torch.tensor(weights)
        sliced = t[1:, torch.arange(0, 5, 2)]
        return (
            picked.sum()
            + (t[torch.tensor(mask)] ** 2).sum()
            + (sliced * t[:-1, torch.arange(1, 5, 2)].sum()).sum()
        )

    _assert_same_as_torch(ours, theirs, x)
