"""descend.optim against torch.optim: the same gradients give the same parameters (float64)."""

import numpy as np
import pytest

from descend.optim import GD, Adam, AdamW, ExponentialDecay, Momentum, RMSProp, StepDecay
from descend.optim.clipping import global_grad_norm

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (2,)]
# Scale of the gradients at each step: with clip_norm=1.5 the small ones pass unclipped.
SCALES = [0.05, 1.0, 3.0, 0.1, 2.0, 0.7, 1.0]


class Param:
    """Stand-in for a descend.Tensor leaf: .data is updated in place, .grad is only read."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = np.array(data, dtype=float)
        self.grad = None


def ours_and_theirs(rule, wd):
    """(descend optimizer factory, torch optimizer factory) with the same hyperparameters."""
    t = torch.optim
    return {
        "gd": (
            lambda: GD(lr=0.1, weight_decay=wd),
            lambda ps: t.SGD(ps, lr=0.1, weight_decay=wd),
        ),
        "momentum": (
            lambda: Momentum(lr=0.05, momentum=0.9, weight_decay=wd),
            lambda ps: t.SGD(ps, lr=0.05, momentum=0.9, weight_decay=wd),
        ),
        "nesterov": (
            lambda: Momentum(lr=0.05, momentum=0.8, nesterov=True, weight_decay=wd),
            lambda ps: t.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=wd),
        ),
        "rmsprop": (
            lambda: RMSProp(lr=0.01, rho=0.8, eps=1e-3, weight_decay=wd),
            lambda ps: t.RMSprop(ps, lr=0.01, alpha=0.8, eps=1e-3, weight_decay=wd),
        ),
        "adam": (
            lambda: Adam(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-3, weight_decay=wd),
            lambda ps: t.Adam(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=wd),
        ),
        "adamw": (
            lambda: AdamW(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-3, weight_decay=wd),
            lambda ps: t.AdamW(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=wd),
        ),
    }[rule]


def run_both_and_check(ours, theirs, clip_norm=None, scheduler=None, seed=0):
    """Feed the same random gradients to both; return both parameter lists after every step."""
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=s) for s in SHAPES]
    params = [Param(a) for a in start]
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in start]
    topt = theirs(tensors)
    tsched = scheduler(topt) if scheduler else None
    clipped = []
    for k, scale in enumerate(SCALES):
        grads = [scale * rng.normal(size=s) for s in SHAPES]
        if k == 3:
            grads[1] = None  # a parameter without gradient this step: both skip it
        for p, t, g in zip(params, tensors, grads, strict=True):
            p.grad = g
            t.grad = None if g is None else torch.tensor(g)
        if clip_norm is not None:
            clipped.append(global_grad_norm(params) > clip_norm)
            torch.nn.utils.clip_grad_norm_(tensors, clip_norm)
        ours.step(params)
        topt.step()
        if tsched:
            tsched.step()
        for p, t in zip(params, tensors, strict=True):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)
    if clip_norm is not None:
        assert any(clipped) and not all(clipped)  # both branches were taken
    return params, tensors, topt


RULES = ["gd", "momentum", "nesterov", "rmsprop", "adam", "adamw"]


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("rule", RULES)
def test_same_as_torch(rule, wd):
    make_ours, make_theirs = ours_and_theirs(rule, wd)
    run_both_and_check(make_ours(), make_theirs)


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("rule", RULES)
def test_clip_norm_same_as_clip_grad_norm_(rule, wd):
    make_ours, make_theirs = ours_and_theirs(rule, wd)
    ours = make_ours()
    ours.clip_norm = 1.5
    run_both_and_check(ours, make_theirs, clip_norm=1.5)


@pytest.mark.parametrize("rule", ["momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_state_same_as_torch(rule):
    make_ours, make_theirs = ours_and_theirs(rule, 0.1)
    ours = make_ours()
    _, tensors, topt = run_both_and_check(ours, make_theirs)
    names = {
        "momentum": {"v": "momentum_buffer"},
        "nesterov": {"v": "momentum_buffer"},
        "rmsprop": {"s": "square_avg"},
        "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
        "adamw": {"m": "exp_avg", "v": "exp_avg_sq"},
    }[rule]
    for st, t in zip(ours.state, tensors, strict=True):
        for mine, theirs in names.items():
            expected = topt.state[t][theirs].numpy()
            np.testing.assert_allclose(st[mine], expected, rtol=1e-12, atol=1e-14)
        if "t" in st:  # per-parameter step count; parameter 1 skipped one step
            assert st["t"] == int(topt.state[t]["step"])
    assert [st.get("t") for st in ours.state][1] in (None, len(SCALES) - 1)


def test_step_decay_same_as_step_lr():
    ours = Momentum(lr=StepDecay(0.1, step_size=2, gamma=0.5), momentum=0.9)
    run_both_and_check(
        ours,
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    )


def test_exponential_decay_same_as_exponential_lr():
    ours = Adam(lr=ExponentialDecay(0.01, gamma=0.8))
    run_both_and_check(
        ours,
        lambda ps: torch.optim.Adam(ps, lr=0.01),
        scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8),
    )
