"""Numerical stress: activations and costs on extreme inputs, and divergence during training.

Every activation and cost, forward and gradient, in float32 and float64, on +-1e4, 1e-45 (a
float32 denormal), exactly 0 and 1, +-20 and +-88 (where float32 exponentials saturate): the
results are finite and equal a reference computed in extended precision (np.longdouble) with the
textbook formula, to a few units in the last place of the dtype (relative to the size of the
result: a saturated gradient computed as s * (1 - s) cannot be more exact than that).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descend as ds
from descend.nn.activations import get_activation

L = np.longdouble
EXTREMES = [1e4, -1e4, 1e-45, -1e-45, 0.0, 1.0, -1.0, 20.0, -20.0, 88.0, -88.0, 0.5, -3.0]
DTYPES = [np.float32, np.float64]


def _close(got, ref, dtype, ulps=8):
    """got == ref to ``ulps`` units in the last place of the largest |ref| (a norm-wise error:
    the only kind a saturated s * (1 - s) or 1 - t * t can meet)."""
    got = np.asarray(got, dtype=L)
    ref = np.asarray(ref, dtype=L)
    finfo = np.finfo(dtype)
    tol = ulps * L(finfo.eps) * np.max(np.abs(ref)) + L(finfo.smallest_subnormal)
    assert np.all(np.abs(got - ref) <= tol), (got, ref)


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


REFERENCE = {  # name: (forward, derivative given the upstream gradient g)
    "relu": (lambda x: np.maximum(x, 0), lambda x, g: g * (x > 0)),
    "leaky_relu": (lambda x: np.where(x > 0, x, x * L("0.01")),
                   lambda x, g: np.where(x > 0, g, g * L("0.01"))),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)),
                lambda x, g: g / ((1 + np.exp(-x)) * (1 + np.exp(x)))),
    "tanh": (np.tanh,
             lambda x, g: g * 4 * np.exp(-2 * np.abs(x)) / (1 + np.exp(-2 * np.abs(x))) ** 2),
    "softmax": (_softmax, lambda x, g: _softmax(x) * (g - (g * _softmax(x)).sum())),
    "log_softmax": (lambda x: x - x.max() - np.log(np.exp(x - x.max()).sum()),
                    lambda x, g: g - _softmax(x) * g.sum()),
    "linear": (lambda x: x, lambda x, g: g),
}  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activations_forward_and_gradient_at_extremes_match_an_extended_reference(name, dtype):
    x = np.array(EXTREMES, dtype=dtype)
    g = np.linspace(-1.0, 1.0, x.size).astype(dtype)
    # Row vectors: softmax and log_softmax work along the last axis.
    t = ds.Tensor(x.reshape(1, -1), requires_grad=True)
    fn = get_activation(name) if name != "log_softmax" else ds.autodiff.ops.log_softmax
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning either
        out = fn(t)
        (out * ds.Tensor(g.reshape(1, -1))).sum().backward()
    assert out.dtype == dtype and t.grad.dtype == dtype
    assert np.isfinite(out.data).all() and np.isfinite(t.grad).all()
    forward, derivative = REFERENCE[name]
    xl = x.astype(L)  # the reference sees the values the dtype holds (1e-45 is 1.4e-45)
    _close(out.data.ravel(), forward(xl), dtype)
    _close(t.grad.ravel(), derivative(xl, g.astype(L)), dtype)
    if name in ("relu", "linear"):  # exact operations
        assert np.array_equal(out.data.ravel(), forward(xl).astype(dtype))
        assert np.array_equal(t.grad.ravel(), derivative(xl, g.astype(L)).astype(dtype))


def _clip(p, dtype):
    eps = L(np.finfo(dtype).eps)
    return np.clip(p, eps, 1 - eps), (p >= eps) & (p <= 1 - eps)


def _softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


PROBABILITIES = [0.0, 1.0, 1e-45, 1 - 1e-7, 0.5, 1e-7]
LOGITS = [1e4, -1e4, 1e-45, 0.0, 88.0, -88.0, 20.0, -20.0]


def _cases(dtype):
    """(cost name, pred, target, from_logits, reference cost, reference gradient)."""
    out = []
    p = np.array(PROBABILITIES, dtype=dtype).reshape(-1, 1)
    y = np.array([0, 1, 1, 0, 1, 0])
    pl = p.astype(L).ravel()
    yl = y.astype(L)
    n = L(len(y))
    pc, inside = _clip(pl, dtype)
    bce = -(yl * np.log(pc) + (1 - yl) * np.log(1 - pc)).mean()
    bce_grad = np.where(inside, (-yl / pc + (1 - yl) / (1 - pc)) / n, 0)
    out.append(("binary_cross_entropy", p, y, False, bce, bce_grad))
    z = np.array(LOGITS, dtype=dtype).reshape(-1, 1)
    yz = np.array([1, 0, 1, 0, 1, 1, 0, 1])
    zl, yzl = z.astype(L).ravel(), yz.astype(L)
    bce_logits = (_softplus(zl) - zl * yzl).mean()
    out.append(("binary_cross_entropy", z, yz, True, bce_logits,
                (1 / (1 + np.exp(-zl)) - yzl) / L(len(yz))))  # fmt: skip
    # Rows of class probabilities with exact 0 and 1 entries.
    P = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1e-45, 0.5, 0.5 - 1e-45], [0.2, 0.3, 0.5]],
                 dtype=dtype)  # fmt: skip
    labels = np.array([0, 0, 0, 2])
    Pl = P.astype(L)
    picked = Pl[np.arange(4), labels]
    eps = L(np.finfo(dtype).eps)
    cce = -np.log(np.maximum(picked, eps)).mean()
    grad = np.zeros_like(Pl)
    grad[np.arange(4), labels] = np.where(picked >= eps, -1 / np.maximum(picked, eps), 0) / 4
    out.append(("categorical_cross_entropy", P, labels, False, cce, grad.ravel()))
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e-45], [88.0, -88.0, 20.0], [0.0, 0.0, 0.0]],
                 dtype=dtype)  # fmt: skip
    Zl = Z.astype(L)
    lse = np.log(np.exp(Zl - Zl.max(1, keepdims=True)).sum(1)) + Zl.max(1)
    cce_logits = (lse - Zl[np.arange(4), labels]).mean()
    soft = np.exp(Zl - lse[:, None])
    soft[np.arange(4), labels] -= 1
    out.append(("categorical_cross_entropy", Z, labels, True, cce_logits, (soft / 4).ravel()))
    out.append(("log_loss", Z, labels, True, cce_logits, (soft / 4).ravel()))
    big = np.array([[1e4], [-1e4], [1e-45], [0.0]], dtype=dtype)
    target = np.array([-1e4, 1e4, 0.0, 1e-45])
    bl, tl = big.astype(L).ravel(), target.astype(dtype).astype(L)
    out.append(("mse", big, target, False, ((bl - tl) ** 2).mean(), 2 * (bl - tl) / 4))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_costs_and_their_gradients_at_extremes_match_an_extended_reference(dtype):
    for name, pred, target, from_logits, ref_cost, ref_grad in _cases(dtype):
        t = ds.Tensor(pred, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cost = ds.losses.get(name)(t, target, from_logits=from_logits)
            cost.backward()
        assert cost.dtype == dtype and t.grad.dtype == dtype, name
        assert np.isfinite(cost.data) and np.isfinite(t.grad).all(), (name, from_logits)
        _close(cost.data, ref_cost, dtype, ulps=16)
        _close(t.grad.ravel(), ref_grad, dtype, ulps=16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_fused_costs_of_training_are_finite_on_extreme_logits(dtype):
    # The fused step's output layer sees logits of +-1e4: cost and gradients stay finite and
    # equal the graph's.
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [1e-45, 0.0], [1.0, -1.0]], dtype=dtype)
    for act, loss, y in (("softmax", "categorical_cross_entropy", np.array([0, 1, 0, 1])),
                         ("sigmoid", "binary_cross_entropy", np.array([0, 1, 1, 0]))):  # fmt: skip
        out = 2 if act == "softmax" else 1
        models = [ds.nn.mlp([2, out], output_activation=act, seed=0, dtype=dtype) for _ in "ab"]
        for model, fused in zip(models, (True, False), strict=True):
            h = ds.fit(model, X, y, loss=loss, optimizer=ds.optim.GD(1e-4), batch_size="full",
                       epochs=2, progress=False, compile=fused)  # fmt: skip
            assert np.isfinite(h.step["loss"]).all()
        for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
            assert np.isfinite(p.data).all() and np.array_equal(p.data, q.data)


@pytest.mark.parametrize("fused", [True, False])
def test_divergence_names_the_step_and_the_rate_and_keeps_finite_parameters(fused):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4)).astype(np.float32) * 30
    y = (X**2).sum(axis=1)
    model = ds.nn.mlp([4, 16, 1], seed=0)
    kept = []
    keep = ds.LambdaCallback(on_step_end=lambda s, logs: kept.append(model.state_dict()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warnings on the way
        with pytest.raises(ds.DivergenceError) as info:
            ds.fit(model, X, y, loss="mse", optimizer=ds.optim.Momentum(0.5), batch_size=8,
                   epochs=100, progress=False, compile=fused, callbacks=[keep])  # fmt: skip
    err = info.value
    assert f"update {err.step} " in str(err) and "lr=0.5" in str(err)
    assert err.step == len(kept) == err.history.n_updates
    for name, p in model.named_parameters().items():
        assert np.isfinite(p.data).all() and np.array_equal(p.data, kept[-1][name])
    assert np.isfinite(err.history.step["loss"]).all()


def test_divergence_is_reported_the_same_on_both_paths():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4)).astype(np.float32) * 30
    y = (X**2).sum(axis=1)
    steps = []
    for fused in (True, False):
        with pytest.raises(ds.DivergenceError) as info:
            ds.fit(ds.nn.mlp([4, 16, 1], seed=0), X, y, loss="mse",
                   optimizer=ds.optim.Momentum(0.5), batch_size=8, epochs=100, progress=False,
                   compile=fused)  # fmt: skip
        steps.append(info.value.step)
    assert steps[0] == steps[1]


def test_overflowing_values_are_refused_with_the_argument_named():
    model = ds.nn.mlp([2, 1], seed=0)
    with pytest.raises(ValueError, match=r"^X holds values beyond the range of .* float32"):
        ds.fit(model, np.full((4, 2), 1e300), np.zeros(4), loss="mse", progress=False,
               batch_size=2)  # fmt: skip
    with pytest.raises(ValueError, match=r"^y holds values beyond"):
        ds.fit(model, np.ones((4, 2)), np.full(4, 1e300), loss="mse", progress=False,
               batch_size=2)  # fmt: skip
    with pytest.raises(ValueError, match=r"^X holds values beyond"):
        ds.predict(model, np.full((4, 2), -1e300))
    # float64 models take them, and say when the cost itself overflows.
    with pytest.raises(ValueError, match="overflows float32"):
        ds.losses.mse(np.array([3e38], np.float32), np.array([-3e38], np.float32))
