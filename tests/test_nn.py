"""descend.nn: Dense, Sequential, initializers, parameters and state, configs, one training step
worked out by hand, and the gradients of an MLP against PyTorch."""

import json

import numpy as np
import pytest

import descend as ds
from descend import nn
from descend.nn import init as initializers

# --------------------------------------------------------------------------- Dense


def test_dense_shapes_and_forward_value():
    layer = nn.Dense(3, 2, activation="tanh", seed=0, dtype=np.float64)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    assert layer.weight.requires_grad and layer.bias.requires_grad
    assert layer.in_features == 3 and layer.out_features == 2
    np.testing.assert_array_equal(layer.bias.data, np.zeros(2))
    layer.bias.data[...] = [0.5, -0.25]
    x = np.random.default_rng(1).normal(size=(5, 3))
    out = layer(x)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out.data, np.tanh(x @ layer.weight.data + [0.5, -0.25]), rtol=1e-14)
    z = layer.pre_activation(x)
    np.testing.assert_allclose(z.data, x @ layer.weight.data + [0.5, -0.25], rtol=1e-14)


def test_dense_without_bias():
    layer = nn.Dense(4, 3, bias=False, seed=0, dtype=np.float64)
    assert layer.bias is None
    assert list(layer.named_parameters()) == ["weight"]
    x = np.ones((2, 4))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data, rtol=1e-15)
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, x.T @ np.ones((2, 3)))


def test_activation_by_name_callable_or_none():
    x = np.random.default_rng(2).normal(size=(4, 3))
    w = np.random.default_rng(3).normal(size=(3, 2))
    z = x @ w
    expected = {
        "relu": np.maximum(z, 0),
        "ReLU": np.maximum(z, 0),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "tanh": np.tanh(z),
        "leaky_relu": np.where(z > 0, z, 0.01 * z),
        "softmax": np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
        "linear": z,
        None: z,
    }
    for activation, value in expected.items():
        layer = nn.Dense(3, 2, activation=activation, dtype=np.float64)
        layer.weight.data[...] = w
        np.testing.assert_allclose(layer(x).data, value, rtol=1e-13, err_msg=str(activation))

    def double(t):
        return t * 2

    layer = nn.Dense(3, 2, activation=double, dtype=np.float64)
    layer.weight.data[...] = w
    np.testing.assert_allclose(layer(x).data, 2 * z, rtol=1e-15)
    assert nn.get_activation(double) is double


def test_unknown_activation_lists_the_names():
    with pytest.raises(ValueError, match="swish") as info:
        nn.Dense(3, 2, activation="swish")
    for name in nn.ACTIVATIONS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="relu"):
        nn.Activation("gelu")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_dense_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="in_features"):
        nn.Dense(bad, 2)
    with pytest.raises(ValueError, match="out_features"):
        nn.Dense(2, bad)


def test_in_features_mismatch_at_call_time():
    layer = nn.Dense(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"Dense\(3, 2.*\(n_samples, 3\).*\(5, 4\).*in_features"):
        layer(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(n_samples, 3\)"):
        layer(np.ones(3))  # one sample must be a row, shape (1, 3)
    model = nn.Sequential(nn.Dense(3, 4), nn.Dense(4, 2))
    with pytest.raises(ValueError, match=r"\(n_samples, 3\)"):
        model(np.ones((2, 5)))


def test_in_features_mismatch_at_sequential_construction():
    with pytest.raises(ValueError, match=r"layer 2 .*in_features=5.* gives 4 outputs"):
        nn.Sequential(nn.Dense(3, 4), nn.Activation("relu"), nn.Dense(5, 2))
    with pytest.raises(TypeError, match="layer 1 of Sequential"):
        nn.Sequential(nn.Dense(3, 4), "relu")


# --------------------------------------------------------------------------- initializers


def test_he_initialisation_statistics():
    layer = nn.Dense(1000, 300, activation="relu", seed=0)  # "auto" picks He for ReLU
    w = layer.weight.data.astype(np.float64)
    assert abs(w.std() - np.sqrt(2 / 1000)) < 0.02 * np.sqrt(2 / 1000)
    assert abs(w.mean()) < 0.02 * np.sqrt(2 / 1000)
    limit = np.sqrt(6 / 400)
    u = initializers.he_uniform((400, 300), np.random.default_rng(0), np.float64)
    assert np.abs(u).max() <= limit and np.abs(u).max() > 0.99 * limit
    assert abs(u.std() - limit / np.sqrt(3)) < 0.02 * limit


def test_glorot_initialisation_statistics():
    fan_in, fan_out = 300, 200
    limit = np.sqrt(6 / (fan_in + fan_out))
    layer = nn.Dense(fan_in, fan_out, activation="tanh", seed=0)  # "auto" picks Glorot
    w = layer.weight.data.astype(np.float64)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.02 * limit
    g = initializers.glorot_normal((fan_in, fan_out), np.random.default_rng(0), np.float64)
    assert abs(g.std() - np.sqrt(2 / (fan_in + fan_out))) < 0.02 * np.sqrt(2 / 500)
    n = initializers.normal((300, 200), np.random.default_rng(0), np.float64)
    assert abs(n.std() - 0.01) < 0.0002
    assert not initializers.zeros((3, 2)).any()


def test_initializer_by_name_and_callable():
    a = nn.Dense(50, 40, activation="tanh", init="he", seed=3)
    b = nn.Dense(50, 40, activation="relu", seed=3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)  # same rule, same seed
    c = nn.Dense(50, 40, activation="relu", init="xavier", seed=3)
    d = nn.Dense(50, 40, activation="tanh", seed=3)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    e = nn.Dense(3, 2, init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype))
    np.testing.assert_array_equal(e.weight.data, np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="returned shape"):
        nn.Dense(3, 2, init=lambda shape, rng, dtype: np.zeros((2, 3), dtype))
    with pytest.raises(ValueError, match="glorot"):
        nn.Dense(3, 2, init="lecun")


def test_seeding():
    same = [nn.Dense(6, 5, seed=7).weight.data for _ in range(2)]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(
        nn.Dense(6, 5, seed=7).weight.data, nn.Dense(6, 5, seed=8).weight.data
    )
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(
        nn.Dense(6, 5, seed=g1).weight.data, nn.Dense(6, 5, seed=g2).weight.data
    )
    m1, m2 = nn.mlp([4, 8, 3], seed=0), nn.mlp([4, 8, 3], seed=0)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    # one generator for the whole network: the layers do not repeat each other's draws
    m = nn.mlp([5, 5, 5], seed=0)
    assert not np.array_equal(m[0].weight.data, m[1].weight.data)


def test_dtype_float32_by_default_float64_on_request_others_rejected():
    layer = nn.Dense(3, 2)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer(np.ones((1, 3))).dtype == np.float32  # float64 input follows the layer
    wide = nn.Dense(3, 2, dtype=np.float64)
    assert wide.weight.dtype == np.float64 and wide.bias.dtype == np.float64
    assert nn.Dense(3, 2, dtype="float64").weight.dtype == np.float64
    assert nn.mlp([3, 2], dtype=np.float64).dtype == np.float64
    for bad in (np.float16, np.int32, "complex128"):
        with pytest.raises(ValueError, match="float32"):
            nn.Dense(3, 2, dtype=bad)


# --------------------------------------------------------------------------- parameters and state


def _model(dtype=np.float64):
    return nn.Sequential(
        nn.Dense(3, 4, activation="relu", seed=0, dtype=dtype),
        nn.Activation("tanh"),
        nn.Dense(4, 2, seed=1, dtype=dtype),
    )


def test_named_parameters_names_and_order():
    model = _model()
    names = list(model.named_parameters())
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    params = model.parameters()
    assert [id(p) for p in params] == [id(p) for p in model.named_parameters().values()]
    assert params[0] is model[0].weight and params[3] is model[2].bias
    assert len(model) == 3 and list(model) == model.layers
    assert list(nn.mlp([2, 3, 4, 1]).named_parameters()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias",
    ]  # fmt: skip
    assert [type(m).__name__ for m in model.modules()] == [
        "Sequential", "Dense", "Activation", "Dense",
    ]  # fmt: skip


def test_sequential_accepts_a_list():
    layers = [nn.Dense(2, 3), nn.Dense(3, 1)]
    model = nn.Sequential(layers)
    assert model.layers == layers and list(model.named_parameters())[0] == "0.weight"


def test_zero_grad():
    model = _model()
    model(np.ones((2, 3))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_is_a_copy():
    model = _model()
    state = model.state_dict()
    assert list(state) == list(model.named_parameters())
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(state[name], p.data)
        assert not np.shares_memory(state[name], p.data)
    before = model[0].weight.data.copy()
    state["0.weight"][...] = 123.0
    np.testing.assert_array_equal(model[0].weight.data, before)


def test_load_state_dict_in_place():
    source, target = (
        _model(),
        nn.Sequential(
            nn.Dense(3, 4, activation="relu", seed=5, dtype=np.float64),
            nn.Activation("tanh"),
            nn.Dense(4, 2, seed=6, dtype=np.float64),
        ),
    )
    arrays = {name: p.data for name, p in target.named_parameters().items()}
    target.load_state_dict(source.state_dict())
    for name, p in target.named_parameters().items():
        assert p.data is arrays[name]  # the same array objects: optimizers keep their references
        np.testing.assert_array_equal(p.data, source.named_parameters()[name].data)
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(target(x).data, source(x).data)


def test_load_state_dict_casts_and_checks():
    small = _model(np.float32)
    small.load_state_dict(_model(np.float64).state_dict())
    assert small.dtype == np.float32
    np.testing.assert_allclose(small[0].weight.data, _model()[0].weight.data, rtol=1e-7)

    model = _model()
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "2.bias"}
    with pytest.raises(ValueError, match=r"missing \['2.bias'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected \['3.weight'\]"):
        model.load_state_dict({**state, "3.weight": np.zeros(1)})
    before = model[2].bias.data.copy()
    model.load_state_dict({"0.bias": np.full(4, 0.5), "junk": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(model[0].bias.data, np.full(4, 0.5))
    np.testing.assert_array_equal(model[2].bias.data, before)
    with pytest.raises(ValueError, match=r"state\['0.weight'\] has shape \(4, 3\)"):
        model.load_state_dict({**state, "0.weight": np.zeros((4, 3))})


# --------------------------------------------------------------------------- configs


def test_get_config_from_config_round_trip():
    model = nn.Sequential(
        nn.Dense(3, 5, activation="relu", seed=0),
        nn.Dense(5, 4, activation="tanh", bias=False, seed=1),
        nn.Activation("sigmoid"),
        nn.Dense(4, 2, activation="softmax", dtype=np.float64, seed=2),
    )
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config  # JSON all the way down
    rebuilt = nn.from_config(config)
    assert rebuilt.get_config() == config
    assert [type(m).__name__ for m in rebuilt] == ["Dense", "Dense", "Activation", "Dense"]
    assert rebuilt[1].bias is None and rebuilt[3].weight.dtype == np.float64
    rebuilt.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).normal(size=(3, 3))
    np.testing.assert_array_equal(rebuilt(x).data, model(x).data)


def test_config_errors():
    with pytest.raises(ValueError, match="custom activation"):
        nn.Dense(2, 2, activation=lambda t: t).get_config()
    with pytest.raises(ValueError, match="custom activation"):
        nn.Activation(lambda t: t).get_config()
    with pytest.raises(ValueError, match=r"unknown module class 'Conv2d'.*Dense"):
        nn.from_config({"class": "Conv2d"})
    with pytest.raises(ValueError, match="'class' key"):
        nn.from_config({"layers": []})
    with pytest.raises(NotImplementedError, match="get_config"):
        nn.Module().get_config()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(np.ones(2))


def test_custom_module_registration():
    @nn.register_module
    class ScaledDense(nn.Module):
        def __init__(self, n_in, n_out, scale=2.0):
            super().__init__()
            self.n_in, self.n_out = n_in, n_out
            self.inner = nn.Dense(n_in, n_out, seed=0, dtype=np.float64)
            self.scale = ds.Tensor(np.full(n_out, scale), requires_grad=True)
            self.not_a_parameter = ds.Tensor(np.ones(n_out))

        def forward(self, x):
            return self.inner(x) * self.scale

        def get_config(self):
            return {"class": "ScaledDense", "n_in": self.n_in, "n_out": self.n_out}

    module = ScaledDense(3, 2)
    assert list(module.named_parameters()) == ["scale", "inner.weight", "inner.bias"]
    model = nn.Sequential(module, nn.Dense(2, 1, dtype=np.float64))
    assert list(model.named_parameters())[:3] == ["0.scale", "0.inner.weight", "0.inner.bias"]
    rebuilt = nn.from_config(model.get_config())
    assert isinstance(rebuilt[0], ScaledDense)
    rebuilt.load_state_dict(model.state_dict())
    x = np.ones((2, 3))
    np.testing.assert_array_equal(rebuilt(x).data, model(x).data)
    # re-assigning an attribute replaces the registration
    module.scale = None
    assert "scale" not in module.named_parameters()


def test_mlp():
    model = nn.mlp([4, 8, 6, 3], activation="tanh", output_activation="softmax", seed=0)
    assert [(m.in_features, m.out_features) for m in model] == [(4, 8), (8, 6), (6, 3)]
    assert [m.get_config()["activation"] for m in model] == ["tanh", "tanh", "softmax"]
    assert model.dtype == np.float32
    out = model(np.ones((5, 4)))
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out.data.sum(axis=1), 1.0, rtol=1e-6)
    assert nn.mlp([2, 1])[0].get_config()["activation"] == "linear"
    with pytest.raises(ValueError, match="at least"):
        nn.mlp([3])


def test_activation_layers():
    x = np.array([[-1.0, 0.5]])
    np.testing.assert_array_equal(nn.ReLU()(x).data, [[0.0, 0.5]])
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x))
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Softmax()(x).data, np.exp(x) / np.exp(x).sum())
    assert nn.ReLU().get_config() == {"class": "Activation", "activation": "relu"}
    assert nn.Activation("relu").dtype is None and nn.Activation("relu").parameters() == []


# --------------------------------------------------------------------------- one step by hand


W1 = np.array([[0.15, 0.25], [0.20, 0.30]])  # W1[i, j]: input i -> hidden unit j
B1 = np.array([0.35, 0.35])
W2 = np.array([[0.40], [0.45]])  # W2[j, 0]: hidden unit j -> output
B2 = np.array([0.60])
X1 = np.array([[0.05, 0.10]])
Y1 = np.array([0.01])
LR = 0.5


def _hand_step():
    """One GD step of a 2-2-1 sigmoid network on one sample with C = (o - y)^2, neuron by neuron."""
    x0, x1 = X1[0]
    y = Y1[0]

    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    # forward: each hidden unit sums its weighted inputs plus its bias, then squashes
    z_h = [x0 * W1[0, j] + x1 * W1[1, j] + B1[j] for j in range(2)]
    h = [sig(v) for v in z_h]
    z_o = h[0] * W2[0, 0] + h[1] * W2[1, 0] + B2[0]
    o = sig(z_o)
    # backward: dC/do = 2 (o - y), then the chain rule through each sigmoid (s' = s (1 - s))
    delta_o = 2.0 * (o - y) * o * (1.0 - o)
    dW2 = np.array([[delta_o * h[0]], [delta_o * h[1]]])
    dB2 = np.array([delta_o])
    delta_h = [delta_o * W2[j, 0] * h[j] * (1.0 - h[j]) for j in range(2)]
    dW1 = np.array([[delta_h[j] * xi for j in range(2)] for xi in (x0, x1)])
    dB1 = np.array(delta_h)
    cost = (o - y) ** 2
    new = {
        "0.weight": W1 - LR * dW1,
        "0.bias": B1 - LR * dB1,
        "1.weight": W2 - LR * dW2,
        "1.bias": B2 - LR * dB2,
    }
    grads = {"0.weight": dW1, "0.bias": dB1, "1.weight": dW2, "1.bias": dB2}
    return cost, grads, new


def _network():
    model = nn.Sequential(
        nn.Dense(2, 2, activation="sigmoid", dtype=np.float64),
        nn.Dense(2, 1, activation="sigmoid", dtype=np.float64),
    )
    model.load_state_dict({"0.weight": W1, "0.bias": B1, "1.weight": W2, "1.bias": B2})
    return model


def test_one_training_step_by_hand_with_fit():
    cost, _, new = _hand_step()
    model = _network()
    history = ds.fit(model, X1, Y1, loss="mse", optimizer=ds.optim.GD(LR), batch_size="full",
                     epochs=1, shuffle=False, progress=False)  # fmt: skip
    assert history.n_updates == 1
    assert history.step["loss"][0] == pytest.approx(cost, rel=1e-14)
    for name, p in model.named_parameters().items():
        np.testing.assert_allclose(p.data, new[name], rtol=1e-14, err_msg=name)
    # the step moved every parameter
    assert not np.allclose(model[0].weight.data, W1)


def test_one_training_step_by_hand_manually():
    cost, grads, new = _hand_step()
    model = _network()
    model.zero_grad()
    c = ds.losses.mse(model(X1), Y1)
    c.backward()
    assert c.item() == pytest.approx(cost, rel=1e-14)
    for name, p in model.named_parameters().items():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-13, err_msg=name)
    ds.optim.GD(LR).step(model.parameters())
    for name, p in model.named_parameters().items():
        np.testing.assert_allclose(p.data, new[name], rtol=1e-14, err_msg=name)


# --------------------------------------------------------------------------- PyTorch


def test_mlp_gradients_equal_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    model = nn.Sequential(
        nn.Dense(5, 7, activation="relu", seed=1, dtype=np.float64),
        nn.Dense(7, 4, activation="tanh", seed=2, dtype=np.float64),
        nn.Dense(4, 3, activation="softmax", seed=3, dtype=np.float64),
    )
    for layer in model:
        layer.bias.data[...] = rng.normal(size=layer.bias.shape) * 0.1
    X = rng.normal(size=(10, 5))
    y = rng.integers(0, 3, 10)

    cost = ds.losses.categorical_cross_entropy(model(X), y)
    cost.backward()

    linears = [torch.nn.Linear(m.in_features, m.out_features, dtype=torch.float64) for m in model]
    with torch.no_grad():
        for lin, layer in zip(linears, model, strict=True):
            lin.weight.copy_(torch.tensor(layer.weight.data.T))  # torch's weight is (out, in)
            lin.bias.copy_(torch.tensor(layer.bias.data))
    net = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1], torch.nn.Tanh(), linears[2])
    ref = torch.nn.functional.cross_entropy(net(torch.tensor(X)), torch.tensor(y))
    ref.backward()

    assert cost.item() == pytest.approx(ref.item(), rel=1e-12)
    for lin, layer in zip(linears, model, strict=True):
        np.testing.assert_allclose(
            layer.weight.grad, lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-14
        )
        np.testing.assert_allclose(layer.bias.grad, lin.bias.grad.numpy(), rtol=1e-10, atol=1e-14)
