"""descend.optim.schedules: values by hand, argument checks, names, configs."""

import json
import math

import numpy as np
import pytest

from descend import optim
from descend.optim import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    StepDecay,
    get_schedule,
    schedule_from_config,
)


def test_constant():
    s = Constant(0.05)
    assert [s(t) for t in (0, 1, 10**6)] == [0.05, 0.05, 0.05]


def test_step_decay_by_hand():
    s = StepDecay(0.8, step_size=3, gamma=0.5)
    # 0.8 * 0.5 ** (t // 3): three steps at 0.8, three at 0.4, then 0.2
    assert [s(t) for t in range(7)] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]
    assert StepDecay(1.0, step_size=10)(25) == pytest.approx(0.01)  # default gamma 0.1, twice


def test_exponential_decay_by_hand():
    s = ExponentialDecay(2.0, gamma=0.5)
    assert [s(t) for t in range(4)] == [2.0, 1.0, 0.5, 0.25]
    assert ExponentialDecay(0.1, gamma=0.9)(10) == pytest.approx(0.1 * 0.9**10, rel=1e-15)


def test_inverse_time_decay_by_hand():
    s = InverseTimeDecay(1.0, decay_rate=0.5, decay_steps=2)
    # 1 / (1 + 0.5 * t / 2) = 1 / (1 + t / 4)
    np.testing.assert_allclose([s(t) for t in range(5)], [1, 0.8, 1 / 1.5, 1 / 1.75, 0.5])
    assert InverseTimeDecay(0.3, decay_rate=0.0)(100) == 0.3


def test_cosine_decay_by_hand():
    s = CosineDecay(1.0, total_steps=4, min_lr=0.2)
    # 0.2 + 0.8 * (1 + cos(pi t / 4)) / 2: cos = 1, 1/sqrt(2), 0, -1/sqrt(2), -1
    half = 1 / math.sqrt(2)
    expected = [1.0, 0.2 + 0.4 * (1 + half), 0.6, 0.2 + 0.4 * (1 - half), 0.2]
    np.testing.assert_allclose([s(t) for t in range(5)], expected, rtol=1e-15)
    assert s(5) == s(100) == 0.2  # stays at min_lr after total_steps
    assert CosineDecay(0.1, total_steps=10)(10) == 0.0


def test_step_must_be_a_non_negative_integer():
    s = Constant(0.1)
    assert s(np.int64(3)) == 0.1
    with pytest.raises(ValueError, match="step must be an integer >= 0, got -1"):
        s(-1)
    with pytest.raises(TypeError, match="step must be an integer"):
        s(1.5)


@pytest.mark.parametrize(
    ("make", "error", "argument"),
    [
        (lambda: Constant(0.0), ValueError, "lr"),
        (lambda: Constant(-1.0), ValueError, "lr"),
        (lambda: StepDecay(math.nan, step_size=10), ValueError, "lr"),
        (lambda: StepDecay(0.1, step_size=0), ValueError, "step_size"),
        (lambda: StepDecay(0.1, step_size=2.5), TypeError, "step_size"),
        (lambda: StepDecay(0.1, step_size=10, gamma=0.0), ValueError, "gamma"),
        (lambda: StepDecay(0.1, step_size=10, gamma=1.5), ValueError, "gamma"),
        (lambda: ExponentialDecay(0.1, gamma=-0.5), ValueError, "gamma"),
        (lambda: InverseTimeDecay(0.1, decay_rate=-1.0), ValueError, "decay_rate"),
        (lambda: InverseTimeDecay(0.1, decay_rate=1.0, decay_steps=0), ValueError, "decay_steps"),
        (lambda: CosineDecay(0.1, total_steps=0), ValueError, "total_steps"),
        (lambda: CosineDecay(0.1, total_steps=10, min_lr=-0.1), ValueError, "min_lr"),
        (lambda: CosineDecay(0.1, total_steps=10, min_lr=0.2), ValueError, "min_lr"),
    ],
)
def test_bad_arguments_name_the_argument(make, error, argument):
    with pytest.raises(error, match=rf"^{argument} must be") as info:
        make()
    if error is ValueError:
        assert "try" in str(info.value)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("constant", Constant),
        ("step", StepDecay),
        ("Step_Decay", StepDecay),
        ("exponential", ExponentialDecay),
        ("ExponentialDecay", ExponentialDecay),
        ("inverse_time", InverseTimeDecay),
        ("inverse-time-decay", InverseTimeDecay),
        ("cosine", CosineDecay),
        ("COSINE_DECAY", CosineDecay),
    ],
)
def test_get_schedule_by_name(name, cls):
    kwargs = {
        Constant: {},
        StepDecay: {"step_size": 5},
        ExponentialDecay: {"gamma": 0.9},
        InverseTimeDecay: {"decay_rate": 0.1},
        CosineDecay: {"total_steps": 5},
    }[cls]
    s = get_schedule(name, lr=0.1, **kwargs)
    assert type(s) is cls
    assert s(0) == 0.1


def test_get_schedule_errors_list_the_valid_names():
    with pytest.raises(ValueError) as info:
        get_schedule("cosin", lr=0.1)
    for name in ("constant", "step_decay", "exponential_decay", "inverse_time_decay", "cosine"):
        assert name in str(info.value)
    assert "did you mean 'cosine_decay'" in str(info.value)
    s = Constant(0.1)
    assert get_schedule(s) is s
    with pytest.raises(TypeError, match="only with a name"):
        get_schedule(s, lr=0.2)
    with pytest.raises(TypeError, match="valid names"):
        get_schedule(3)


@pytest.mark.parametrize(
    "schedule",
    [
        Constant(0.1),
        StepDecay(0.1, step_size=7, gamma=0.3),
        ExponentialDecay(0.2, gamma=0.95),
        InverseTimeDecay(0.1, decay_rate=0.5, decay_steps=10),
        CosineDecay(0.1, total_steps=100, min_lr=0.001),
    ],
)
def test_config_round_trip_through_json(schedule):
    config = json.loads(json.dumps(schedule.get_config()))
    again = schedule_from_config(config)
    assert again == schedule and again is not schedule
    assert [again(t) for t in range(0, 200, 13)] == [schedule(t) for t in range(0, 200, 13)]
    assert repr(again) == repr(schedule)


def test_schedule_from_config_errors():
    with pytest.raises(ValueError, match="unknown schedule class_name 'Linear'"):
        schedule_from_config({"class_name": "Linear", "config": {}})
    with pytest.raises(ValueError, match=r"unknown arguments \['rate'\]"):
        schedule_from_config({"class_name": "Constant", "config": {"lr": 0.1, "rate": 2}})


def test_schedules_are_equal_by_config():
    assert Constant(0.1) == Constant(0.1)
    assert Constant(0.1) != Constant(0.2)
    assert StepDecay(0.1, step_size=10) != ExponentialDecay(0.1, gamma=0.1)
    assert len({Constant(0.1), Constant(0.1)}) == 1


def test_an_optimizer_uses_schedule_of_iterations():
    opt = optim.GD(lr=InverseTimeDecay(1.0, decay_rate=1.0))
    p = type("P", (), {})()
    p.data, p.grad = np.zeros(1), np.ones(1)
    lrs = []
    for _ in range(4):
        lrs.append(opt.lr)
        opt.step([p])
    # lr(t) = 1 / (1 + t); theta = -(1 + 1/2 + 1/3 + 1/4)
    assert lrs == [1.0, 0.5, 1 / 3, 0.25]
    np.testing.assert_allclose(p.data, [-(1 + 1 / 2 + 1 / 3 + 1 / 4)], rtol=1e-15)
