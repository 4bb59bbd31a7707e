"""Gradients at the edge points of every primitive: 0, +-inf where meaningful, and the kinks.

A derivative formula evaluated where one factor is 0 and another infinite gives 0 * inf = nan
(the power rule at x = 0 did). Each case is checked against the value worked out by hand, and
against PyTorch where it is installed (``make test-reference``).
"""

import numpy as np
import pytest

import descend as ds
from descend.autodiff import ops

INF = np.inf

# name: (descend function, torch function name or callable, x, dC/dx worked out by hand)
UNARY_EDGES = {
    "x**0 at 0 and +-inf": (lambda t: t**0, lambda t: t**0, [0.0, INF, -INF, 2.0], [0, 0, 0, 0]),
    "x**1 at 0": (lambda t: t**1, lambda t: t**1, [0.0, -0.0, INF], [1, 1, 1]),
    "x**2 at 0 and +-inf": (lambda t: t**2, lambda t: t**2, [0.0, INF, -INF], [0, INF, -INF]),
    "x**0.5 at 0 and inf": (lambda t: t**0.5, lambda t: t**0.5, [0.0, INF], [INF, 0]),
    "x**-1 at inf": (lambda t: t**-1, lambda t: t**-1, [INF, -INF], [-0.0, -0.0]),
    "polynomial 1 + 2x + 3x^2 at 0": (
        lambda t: 1 * t**0 + 2 * t**1 + 3 * t**2,
        lambda t: 1 * t**0 + 2 * t**1 + 3 * t**2,
        [0.0],
        [2.0],
    ),
    "relu": (ops.relu, "relu", [0.0, -0.0, INF, -INF], [0, 0, 1, 0]),
    "abs": (ops.abs, "abs", [0.0, INF, -INF], [0, 1, -1]),
    "leaky_relu": (
        lambda t: ops.leaky_relu(t, 0.1),
        lambda t: __import__("torch").nn.functional.leaky_relu(t, 0.1),
        [0.0, INF, -INF],
        [0.1, 1, 0.1],
    ),
    "sigmoid": (ops.sigmoid, "sigmoid", [0.0, INF, -INF], [0.25, 0, 0]),
    "tanh": (ops.tanh, "tanh", [0.0, INF, -INF], [1, 0, 0]),
    "exp": (ops.exp, "exp", [0.0, -INF, INF], [1, 0, INF]),
    "log": (ops.log, "log", [0.0, INF, 1.0], [INF, 0, 1]),
    "sqrt": (ops.sqrt, "sqrt", [0.0, INF, 4.0], [INF, 0, 0.25]),
    "clip on its bounds": (
        lambda t: ops.clip(t, -1.0, 1.0),
        lambda t: t.clamp(-1.0, 1.0),
        [-1.0, 1.0, INF, -INF],
        [1, 1, 0, 0],
    ),
    "max with a tie at 0": (
        lambda t: ops.max(t),
        lambda t: t.max(),
        [0.0, 0.0, -INF],
        [0.5, 0.5, 0],
    ),
}


def _ours(fn, x):
    t = ds.Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    with np.errstate(all="ignore"):  # log(0), 0**-0.5 warn in NumPy: the values are the point
        fn(t).sum().backward()
    return t.grad


@pytest.mark.parametrize("case", sorted(UNARY_EDGES))
def test_gradient_at_edge_points_equals_the_hand_value(case):
    fn, _, x, want = UNARY_EDGES[case]
    got = _ours(fn, x)
    assert not np.any(np.isnan(got)), f"{case}: nan in {got}"
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float64))


@pytest.mark.parametrize("case", sorted(UNARY_EDGES))
def test_gradient_at_edge_points_equals_pytorch(case):
    torch = pytest.importorskip("torch")
    fn, torch_fn, x, _ = UNARY_EDGES[case]
    if isinstance(torch_fn, str):
        torch_fn = getattr(torch, torch_fn)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch_fn(t).sum().backward()
    np.testing.assert_array_equal(_ours(fn, x), t.grad.numpy())


def test_power_with_a_tensor_exponent_of_zero_at_zero():
    # d(x^y)/dx = y x^(y-1) = 0 and d(x^y)/dy = x^y log x, taken as 0 at x = 0: no nan, no warning.
    x = ds.Tensor(np.array([0.0, 0.0, 2.0]), requires_grad=True)
    y = ds.Tensor(np.array([0.0, 1.0, 0.0]), requires_grad=True)
    with np.errstate(all="raise"):
        (x**y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, np.log(2.0)])


def test_power_exponent_gradient_at_zero_base_with_negative_exponent_is_zero_not_nan():
    # 0^-1 = inf: the documented convention (0 where x <= 0) holds instead of inf * 0 = nan.
    x = ds.Tensor(np.array([0.0]), requires_grad=True)
    y = ds.Tensor(np.array([-1.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        (x**y).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0])


def test_power_at_zero_matches_pytorch_for_tensor_exponents():
    torch = pytest.importorskip("torch")
    xs, ys = np.array([0.0, 0.0, 0.0, 3.0]), np.array([0.0, 1.0, 2.0, 0.0])
    x, y = ds.Tensor(xs, requires_grad=True), ds.Tensor(ys, requires_grad=True)
    (x**y).sum().backward()
    tx = torch.tensor(xs, requires_grad=True)
    ty = torch.tensor(ys, requires_grad=True)
    (tx**ty).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    np.testing.assert_array_equal(y.grad, ty.grad.numpy())


def test_power_of_a_zero_scalar_as_in_the_report():
    x = ds.Tensor(np.array(0.0), requires_grad=True)
    (x**0).backward()
    assert x.grad == 0.0


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "exp", "log"])
def test_tensor_methods_equal_the_functions_in_value_and_gradient(name):
    # Users of micrograd and PyTorch write x.relu(); it must be the same node as ops.relu(x).
    data = np.array([0.3, 1.5, 2.0])
    a, b = ds.Tensor(data, requires_grad=True), ds.Tensor(data, requires_grad=True)
    out_method = getattr(a, name)()
    out_function = getattr(ops, name)(b)
    np.testing.assert_array_equal(out_method.data, out_function.data)
    out_method.sum().backward()
    out_function.sum().backward()
    np.testing.assert_array_equal(a.grad, b.grad)
