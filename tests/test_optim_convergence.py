"""Convergence grid: every update rule x {a convex quadratic, the Rosenbrock function}.

Gradients are analytic. Each case gives a learning rate (constant or a schedule) that suits the
rule and the function, a step budget, and a tolerance on the distance to the known minimiser;
the budgets are about twice the steps the rules needed when this grid was set up.
"""

import numpy as np
import pytest

from descend.optim import GD, Adam, AdamW, ExponentialDecay, Momentum, RMSProp


class Param:
    """Stand-in for a descend.Tensor leaf: .data is updated in place, .grad is only read."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = np.array(data, dtype=float)
        self.grad = None


# f(x) = 0.5 x^T A x - b^T x, A symmetric positive definite (eigenvalues about 0.88 and 3.12)
A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])
QUADRATIC_MIN = np.linalg.solve(A, B)


def quadratic(x):
    return 0.5 * x @ A @ x - B @ x, A @ x - B


def rosenbrock(x):
    # f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)
    value = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    grad = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return value, grad


# (rule, function, optimizer factory, steps, tolerance on |x - x*|)
GRID = [
    ("gd", "quadratic", lambda: GD(lr=0.3), 100, 1e-8),
    ("momentum", "quadratic", lambda: Momentum(lr=0.1, momentum=0.9), 600, 1e-8),
    ("nesterov", "quadratic", lambda: Momentum(lr=0.1, momentum=0.9, nesterov=True), 300, 1e-8),
    # RMSProp and Adam take steps of about lr whatever the gradient's size, so a constant lr
    # leaves RMSProp hopping around the minimum: it gets a decaying schedule.
    ("rmsprop", "quadratic", lambda: RMSProp(lr=ExponentialDecay(0.05, gamma=0.99)), 2000, 1e-8),
    ("adam", "quadratic", lambda: Adam(lr=0.1), 500, 1e-8),
    # Decoupled decay moves AdamW's fixed point off the minimiser by O(weight_decay): 6e-7 here.
    ("adamw", "quadratic", lambda: AdamW(lr=0.1, weight_decay=1e-6), 500, 1e-5),
    ("gd", "rosenbrock", lambda: GD(lr=1e-3), 30000, 1e-4),
    ("momentum", "rosenbrock", lambda: Momentum(lr=1e-3, momentum=0.9), 3000, 1e-4),
    (
        "nesterov",
        "rosenbrock",
        lambda: Momentum(lr=1e-3, momentum=0.9, nesterov=True),
        3000,
        1e-4,
    ),
    ("rmsprop", "rosenbrock", lambda: RMSProp(lr=ExponentialDecay(0.01, 0.999)), 10000, 1e-4),
    ("adam", "rosenbrock", lambda: Adam(lr=0.02), 6000, 1e-4),
    ("adamw", "rosenbrock", lambda: AdamW(lr=0.02, weight_decay=1e-6), 6000, 1e-5),
]
FUNCTIONS = {
    "quadratic": (quadratic, np.array([4.0, -3.0]), QUADRATIC_MIN),
    "rosenbrock": (rosenbrock, np.array([-1.2, 1.0]), np.array([1.0, 1.0])),
}


@pytest.mark.parametrize(
    ("rule", "function", "make", "steps", "tol"), GRID, ids=[f"{r}-{f}" for r, f, *_ in GRID]
)
def test_reaches_the_minimum(rule, function, make, steps, tol):
    f, start, minimiser = FUNCTIONS[function]
    x = Param(start)
    opt = make()
    first_value = f(x.data)[0]
    for _ in range(steps):
        x.grad = f(x.data)[1]
        opt.step([x])
    distance = np.linalg.norm(x.data - minimiser)
    assert distance < tol, f"{rule} on {function}: |x - x*| = {distance:.3g} after {steps} steps"
    assert f(x.data)[0] < first_value
    assert opt.iterations == steps


def test_the_grid_covers_every_rule_on_both_functions():
    cases = {(rule, function) for rule, function, *_ in GRID}
    rules = {"gd", "momentum", "nesterov", "rmsprop", "adam", "adamw"}
    assert cases == {(r, f) for r in rules for f in FUNCTIONS}
