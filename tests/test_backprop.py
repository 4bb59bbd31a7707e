"""descend.backprop: the per-layer view agrees with backward(), with the chain-rule formulas of
the textbook, and with central differences of the cost."""

import numpy as np
import pytest

import descend as ds
from descend import nn

RNG = np.random.default_rng(31)


def _net(dtype=np.float64):
    """A tiny 3-4-3-2 network with a ReLU and a sigmoid hidden layer and a softmax output."""
    model = nn.Sequential(
        nn.Dense(3, 4, activation="relu", seed=0, dtype=dtype),
        nn.Dense(4, 3, activation="sigmoid", seed=1, dtype=dtype),
        nn.Dense(3, 2, activation="softmax", seed=2, dtype=dtype),
    )
    biases = np.random.default_rng(99)  # every call builds the same network
    for layer in model:
        layer.bias.data[...] = biases.normal(size=layer.bias.shape) * 0.1
    return model


X = RNG.normal(size=(6, 3))
Y = np.array([0, 1, 1, 0, 1, 0])
ONEHOT = np.eye(2)[Y]
LOSS = "categorical_cross_entropy"


def _relu_prime(z, a):
    return (z > 0).astype(z.dtype)


def _sigmoid_prime(z, a):
    return a * (1 - a)


def test_one_entry_per_layer_with_the_documented_shapes():
    model = _net()
    view = ds.backprop(model, X, Y, LOSS)
    assert isinstance(view, ds.BackpropResult) and len(view) == 3
    assert [lg.name for lg in view] == ["0", "1", "2"]
    n = X.shape[0]
    for lg, layer in zip(view, model, strict=True):
        assert isinstance(lg, ds.LayerGradients) and lg.layer is layer
        i, o = layer.in_features, layer.out_features
        assert lg.a_in.shape == (n, i) and lg.dC_da_in.shape == (n, i)
        assert lg.z.shape == lg.a_out.shape == lg.dC_dz.shape == (n, o)
        assert lg.dC_dW.shape == (i, o) and lg.dC_db.shape == (o,)
    # activations flow: the input of layer 0 is X, the output of layer l the input of l + 1
    np.testing.assert_array_equal(view[0].a_in, X)
    for before, after in zip(view.layers, view.layers[1:], strict=False):
        np.testing.assert_array_equal(before.a_out, after.a_in)
    np.testing.assert_allclose(view[-1].a_out, model(X).data, rtol=1e-15)
    expected_cost = -np.mean(np.log(view[-1].a_out[np.arange(6), Y]))
    assert view.cost == pytest.approx(expected_cost, rel=1e-12)


def test_weight_gradients_are_what_backward_leaves():
    model = _net()
    model(X).sum().backward()  # stale gradients: backprop starts from zero
    view = ds.backprop(model, X, Y, LOSS)
    for lg, layer in zip(view, model, strict=True):
        assert np.array_equal(lg.dC_dW, layer.weight.grad)
        assert np.array_equal(lg.dC_db, layer.bias.grad)
    reference = _net()
    reference.zero_grad()
    ds.losses.categorical_cross_entropy(reference(X), Y).backward()
    for lg, layer in zip(view, reference, strict=True):
        assert np.array_equal(lg.dC_dW, layer.weight.grad)
        assert np.array_equal(lg.dC_db, layer.bias.grad)


def test_the_textbook_relations_between_the_derivatives():
    model = _net()
    view = ds.backprop(model, X, Y, LOSS)
    for lg, layer in zip(view, model, strict=True):
        W = layer.weight.data
        # dC/da_{l-1} = dC/dz_l W_l^T;  dC/dW_l = a_{l-1}^T dC/dz_l;  dC/db_l = sum_i dC/dz_l
        np.testing.assert_allclose(lg.dC_da_in, lg.dC_dz @ W.T, rtol=1e-13, atol=1e-17)
        np.testing.assert_allclose(lg.dC_dW, lg.a_in.T @ lg.dC_dz, rtol=1e-13, atol=1e-17)
        np.testing.assert_allclose(lg.dC_db, lg.dC_dz.sum(axis=0), rtol=1e-13, atol=1e-17)
        # the forward pass: z = a_in W + b, a_out = f(z)
        np.testing.assert_allclose(lg.z, lg.a_in @ W + layer.bias.data, rtol=1e-14)


@pytest.mark.parametrize(("index", "prime"), [(0, _relu_prime), (1, _sigmoid_prime)])
def test_chain_rule_through_the_activation(index, prime):
    view = ds.backprop(_net(), X, Y, LOSS)
    lg = view[index]
    dC_da_out = view[index + 1].dC_da_in  # what the next layer passed back
    np.testing.assert_allclose(lg.dC_dz, dC_da_out * prime(lg.z, lg.a_out), rtol=1e-13, atol=1e-17)
    assert np.any(lg.dC_dz != 0)


def test_softmax_cross_entropy_output_delta_is_p_minus_y_over_n():
    view = ds.backprop(_net(), X, Y, LOSS)
    p = view[-1].a_out
    np.testing.assert_allclose(view[-1].dC_dz, (p - ONEHOT) / len(X), rtol=1e-13, atol=1e-17)
    onehot_view = ds.backprop(_net(), X, ONEHOT, LOSS)
    np.testing.assert_allclose(onehot_view[-1].dC_dz, view[-1].dC_dz, rtol=1e-14)


def test_sigmoid_binary_cross_entropy_output_delta():
    model = nn.Sequential(
        nn.Dense(3, 4, activation="tanh", seed=0, dtype=np.float64),
        nn.Dense(4, 1, activation="sigmoid", seed=1, dtype=np.float64),
    )
    view = ds.backprop(model, X, Y, "binary_cross_entropy")
    p = view[-1].a_out
    np.testing.assert_allclose(view[-1].dC_dz, (p - Y[:, None]) / len(X), rtol=1e-13)
    tanh = view[0]
    np.testing.assert_allclose(tanh.dC_dz, view[1].dC_da_in * (1 - tanh.a_out**2), rtol=1e-13)


def _numeric_cost_gradient(model, X, y, loss, eps=1e-6):
    loss_fn = ds.losses.get(loss)

    def cost():
        with ds.no_grad():
            return loss_fn(model(X), y).item()

    grads = {}
    for name, p in model.named_parameters().items():
        g = np.zeros_like(p.data)
        for j in np.ndindex(p.shape):
            original = p.data[j]
            p.data[j] = original + eps
            plus = cost()
            p.data[j] = original - eps
            minus = cost()
            p.data[j] = original
            g[j] = (plus - minus) / (2 * eps)
        grads[name] = g
    gx = np.zeros_like(X)
    for j in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[j] += eps
        Xm[j] -= eps
        with ds.no_grad():
            gx[j] = (loss_fn(model(Xp), y).item() - loss_fn(model(Xm), y).item()) / (2 * eps)
    return grads, gx


@pytest.mark.parametrize(
    ("loss", "y"), [(LOSS, Y), ("mse", RNG.normal(size=(6, 2)))], ids=["cross_entropy", "mse"]
)
def test_against_central_differences_of_the_cost(loss, y):
    model = _net()
    view = ds.backprop(model, X, y, loss)
    numeric, dC_dX = _numeric_cost_gradient(model, X, y, loss)
    for lg in view:
        np.testing.assert_allclose(lg.dC_dW, numeric[f"{lg.name}.weight"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(lg.dC_db, numeric[f"{lg.name}.bias"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(view[0].dC_da_in, dC_dX, rtol=1e-6, atol=1e-9)


def test_activation_layers_and_a_single_dense_layer():
    model = nn.Sequential(
        nn.Dense(3, 4, seed=0, dtype=np.float64), nn.Activation("tanh"),
        nn.Dense(4, 2, seed=1, dtype=np.float64),
    )  # fmt: skip
    target = RNG.normal(size=(6, 2))
    view = ds.backprop(model, X, target)  # mse by default
    assert len(view) == 3
    act = view[1]
    assert act.z is None and act.dC_dz is None and act.dC_dW is None and act.dC_db is None
    np.testing.assert_allclose(act.a_out, np.tanh(act.a_in), rtol=1e-15)
    np.testing.assert_allclose(act.dC_da_in, view[2].dC_da_in * (1 - act.a_out**2), rtol=1e-13)
    # the linear Dense layer before it: dC/dz = dC/da (identity activation)
    np.testing.assert_allclose(view[0].dC_dz, act.dC_da_in, rtol=1e-15)

    layer = nn.Dense(3, 2, seed=0, dtype=np.float64)
    single = ds.backprop(layer, X, target, "mse")
    assert len(single) == 1
    pred = X @ layer.weight.data + layer.bias.data
    np.testing.assert_allclose(single[0].dC_dz, 2 * (pred - target) / pred.size, rtol=1e-13)
    assert np.array_equal(single[0].dC_dW, layer.weight.grad)


def test_float32_model_and_repeated_calls():
    model = _net(np.float32)
    first = ds.backprop(model, X, Y, LOSS)
    assert first[0].dC_dW.dtype == np.float32 and first[0].a_in.dtype == np.float32
    saved = [lg.dC_dW.copy() for lg in first]
    second = ds.backprop(model, X, Y, LOSS)
    for a, lg in zip(saved, second, strict=True):
        np.testing.assert_array_equal(a, lg.dC_dW)  # reset, not accumulated
    reference = ds.backprop(_net(np.float64), X, Y, LOSS)
    for lg32, lg64 in zip(second, reference, strict=True):
        np.testing.assert_allclose(lg32.dC_dW, lg64.dC_dW, rtol=1e-4, atol=1e-6)
