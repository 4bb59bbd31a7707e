"""descend.losses: values from the formulas, gradients by central differences, the fused
softmax/sigmoid paths, stability at the extremes, scikit-learn and PyTorch as references, errors."""

import numpy as np
import pytest

import descend as ds
from descend import losses
from descend.autodiff import ops

RNG = np.random.default_rng(2024)


def value_and_grad(loss, pred, target, **kw):
    """The loss value and its gradient with respect to ``pred`` (a float64 array)."""
    return ds.value_and_grad(lambda p: loss(p, target, **kw))(pred)


def check_gradient(loss, pred, target, **kw):
    result = ds.gradcheck(lambda p: loss(p, target, **kw), pred, rtol=1e-6, atol=1e-9)
    assert result.ok, result
    return result


def np_log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


# --------------------------------------------------------------------------- mse


@pytest.mark.parametrize(
    ("pred_shape", "target_shape"),
    [((5,), (5,)), ((5, 1), (5,)), ((5,), (5, 1)), ((5, 1), (5, 1)), ((4, 3), (4, 3))],
)
def test_mse_value_and_gradient(pred_shape, target_shape):
    pred = RNG.normal(size=pred_shape)
    target = RNG.normal(size=target_shape)
    diff = pred - target.reshape(pred_shape)
    value, g = value_and_grad(losses.mse, pred, target)
    assert value == pytest.approx(np.mean(diff**2), rel=1e-14)
    np.testing.assert_allclose(g, 2 * diff / diff.size, rtol=1e-14)
    check_gradient(losses.mse, pred, target)
    # from_logits is accepted and changes nothing
    assert losses.mse(pred, target, from_logits=True).item() == pytest.approx(value, rel=1e-15)


def test_mse_keeps_float32():
    pred = ds.Tensor(np.array([[1.0], [3.0]], dtype=np.float32), requires_grad=True)
    cost = losses.mse(pred, np.array([1.0, 1.0]))
    assert cost.dtype == np.float32 and cost.item() == 2.0
    cost.backward()
    assert pred.grad.dtype == np.float32
    np.testing.assert_array_equal(pred.grad, [[0.0], [2.0]])


# --------------------------------------------------------------------------- binary


@pytest.mark.parametrize(
    ("pred_shape", "target"),
    [
        ((4,), np.array([1, 0, 0, 1])),
        ((4, 1), np.array([1, 0, 0, 1])),
        ((4, 1), np.array([[1], [0], [0], [1]])),
        ((3, 2), np.array([[1.0, 0.0], [0.3, 1.0], [0.0, 0.8]])),  # soft targets
    ],
)
def test_binary_cross_entropy_on_probabilities(pred_shape, target):
    p = RNG.uniform(0.05, 0.95, pred_shape)
    t = target.reshape(pred_shape).astype(float)
    expected = np.mean(-t * np.log(p) - (1 - t) * np.log(1 - p))
    value, g = value_and_grad(losses.binary_cross_entropy, p, target)
    assert value == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(g, (p - t) / (p * (1 - p)) / p.size, rtol=1e-12)
    check_gradient(losses.binary_cross_entropy, p, target)


@pytest.mark.parametrize("pred_shape", [(4,), (4, 1)])
def test_binary_cross_entropy_from_logits(pred_shape):
    z = RNG.normal(size=pred_shape) * 3
    y = np.array([1, 0, 0, 1])
    t = y.reshape(pred_shape).astype(float)
    s = np_sigmoid(z)
    expected = np.mean(-t * np.log(s) - (1 - t) * np.log(1 - s))
    value, g = value_and_grad(losses.binary_cross_entropy, z, y, from_logits=True)
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(g, (s - t) / z.size, rtol=1e-13)
    check_gradient(losses.binary_cross_entropy, z, y, from_logits=True)


# --------------------------------------------------------------------------- categorical


LABELS = np.array([2, 0, 1, 1, 0])
ONEHOT = np.eye(3)[LABELS]


@pytest.mark.parametrize(
    "target", [LABELS, ONEHOT, LABELS.astype(float)], ids=["labels", "onehot", "float_labels"]
)
def test_categorical_cross_entropy_on_probabilities(target):
    logits = RNG.normal(size=(5, 3))
    p = np.exp(np_log_softmax(logits))
    expected = -np.mean(np.log(p[np.arange(5), LABELS]))
    value, g = value_and_grad(losses.categorical_cross_entropy, p, target)
    assert value == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(g, -ONEHOT / p / 5, rtol=1e-14)
    check_gradient(losses.categorical_cross_entropy, p, target)


@pytest.mark.parametrize("target", [LABELS, ONEHOT], ids=["labels", "onehot"])
def test_categorical_cross_entropy_from_logits(target):
    z = RNG.normal(size=(5, 3)) * 2
    logp = np_log_softmax(z)
    value, g = value_and_grad(losses.categorical_cross_entropy, z, target, from_logits=True)
    assert value == pytest.approx(-np.mean(logp[np.arange(5), LABELS]), rel=1e-14)
    np.testing.assert_allclose(g, (np.exp(logp) - ONEHOT) / 5, rtol=1e-12, atol=1e-16)
    check_gradient(losses.categorical_cross_entropy, z, target, from_logits=True)


def test_categorical_cross_entropy_with_soft_targets():
    z = RNG.normal(size=(4, 3))
    soft = RNG.dirichlet(np.ones(3), size=4)
    value, g = value_and_grad(losses.categorical_cross_entropy, z, soft, from_logits=True)
    assert value == pytest.approx(-np.sum(soft * np_log_softmax(z)) / 4, rel=1e-14)
    np.testing.assert_allclose(g, (np.exp(np_log_softmax(z)) - soft) / 4, rtol=1e-12, atol=1e-16)
    check_gradient(losses.categorical_cross_entropy, z, soft, from_logits=True)


@pytest.mark.parametrize(
    ("pred_shape", "target"),
    [((6,), np.array([0, 1, 1, 0, 1, 0])), ((6, 1), np.array([0, 1, 1, 0, 1, 0])),
     ((6, 3), np.array([0, 2, 1, 1, 2, 0]))],
)  # fmt: skip
def test_log_loss_dispatches_on_the_shape(pred_shape, target):
    if pred_shape[-1] == 3 and len(pred_shape) == 2:
        pred = np.exp(np_log_softmax(RNG.normal(size=pred_shape)))
        expected = -np.mean(np.log(pred[np.arange(6), target]))
    else:
        pred = RNG.uniform(0.05, 0.95, pred_shape)
        p, t = pred.ravel(), target
        expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert losses.log_loss(pred, target).item() == pytest.approx(expected, rel=1e-14)
    check_gradient(losses.log_loss, pred, target)


# --------------------------------------------------------------------------- fused paths


@pytest.mark.parametrize("target", [LABELS, ONEHOT], ids=["labels", "onehot"])
@pytest.mark.parametrize("loss", [losses.categorical_cross_entropy, losses.log_loss])
def test_softmax_then_cross_entropy_is_the_from_logits_path(loss, target):
    z0 = RNG.normal(size=(5, 3)) * 4
    fused_value, fused_grad = ds.value_and_grad(lambda z: loss(ops.softmax(z), target))(z0)
    value, g = ds.value_and_grad(lambda z: loss(z, target, from_logits=True))(z0)
    assert fused_value == value
    np.testing.assert_array_equal(fused_grad, g)
    z = ds.Tensor(z0, requires_grad=True)
    assert loss(ops.softmax(z), target).op == "softmax_cross_entropy"
    # and it is the cross-entropy of the softmax probabilities
    p = np.exp(np_log_softmax(z0))
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(5), LABELS])), rel=1e-13)


@pytest.mark.parametrize(
    ("loss", "shape"),
    [
        (losses.binary_cross_entropy, (4,)),
        (losses.binary_cross_entropy, (4, 1)),
        (losses.binary_cross_entropy, (2, 2)),
        (losses.log_loss, (4,)),
        (losses.log_loss, (4, 1)),
    ],
)
def test_sigmoid_then_binary_cross_entropy_is_the_from_logits_path(loss, shape):
    z0 = RNG.normal(size=shape) * 4
    y = np.array([1, 0, 1, 1]).reshape(shape)
    fused_value, fused_grad = ds.value_and_grad(lambda z: loss(ops.sigmoid(z), y))(z0)
    value, g = ds.value_and_grad(lambda z: loss(z, y, from_logits=True))(z0)
    assert fused_value == value
    np.testing.assert_array_equal(fused_grad, g)
    z = ds.Tensor(z0, requires_grad=True)
    assert loss(ops.sigmoid(z), y).op == "sigmoid_binary_cross_entropy"
    # -log s = log(1 + e^-z) and -log(1 - s) = log(1 + e^z), without the rounding of 1 - s
    expected = np.mean(y * np.logaddexp(0, -z0) + (1 - y) * np.logaddexp(0, z0))
    assert value == pytest.approx(expected, rel=1e-13)


def test_softmax_over_another_axis_is_not_fused_but_still_right():
    z0 = RNG.normal(size=(3, 3))
    z = ds.Tensor(z0, requires_grad=True)
    p = ops.softmax(z, axis=0)
    cost = losses.categorical_cross_entropy(p, np.array([0, 2, 1]))
    assert cost.op != "softmax_cross_entropy"
    e = np.exp(z0)
    p0 = e / e.sum(axis=0, keepdims=True)
    assert cost.item() == pytest.approx(-np.mean(np.log(p0[[0, 1, 2], [0, 2, 1]])), rel=1e-13)


# --------------------------------------------------------------------------- extremes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_finite_exact_values_and_gradients(dtype):
    z = ds.Tensor(np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype), requires_grad=True)
    y = np.array([1, 1, 0, 0])
    cost = losses.binary_cross_entropy(z, y, from_logits=True)
    cost.backward()
    # per sample: 0, 1e4, 1e4, 0 (the wrong side costs |z|)
    assert cost.item() == 5e3 and cost.dtype == dtype
    np.testing.assert_array_equal(z.grad, np.array([0, -1, 1, 0]) / 4)

    z = ds.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype), requires_grad=True)
    cost = losses.categorical_cross_entropy(ops.softmax(z), np.array([0, 0]))
    cost.backward()
    assert cost.item() == 1e4 and cost.dtype == dtype  # (0 + 2e4) / 2
    assert np.all(np.isfinite(z.grad))
    np.testing.assert_allclose(z.grad, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)

    z = ds.Tensor(np.array([[1e4], [-1e4]], dtype=dtype), requires_grad=True)
    cost = losses.binary_cross_entropy(ops.sigmoid(z), np.array([0, 1]))
    cost.backward()
    assert cost.item() == 1e4 and np.all(np.isfinite(z.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "loss", [losses.binary_cross_entropy, losses.categorical_cross_entropy, losses.log_loss]
)
def test_probabilities_exactly_0_and_1_give_finite_values_and_gradients(loss, dtype):
    if loss is losses.binary_cross_entropy:
        pred, target = np.array([0.0, 1.0, 0.0, 1.0]), np.array([1, 0, 0, 1])
        right, right_target = np.array([1.0, 0.0]), np.array([1, 0])
    else:
        pred, target = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 1])
        right, right_target = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 0])
    p = ds.Tensor(pred.astype(dtype), requires_grad=True)
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        cost = loss(p, target)
        cost.backward()
    assert cost.dtype == dtype
    assert np.isfinite(cost.item()) and np.all(np.isfinite(p.grad))
    # a confident wrong answer costs a lot, but a finite amount (the log of the clipped p)
    assert cost.item() >= -0.5 * np.log(np.finfo(dtype).eps) * 0.99
    # all right with certainty: (almost) no cost
    right = ds.Tensor(right.astype(dtype), requires_grad=True)
    assert 0 <= loss(right, right_target).item() < 1e-6


# --------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("case", ["binary_1d", "binary_column", "multiclass"])
def test_log_loss_equals_scikit_learn(case):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    n = 40
    if case == "multiclass":
        proba = rng.dirichlet(np.ones(4), size=n)
        y = np.arange(n) % 4
    else:
        proba = rng.uniform(0.01, 0.99, n)
        y = rng.integers(0, 2, n)
        if case == "binary_column":
            proba = proba[:, None]
    ours = losses.log_loss(proba, y).item()
    assert ours == pytest.approx(metrics.log_loss(y, proba), abs=1e-6, rel=1e-6)
    ours32 = losses.log_loss(proba.astype(np.float32), y).item()
    assert ours32 == pytest.approx(metrics.log_loss(y, proba), abs=1e-5, rel=1e-5)


# --------------------------------------------------------------------------- PyTorch


def _compare_with_torch(ours_fn, torch_fn, pred):
    torch = pytest.importorskip("torch")
    value, g = ds.value_and_grad(ours_fn)(pred)
    tp = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    ref = torch_fn(tp)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12, abs=1e-15)
    tg = tp.grad.numpy()
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-15 * max(1.0, np.abs(tg).max()))


def test_cross_entropy_equals_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z = RNG.normal(size=(8, 4)) * 3
    y = RNG.integers(0, 4, 8)
    onehot = np.eye(4)[y]
    soft = RNG.dirichlet(np.ones(4), size=8)
    for target in (y, onehot):
        _compare_with_torch(
            lambda t, target=target: losses.categorical_cross_entropy(t, target, from_logits=True),
            lambda t: F.cross_entropy(t, torch.tensor(y)),
            z,
        )
    _compare_with_torch(
        lambda t: losses.categorical_cross_entropy(t, soft, from_logits=True),
        lambda t: F.cross_entropy(t, torch.tensor(soft)),
        z,
    )
    # through an explicit softmax (fused) and on probabilities (not fused)
    _compare_with_torch(
        lambda t: losses.categorical_cross_entropy(ops.softmax(t), y),
        lambda t: F.cross_entropy(t, torch.tensor(y)),
        z,
    )
    p = np.exp(np_log_softmax(z))
    _compare_with_torch(
        lambda t: losses.categorical_cross_entropy(t, y),
        lambda t: F.nll_loss(torch.log(t), torch.tensor(y)),
        p,
    )


def test_binary_cross_entropy_equals_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z = RNG.normal(size=(6, 2)) * 3
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0], [0.25, 0.75]])
    ty = torch.tensor(y, dtype=torch.float64)
    _compare_with_torch(
        lambda t: losses.binary_cross_entropy(t, y, from_logits=True),
        lambda t: F.binary_cross_entropy_with_logits(t, ty),
        z,
    )
    _compare_with_torch(
        lambda t: losses.binary_cross_entropy(ops.sigmoid(t), y),
        lambda t: F.binary_cross_entropy_with_logits(t, ty),
        z,
    )
    _compare_with_torch(
        lambda t: losses.binary_cross_entropy(t, y),
        lambda t: F.binary_cross_entropy(t, ty),
        np_sigmoid(z),
    )


def test_mse_equals_torch():
    torch = pytest.importorskip("torch")
    pred = RNG.normal(size=(7, 3))
    target = RNG.normal(size=(7, 3))
    _compare_with_torch(
        lambda t: losses.mse(t, target),
        lambda t: torch.nn.functional.mse_loss(t, torch.tensor(target)),
        pred,
    )


# --------------------------------------------------------------------------- errors


def test_labels_outside_the_classes():
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"labels from 0 to 3 .* 3 outputs"):
        losses.categorical_cross_entropy(p, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="labels from -1"):
        losses.categorical_cross_entropy(p, np.array([0, -1, 2]), from_logits=True)


def test_non_integer_labels():
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="non-integer"):
        losses.categorical_cross_entropy(p, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(TypeError, match="integer class labels"):
        losses.categorical_cross_entropy(p, np.array(["a", "b", "c"]))


def test_binary_targets_outside_0_1():
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        losses.binary_cross_entropy(np.array([0.5, 0.5]), np.array([0, 2]))
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        losses.binary_cross_entropy(np.array([0.5, 0.5]), np.array([-1, 1]), from_logits=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.categorical_cross_entropy(np.full((2, 2), 0.5), np.array([[2.0, 0.0], [0, 1]]))


@pytest.mark.parametrize(
    ("loss", "pred", "target", "pattern"),
    [
        (losses.mse, np.zeros((4, 2)), np.zeros(4), "shape"),
        (losses.mse, np.zeros(4), np.zeros(5), "shape"),
        (losses.binary_cross_entropy, np.full((4, 1), 0.5), np.zeros(3), "shape"),
        (losses.categorical_cross_entropy, np.full((4, 3), 0.3), np.zeros((4, 2)), "shape"),
        (losses.categorical_cross_entropy, np.full((4, 3), 0.3), np.zeros(3, int), "3 labels"),
        (losses.categorical_cross_entropy, np.full(4, 0.3), np.zeros(4, int), "n_classes"),
    ],
)
def test_shape_mismatch(loss, pred, target, pattern):
    with pytest.raises(ValueError, match=pattern):
        loss(pred, target)


@pytest.mark.parametrize(
    ("loss", "pred", "target"),
    [
        (losses.mse, np.zeros(3), np.array([0.0, np.nan, 1.0])),
        (losses.binary_cross_entropy, np.full(3, 0.5), np.array([0.0, np.nan, 1.0])),
        (losses.categorical_cross_entropy, np.full((2, 2), 0.5), np.array([[1, 0], [np.nan, 1]])),
        (losses.mse, np.zeros(2), np.array([np.inf, 0.0])),
    ],
)
def test_nan_target(loss, pred, target):
    with pytest.raises(ValueError, match="NaN"):
        loss(pred, target)


def test_nan_label():
    with pytest.raises(ValueError, match="non-integer"):
        losses.categorical_cross_entropy(np.full((2, 2), 0.5), np.array([0.0, np.nan]))


def test_unknown_loss_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="hinge") as info:
        losses.get("hinge")
    for name in ("mse", "binary_cross_entropy", "categorical_cross_entropy", "log_loss"):
        assert name in str(info.value)


def test_get_accepts_names_and_callables():
    def my_loss(pred, target, from_logits=False):
        return losses.mse(pred, target)

    assert losses.get(my_loss) is my_loss
    assert losses.get("MSE") is losses.mse
    assert losses.get("cross_entropy") is losses.categorical_cross_entropy
    assert losses.get("bce") is losses.binary_cross_entropy
    for name, fn in losses.LOSSES.items():
        assert losses.get(name) is fn
    assert losses.is_classification("log_loss") and not losses.is_classification("mse")
    assert not losses.is_classification(my_loss)
