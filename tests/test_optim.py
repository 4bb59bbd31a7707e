"""descend.optim: one step of each rule by hand, the parameter contract, state, config, errors."""

import json
import math

import numpy as np
import pytest

from descend import optim
from descend.optim import GD, SGD, Adam, AdamW, Momentum, RMSProp


class Param:
    """Stand-in for a descend.Tensor leaf: .data is updated in place, .grad is only read."""

    __slots__ = ("data", "grad")

    def __init__(self, data, grad=None):
        # an ndarray keeps its dtype (float32 tests); lists become float64
        self.data = np.array(data) if isinstance(data, np.ndarray) else np.array(data, dtype=float)
        self.grad = None if grad is None else np.array(grad, dtype=self.data.dtype)


def step_with(opt, params, grads):
    """Set each parameter's .grad (None allowed) and take one step."""
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else np.array(g, dtype=p.data.dtype)
    opt.step(params)


# A factory per rule, with every option that changes the arithmetic switched on.
RULES = {
    "gd": lambda **kw: GD(lr=0.1, **kw),
    "momentum": lambda **kw: Momentum(lr=0.1, momentum=0.9, **kw),
    "nesterov": lambda **kw: Momentum(lr=0.1, momentum=0.9, nesterov=True, **kw),
    "rmsprop": lambda **kw: RMSProp(lr=0.01, rho=0.9, **kw),
    "adam": lambda **kw: Adam(lr=0.01, **kw),
    "adamw": lambda **kw: AdamW(lr=0.01, **kw),
}


# --------------------------------------------------------------------------- one step by hand


def test_gd_one_step_by_hand():
    p = Param([1.0, -2.0, 0.5], grad=[0.5, -1.0, 2.0])
    GD(lr=0.1).step([p])
    # theta - lr * g = [1 - 0.05, -2 + 0.1, 0.5 - 0.2]
    np.testing.assert_allclose(p.data, [0.95, -1.9, 0.3], rtol=1e-15)
    assert SGD is GD


def test_gd_weight_decay_by_hand():
    p = Param([1.0, -2.0], grad=[0.5, -1.0])
    GD(lr=0.1, weight_decay=0.1).step([p])
    # g' = g + 0.1 * theta = [0.5 + 0.1, -1 - 0.2] = [0.6, -1.2]; theta - 0.1 * g'
    np.testing.assert_allclose(p.data, [0.94, -1.88], rtol=1e-15)


def test_momentum_two_steps_by_hand():
    p = Param([1.0, -2.0])
    opt = Momentum(lr=0.1, momentum=0.9)
    step_with(opt, [p], [[1.0, 2.0]])
    # v = 0.9 * 0 + g = [1, 2]; theta = [1 - 0.1, -2 - 0.2]
    np.testing.assert_allclose(p.data, [0.9, -2.2], rtol=1e-15)
    step_with(opt, [p], [[0.5, -1.0]])
    # v = 0.9 * [1, 2] + [0.5, -1] = [1.4, 0.8]; theta = [0.9 - 0.14, -2.2 - 0.08]
    np.testing.assert_allclose(opt.state[0]["v"], [1.4, 0.8], rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.76, -2.28], rtol=1e-15)


def test_nesterov_two_steps_by_hand():
    p = Param([1.0, -2.0])
    opt = Momentum(lr=0.1, momentum=0.9, nesterov=True)
    step_with(opt, [p], [[1.0, 2.0]])
    # v = [1, 2]; g + 0.9 v = [1.9, 3.8]; theta = [1 - 0.19, -2 - 0.38]
    np.testing.assert_allclose(p.data, [0.81, -2.38], rtol=1e-15)
    step_with(opt, [p], [[0.5, -1.0]])
    # v = [1.4, 0.8]; g + 0.9 v = [0.5 + 1.26, -1 + 0.72] = [1.76, -0.28]
    # theta = [0.81 - 0.176, -2.38 + 0.028]
    np.testing.assert_allclose(p.data, [0.634, -2.352], rtol=1e-14)


def test_rmsprop_two_steps_by_hand():
    p = Param([1.0, 1.0])
    opt = RMSProp(lr=0.3, rho=0.75, eps=1.0)
    step_with(opt, [p], [[2.0, -4.0]])
    # s = 0.25 * g^2 = [1, 4]; sqrt(s) + eps = [2, 3]; g / that = [1, -4/3]
    # theta = [1 - 0.3 * 1, 1 + 0.3 * 4/3] = [0.7, 1.4]
    np.testing.assert_allclose(opt.state[0]["s"], [1.0, 4.0], rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.7, 1.4], rtol=1e-15)
    step_with(opt, [p], [[0.0, 4.0]])
    # s = 0.75 * [1, 4] + 0.25 * [0, 16] = [0.75, 7]; theta_1 = 1.4 - 0.3 * 4 / (sqrt(7) + 1)
    np.testing.assert_allclose(opt.state[0]["s"], [0.75, 7.0], rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.7, 1.4 - 0.3 * 4 / (math.sqrt(7.0) + 1)], rtol=1e-15)


def test_adam_two_steps_by_hand():
    p = Param([1.0, 1.0])
    opt = Adam(lr=0.1, beta1=0.5, beta2=0.75, eps=0.5)
    step_with(opt, [p], [[2.0, -1.0]])
    # t = 1: m = 0.5 g = [1, -0.5], v = 0.25 g^2 = [1, 0.25]
    # m_hat = m / 0.5 = g, v_hat = v / 0.25 = g^2, sqrt(v_hat) + eps = |g| + 0.5 = [2.5, 1.5]
    # theta = [1 - 0.1 * 2 / 2.5, 1 + 0.1 * 1 / 1.5] = [0.92, 1.0666...]
    np.testing.assert_allclose(opt.state[0]["m"], [1.0, -0.5], rtol=1e-15)
    np.testing.assert_allclose(opt.state[0]["v"], [1.0, 0.25], rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.92, 1.0 + 0.1 / 1.5], rtol=1e-15)
    step_with(opt, [p], [[1.0, 1.0]])
    # t = 2: m = 0.5 [1, -0.5] + 0.5 [1, 1] = [1, 0.25]
    #        v = 0.75 [1, 0.25] + 0.25 [1, 1] = [1, 0.4375]
    # c1 = 1 - 0.5^2 = 0.75, c2 = 1 - 0.75^2 = 0.4375
    # m_hat = [4/3, 1/3], v_hat = [1 / 0.4375, 1], sqrt(v_hat) + eps = [sqrt(1/0.4375) + 0.5, 1.5]
    assert opt.state[0]["t"] == 2
    expected = [
        0.92 - 0.1 * (4 / 3) / (math.sqrt(1 / 0.4375) + 0.5),
        1.0 + 0.1 / 1.5 - 0.1 * (1 / 3) / 1.5,
    ]
    np.testing.assert_allclose(p.data, expected, rtol=1e-15)


def test_adamw_decays_theta_directly_but_adam_through_the_gradient():
    hyper = dict(lr=0.1, beta1=0.5, beta2=0.75, eps=0.5)
    p = Param([2.0, -4.0], grad=[2.0, -1.0])
    AdamW(**hyper, weight_decay=0.5).step([p])
    # theta * (1 - 0.1 * 0.5) = [1.9, -3.8]; then the Adam step of g: 0.1 * g / (|g| + 0.5)
    # = [0.08, -0.0666...]  ->  [1.82, -3.7333...]
    np.testing.assert_allclose(p.data, [1.82, -3.8 + 0.1 / 1.5], rtol=1e-15)

    q = Param([2.0, -4.0], grad=[2.0, -1.0])
    Adam(**hyper, weight_decay=0.5).step([q])
    # L2: g' = g + 0.5 theta = [3, -3]; step = 0.1 * g' / (|g'| + 0.5) = +-0.1 * 3 / 3.5
    np.testing.assert_allclose(q.data, [2.0 - 0.3 / 3.5, -4.0 + 0.3 / 3.5], rtol=1e-15)


def test_clip_norm_scales_all_gradients_by_the_global_norm():
    a, b = Param([0.0, 0.0], grad=[3.0, 0.0]), Param([[0.0]], grad=[[4.0]])
    GD(lr=1.0, clip_norm=1.0).step([a, b])
    # global norm = sqrt(3^2 + 4^2) = 5 > 1: scale = 1 / (5 + 1e-6); theta = -scale * g
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.data, [-3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(b.data, [[-4.0 * scale]], rtol=1e-15)

    a, b = Param([0.0, 0.0], grad=[3.0, 0.0]), Param([[0.0]], grad=[[4.0]])
    GD(lr=1.0, clip_norm=10.0).step([a, b])  # norm 5 < 10: untouched
    np.testing.assert_array_equal(a.data, [-3.0, 0.0])
    np.testing.assert_array_equal(b.data, [[-4.0]])


def test_clipping_comes_before_weight_decay():
    a, b = Param([1.0, 0.0], grad=[3.0, 0.0]), Param([[0.0]], grad=[[4.0]])
    GD(lr=1.0, weight_decay=1.0, clip_norm=1.0).step([a, b])
    # g' = scale * [3, 0] + 1.0 * [1, 0]; theta = [1 - 3 scale - 1, 0]: the decay is not clipped
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.data, [-3.0 * scale, 0.0], rtol=1e-15)


def test_global_grad_norm_and_clip_coefficient():
    params = [Param([0.0, 0.0], grad=[1.0, 2.0]), Param([0.0], grad=None), Param([0.0], [2.0])]
    assert optim.global_grad_norm(params) == 3.0  # sqrt(1 + 4 + 4)
    assert optim.global_grad_norm([Param([0.0])]) == 0.0
    assert optim.clip_coefficient(3.0, max_norm=1.5) == 1.5 / (3.0 + 1e-6)
    assert optim.clip_coefficient(1.0, max_norm=1.5) == 1.0


# --------------------------------------------------------------------------- parameter contract


@pytest.mark.parametrize("rule", RULES)
def test_grad_is_never_written(rule):
    rng = np.random.default_rng(0)
    params = [Param(rng.normal(size=(3, 2))), Param(rng.normal(size=4))]
    opt = RULES[rule](weight_decay=0.1, clip_norm=0.5)  # clipping and decay both active
    for _ in range(3):
        grads = [rng.normal(size=p.data.shape) for p in params]
        copies = [g.copy() for g in grads]
        for p, g in zip(params, grads, strict=True):
            g.flags.writeable = False  # any write to .grad raises
            p.grad = g
        opt.step(params)
        for p, g in zip(params, copies, strict=True):
            np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("rule", RULES)
def test_a_gradient_array_shared_by_two_parameters(rule):
    g = np.array([1.0, -2.0, 0.5])
    shared = [Param([1.0, 2.0, 3.0]), Param([-1.0, 0.0, 1.0])]
    separate = [Param([1.0, 2.0, 3.0]), Param([-1.0, 0.0, 1.0])]
    opt_shared, opt_separate = RULES[rule](weight_decay=0.1), RULES[rule](weight_decay=0.1)
    for _ in range(3):
        for p in shared:
            p.grad = g
        for p in separate:
            p.grad = g.copy()
        opt_shared.step(shared)
        opt_separate.step(separate)
    for p, q in zip(shared, separate, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("rule", RULES)
def test_data_is_updated_in_place(rule):
    p = Param([1.0, 2.0], grad=[0.5, 0.5])
    array = p.data
    RULES[rule]().step([p])
    assert p.data is array
    assert not np.array_equal(array, [1.0, 2.0])


@pytest.mark.parametrize("rule", RULES)
def test_none_grad_skips_the_parameter_and_keeps_its_state(rule):
    a, b = Param([1.0, 2.0]), Param([3.0, 4.0, 5.0])
    opt = RULES[rule]()
    step_with(opt, [a, b], [[0.1, -0.2], None])
    np.testing.assert_array_equal(b.data, [3.0, 4.0, 5.0])
    for value in opt.state[1].values():
        assert np.all(np.asarray(value) == 0)  # buffers zero, counters 0
    # b's first real update is then exactly a first update (Adam's bias correction per parameter)
    step_with(opt, [a, b], [[0.1, -0.2], [1.0, -1.0, 2.0]])
    fresh = Param([3.0, 4.0, 5.0], grad=[1.0, -1.0, 2.0])
    RULES[rule]().step([fresh])
    np.testing.assert_array_equal(b.data, fresh.data)
    assert opt.iterations == 2


@pytest.mark.parametrize("rule", RULES)
def test_a_step_with_every_grad_none_is_not_counted(rule):
    schedule = optim.StepDecay(0.1, step_size=1, gamma=0.5)
    a = Param([1.0, 2.0])
    opt = RULES[rule]()
    opt.lr = schedule
    step_with(opt, [a], [[1.0, 1.0]])
    before, data = opt.state_dict(), a.data.copy()
    step_with(opt, [a], [None])
    assert opt.iterations == 1
    assert opt.lr == 0.05  # the schedule did not move on
    np.testing.assert_array_equal(a.data, data)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


def test_step_accepts_a_mapping_of_named_parameters():
    params = {"0.weight": Param([1.0]), "0.bias": Param([2.0])}
    params["0.weight"].grad = np.array([1.0])
    params["0.bias"].grad = np.array([-1.0])
    GD(lr=0.5).step(params)
    assert params["0.weight"].data[0] == 0.5
    assert params["0.bias"].data[0] == 2.5


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(rule, dtype):
    rng = np.random.default_rng(1)
    p = Param(rng.normal(size=(4, 3)).astype(dtype))
    opt = RULES[rule](weight_decay=0.01, clip_norm=1.0)
    for _ in range(3):
        p.grad = rng.normal(size=(4, 3)).astype(dtype)
        opt.step([p])
    assert p.data.dtype == dtype
    buffers = [v for v in opt.state[0].values() if isinstance(v, np.ndarray)]
    assert len(buffers) == {"gd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1}.get(rule, 2)
    for buffer in buffers:
        assert buffer.dtype == dtype
    # a float64 gradient does not turn a float32 parameter into float64 either
    p.grad = rng.normal(size=(4, 3))
    opt.step([p])
    assert p.data.dtype == dtype


def test_float32_follows_the_float64_path():
    rng = np.random.default_rng(2)
    p64 = Param(rng.normal(size=5))
    p32 = Param(p64.data.astype(np.float32))
    o64, o32 = Adam(lr=0.01), Adam(lr=0.01)
    for _ in range(5):
        g = rng.normal(size=5)
        p64.grad, p32.grad = g, g.astype(np.float32)
        o64.step([p64])
        o32.step([p32])
    np.testing.assert_allclose(p32.data, p64.data, rtol=1e-5)


# --------------------------------------------------------------------------- state


def test_iterations_and_lr_follow_the_schedule():
    opt = GD(lr=optim.StepDecay(1.0, step_size=2, gamma=0.5))
    p = Param([0.0])
    seen = []
    for _ in range(5):
        seen.append(opt.lr)
        step_with(opt, [p], [[1.0]])
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert opt.iterations == 5
    # theta = -(1 + 1 + 0.5 + 0.5 + 0.25) * 1
    assert p.data[0] == -3.25
    assert opt.lr == 0.25
    assert isinstance(opt.lr_schedule, optim.StepDecay)


def test_lr_can_be_set_and_a_plain_callable_works():
    opt = GD(lr=0.1)
    assert opt.lr == 0.1 and opt.lr_schedule is None
    opt.lr = 0.5
    p = Param([1.0], grad=[1.0])
    opt.step([p])
    assert p.data[0] == 0.5
    opt.lr = lambda step: 0.25 / (step + 1)
    opt.step([p])  # iterations was 1: lr = 0.125
    assert p.data[0] == 0.375
    with pytest.raises(TypeError, match="get_config"):
        opt.get_config()
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        opt.lr = -1.0


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0.1"])
def test_a_schedule_returning_a_bad_lr_is_reported(bad):
    opt = GD(lr=lambda step: bad)
    with pytest.raises(ValueError, match="schedule .* returned .* at step 0"):
        opt.step([Param([1.0], grad=[1.0])])


@pytest.mark.parametrize("rule", RULES)
def test_state_dict_round_trip_continues_identically(rule):
    rng = np.random.default_rng(3)
    make = RULES[rule]
    opt = make(weight_decay=0.05, clip_norm=2.0)
    opt.lr = optim.CosineDecay(opt.lr, total_steps=8, min_lr=opt.lr / 10)
    params = [Param(rng.normal(size=(2, 3))), Param(rng.normal(size=3))]
    grads = [[rng.normal(size=p.data.shape) for p in params] for _ in range(6)]
    grads[1][1] = None  # one skipped parameter, so per-parameter counters differ
    for g in grads[:3]:
        step_with(opt, params, g)

    saved = opt.state_dict()
    restored = optim.from_config(json.loads(json.dumps(opt.get_config())))
    restored.load_state_dict(saved)
    clones = [Param(p.data.copy()) for p in params]
    for value in saved.values():  # the loaded state is a copy, not a view of the dict
        if isinstance(value, np.ndarray):
            value[...] = 123.0
    assert restored.iterations == opt.iterations == 3
    assert restored.lr == opt.lr

    for g in grads[3:]:
        step_with(opt, params, g)
        step_with(restored, clones, g)
    for p, q in zip(params, clones, strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    final, final_restored = opt.state_dict(), restored.state_dict()
    assert final.keys() == final_restored.keys()
    for key in final:
        np.testing.assert_array_equal(final[key], final_restored[key])


def test_state_dict_is_plain_numbers_and_copied_arrays():
    opt = Adam()
    assert opt.state_dict() == {"iterations": 0, "n_params": 0}
    p = Param([1.0, 2.0], grad=[1.0, 1.0])
    opt.step([p])
    saved = opt.state_dict()
    assert saved["iterations"] == 1 and type(saved["iterations"]) is int
    assert saved["n_params"] == 1
    assert saved["state.0.t"] == 1 and type(saved["state.0.t"]) is int
    assert saved["state.0.m"] is not opt.state[0]["m"]
    np.testing.assert_array_equal(saved["state.0.m"], opt.state[0]["m"])


def test_state_dict_survives_an_npz_file(tmp_path):
    p = Param([1.0, 2.0], grad=[1.0, -1.0])
    opt = Adam(lr=0.1)
    opt.step([p])
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    again = Adam(lr=0.1)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as saved:
        again.load_state_dict(saved)
    q = Param(p.data.copy(), grad=[1.0, -1.0])
    opt.step([p])
    again.step([q])
    np.testing.assert_array_equal(p.data, q.data)
    assert again.iterations == 2


def test_loaded_float64_state_takes_the_parameters_dtype():
    opt = Momentum(lr=0.1)
    opt.step([Param([1.0, 2.0], grad=[1.0, 1.0])])
    again = Momentum(lr=0.1)
    again.load_state_dict(opt.state_dict())
    p = Param(np.array([1.0, 2.0], dtype=np.float32), grad=[1.0, 1.0])
    again.step([p])
    assert p.data.dtype == np.float32
    assert again.state[0]["v"].dtype == np.float32


def _adam_state():
    opt = Adam()
    opt.step([Param([1.0, 2.0], grad=[1.0, 1.0]), Param([3.0], grad=[1.0])])
    return opt.state_dict()


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda d: d.pop("iterations"), ValueError, "iterations"),
        (lambda d: d.pop("state.1.v"), ValueError, r"missing keys \['state.1.v'\]"),
        (lambda d: d.update({"state.0.velocity": np.zeros(2)}), ValueError, "unexpected keys"),
        (lambda d: d.update({"n_params": 3}), ValueError, "missing keys"),
        (lambda d: d.update({"iterations": -1}), ValueError, "iterations"),
        (lambda d: d.update({"iterations": 1.5}), TypeError, "iterations"),
        (lambda d: d.update({"state.0.t": -2}), ValueError, "state.0.t"),
        (lambda d: d.update({"state.0.v": np.zeros(3)}), ValueError, "state.0.v.*shape"),
        (lambda d: d.update({"state.0.m": [0.0, 0.0]}), TypeError, "state.0.m"),
    ],
)
def test_load_state_dict_errors_leave_the_optimizer_unchanged(edit, error, match):
    opt = Adam()
    p = Param([5.0], grad=[1.0])
    opt.step([p])
    before = opt.state_dict()
    bad = _adam_state()
    edit(bad)
    with pytest.raises(error, match=match):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


def test_load_state_dict_of_another_optimizer_class():
    with pytest.raises(ValueError, match="another optimizer class"):
        Momentum().load_state_dict(_adam_state())
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        Adam().load_state_dict([("iterations", 1)])


def test_loaded_state_checks_the_parameters_at_the_next_step():
    opt = Adam()
    opt.load_state_dict(_adam_state())
    with pytest.raises(ValueError, match="made for 2 parameters but step\\(\\) got 1"):
        opt.step([Param([1.0, 2.0], grad=[1.0, 1.0])])
    with pytest.raises(ValueError, match=r"parameter 1 of shape \(1,\) but step\(\) got shape"):
        opt.step([Param([1.0, 2.0], grad=[1.0, 1.0]), Param([1.0, 2.0], grad=[1.0, 1.0])])


def test_changing_parameters_between_steps_raises():
    opt = Momentum()
    opt.step([Param([1.0, 2.0], grad=[1.0, 1.0]), Param([1.0], grad=[1.0])])
    with pytest.raises(ValueError, match="made for 2 parameters but step.*got 3.*reset"):
        opt.step([Param([1.0, 2.0]), Param([1.0]), Param([1.0])])
    with pytest.raises(ValueError, match=r"shape \(2,\) but step\(\) got shape \(3,\).*reset"):
        opt.step([Param([1.0, 2.0, 3.0]), Param([1.0])])
    opt.reset()
    assert opt.iterations == 0 and opt.state == []
    opt.step([Param([1.0, 2.0, 3.0], grad=[1.0, 1.0, 1.0])])  # a new model after reset
    assert opt.iterations == 1


def test_bad_parameters_and_gradients_raise():
    p = Param([1.0, 2.0])
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"\.grad has shape \(3,\) but \.data has shape \(2,\)"):
        GD().step([p])
    p.grad = [1.0, 1.0]
    with pytest.raises(TypeError, match=r"\.grad must be an ndarray or None"):
        GD().step([p])
    with pytest.raises(ValueError, match="no parameters"):
        GD().step([])
    with pytest.raises(TypeError, match=r"must have \.data"):
        GD().step([np.ones(2)])
    with pytest.raises(TypeError, match="dtype int64"):
        GD().step([Param(np.array([1, 2]), grad=None)])
    with pytest.raises(TypeError, match="iterable of parameters"):
        GD().step(3)


def test_a_bad_gradient_changes_nothing():
    good, bad = Param([1.0], grad=[1.0]), Param([1.0, 2.0], grad=[1.0])
    bad.grad = np.ones(3)
    opt = Adam()
    with pytest.raises(ValueError, match="parameter 1"):
        opt.step([good, bad])
    assert good.data[0] == 1.0 and opt.iterations == 0


# --------------------------------------------------------------------------- config, get


@pytest.mark.parametrize("rule", RULES)
def test_get_config_is_json_and_rebuilds_the_same_optimizer(rule):
    opt = RULES[rule](clip_norm=1.0)
    config = opt.get_config()
    assert json.loads(json.dumps(config)) == config
    again = optim.from_config(config)
    assert type(again) is type(opt)
    assert again.get_config() == config
    assert repr(again) == repr(opt)


def test_config_holds_every_argument():
    config = Momentum(0.05, 0.8, True, weight_decay=0.1).get_config()
    assert config == {
        "class_name": "Momentum",
        "config": {
            "lr": 0.05,
            "momentum": 0.8,
            "nesterov": True,
            "weight_decay": 0.1,
            "clip_norm": None,
        },
    }
    with_schedule = Adam(lr=optim.ExponentialDecay(0.01, gamma=0.9)).get_config()
    assert with_schedule["config"]["lr"] == {
        "class_name": "ExponentialDecay",
        "config": {"lr": 0.01, "gamma": 0.9},
    }
    rebuilt = optim.from_config(with_schedule)
    assert rebuilt.lr_schedule == optim.ExponentialDecay(0.01, gamma=0.9)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"class_name": "Adagrad", "config": {}}, "unknown optimizer class_name 'Adagrad'.*Adam"),
        ({"class_name": "Adam", "config": {"momentum": 0.9}}, r"unknown arguments \['momentum'\]"),
        ({"config": {}}, "class_name"),
        ("adam", "class_name"),
        ({"class_name": "Adam", "config": {}, "extra": 1}, "extra"),
    ],
)
def test_from_config_errors(config, match):
    with pytest.raises(ValueError, match=match):
        optim.from_config(config)


@pytest.mark.parametrize(
    ("name", "cls", "nesterov"),
    [
        ("gd", GD, None),
        ("SGD", GD, None),
        ("Momentum", Momentum, False),
        ("nesterov", Momentum, True),
        ("RMSprop", RMSProp, None),
        (" adam ", Adam, None),
        ("AdamW", AdamW, None),
    ],
)
def test_get_by_name(name, cls, nesterov):
    opt = optim.get(name, lr=0.05)
    assert type(opt) is cls
    assert opt.lr == 0.05
    if nesterov is not None:
        assert opt.nesterov is nesterov


def test_get_passes_instances_through_and_lists_valid_names():
    opt = Adam()
    assert optim.get(opt) is opt
    assert type(optim.get(RMSProp, rho=0.5)) is RMSProp
    with pytest.raises(ValueError) as info:
        optim.get("adm")
    message = str(info.value)
    for name in ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"):
        assert repr(name) in message
    assert "did you mean 'adam'" in message
    with pytest.raises(TypeError, match="keyword arguments only with a name"):
        optim.get(opt, lr=0.1)
    with pytest.raises(TypeError, match="must be a name"):
        optim.get(0.1)


# --------------------------------------------------------------------------- argument checks


def test_lr_message_names_the_value_and_a_fix():
    expected = r"^lr must be a positive finite number, got -0\.1; try lr=0\.01$"
    with pytest.raises(ValueError, match=expected):
        GD(lr=-0.1)
    with pytest.raises(ValueError, match=r"try lr=0\.001$"):
        Adam(lr=0.0)


@pytest.mark.parametrize(
    ("make", "error", "argument"),
    [
        (lambda: GD(lr=0), ValueError, "lr"),
        (lambda: GD(lr=math.nan), ValueError, "lr"),
        (lambda: RMSProp(lr=math.inf), ValueError, "lr"),
        (lambda: GD(lr="0.1"), TypeError, "lr"),
        (lambda: GD(lr=True), TypeError, "lr"),
        (lambda: Momentum(momentum=1.0), ValueError, "momentum"),
        (lambda: Momentum(momentum=-0.1), ValueError, "momentum"),
        (lambda: Momentum(nesterov="yes"), TypeError, "nesterov"),
        (lambda: RMSProp(rho=1.0), ValueError, "rho"),
        (lambda: RMSProp(eps=0.0), ValueError, "eps"),
        (lambda: Adam(beta1=1.0), ValueError, "beta1"),
        (lambda: Adam(beta2=-0.5), ValueError, "beta2"),
        (lambda: Adam(beta2=math.nan), ValueError, "beta2"),
        (lambda: Adam(eps=-1e-8), ValueError, "eps"),
        (lambda: AdamW(eps=math.inf), ValueError, "eps"),
        (lambda: AdamW(weight_decay=-0.01), ValueError, "weight_decay"),
        (lambda: GD(weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: Momentum(weight_decay=math.inf), ValueError, "weight_decay"),
        (lambda: GD(clip_norm=0.0), ValueError, "clip_norm"),
        (lambda: Adam(clip_norm=-1.0), ValueError, "clip_norm"),
        (lambda: Adam(clip_norm="1"), TypeError, "clip_norm"),
    ],
)
def test_bad_arguments_name_the_argument(make, error, argument):
    with pytest.raises(error, match=rf"^{argument} must be") as info:
        make()
    message = str(info.value)
    if error is ValueError:
        assert "got" in message
        assert f"{argument}=" in message or "use " in message  # a suggested fix


def test_gd_keeps_no_scratch_copy_of_the_parameters_but_a_rule_of_its_own_gets_one():
    # plain GD's update is one axpy: no array the size of each parameter is made for it
    w = Param(np.ones((50, 40)), np.full((50, 40), 0.5))
    gd = optim.GD(0.1)
    gd.step([w])
    np.testing.assert_array_equal(w.data, np.full((50, 40), 0.95))
    assert all(buf is None for pair in gd._scratch for buf in pair)

    class Halved(optim.GD):  # a rule of its own, written with the scratch array
        def _update(self, theta, g, state, lr, tmp):
            np.multiply(g, 0.5 * lr, out=tmp)
            theta -= tmp

    halved = Halved(0.1)
    halved.step([w])
    np.testing.assert_array_equal(w.data, np.full((50, 40), 0.95 - 0.025))
    assert halved._scratch[0][0] is not None
