"""The update rules: plain gradient descent, momentum, RMSProp, Adam and AdamW.

Each rule's docstring gives its formula for one parameter ``theta`` with gradient ``g`` (after
clipping and L2 weight decay, see :class:`~descend.optim.base.Optimizer`), and ``_update`` is that
formula written in place on the arrays, one line of the formula per block. ``tmp`` is a scratch
array reused from step to step, so a step allocates nothing. The conventions are PyTorch's, and
the tests check the results against ``torch.optim`` to the last digits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from descend.compile.backend import Axpy, GemmUpdate, axpy
from descend.optim import _checks
from descend.optim.base import LearningRate, Optimizer

__all__ = ["GD", "SGD", "Momentum", "RMSProp", "Adam", "AdamW"]


class GD(Optimizer):
    r"""Gradient descent: step against the gradient, scaled by the learning rate.

    .. math:: \theta \leftarrow \theta - \mathrm{lr}\, g

    Batch, stochastic or mini-batch gradient descent is the same rule; they differ only in how
    much data the gradient was computed on. ``SGD`` is another name for this class. Equal to
    ``torch.optim.SGD(lr=lr, weight_decay=weight_decay)``.

    Parameters
    ----------
    lr : float or schedule, default 0.01
        Learning rate (positive) or a schedule ``step -> lr``.
    weight_decay : float, default 0.0
        L2 coefficient: ``g <- g + weight_decay * theta``.
    clip_norm : float or None, default None
        Clip the global gradient norm to this value first.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import GD
    >>> w = SimpleNamespace(data=np.array([1.0, -2.0]), grad=np.array([0.5, -1.0]))
    >>> GD(lr=0.1).step([w])   # [1 - 0.1 * 0.5, -2 - 0.1 * (-1)]
    >>> w.data
    array([ 0.95, -1.9 ])
    """

    _default_lr = 0.01

    def __init__(
        self,
        lr: LearningRate = 0.01,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm)

    @property
    def _plain_update(self) -> bool:
        """Whether this is plain GD's update (not a subclass's rule of its own): its axpy
        needs no scratch array, and its steps may be bound or folded into a product."""
        return type(self)._update is GD._update

    @property
    def _uses_scratch(self) -> bool:
        return not self._plain_update

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        # theta <- theta - lr * g   (one BLAS axpy: theta += (-lr) g); the call is bound once
        # for a gradient array that comes back at every step (the compiled step's buffers)
        bound = state.get("axpy")
        if bound is None or bound.x is not g or bound.y is not theta:
            bound = state["axpy"] = Axpy(g, theta)
        bound(-lr)

    def _bound_steps(self, params: list, folds: tuple):
        # theta <- theta - lr * g: the axpy each parameter's _update just bound, and the gemm
        # each folded parameter's step_from_product did (the same numbers as _update, which a
        # subclass with a rule of its own keeps)
        if not self._plain_update:
            return None
        states = zip(params, self._state, strict=True)
        axpys = [st["axpy"] for p, st in states if p.grad is not None]
        gemms = [(i, self._gemms[id(params[i].data)]) for i in folds if params[i].grad is None]
        return _minus_lr(axpys, gemms)

    @property
    def folds_products(self) -> bool:
        """True for plain gradient descent (no clipping, which needs every gradient's norm, no
        weight decay, and not a subclass with a rule of its own)."""
        return self._plain_update and self.clip_norm is None and not self.weight_decay

    def step_from_product(self, theta: np.ndarray, a: np.ndarray, b: np.ndarray, lr: float) -> None:
        r"""This rule's step for a gradient given as the product ``a.T @ b``, not written out.

        .. math:: \theta \leftarrow \theta - \mathrm{lr}\, a^T b

        one BLAS ``gemm`` that adds ``-lr a^T b`` to ``theta`` (``ger`` for one row): the
        weight-gradient product of a layer ``z = a @ W`` with ``b = dC/dz``, folded into the
        update. Equal to ``theta -= lr * (a.T @ b)`` up to rounding.

        Examples
        --------
        >>> import numpy as np
        >>> theta = np.ones((2, 2))
        >>> GD(0.5).step_from_product(theta, np.ones((1, 2)), np.ones((1, 2)), 0.5)
        >>> theta
        array([[0.5, 0.5],
               [0.5, 0.5]])
        """
        # the BLAS call is bound to theta once (its address looked up once, as for axpy)
        bound = self._gemms.get(id(theta))
        if bound is None or bound.c is not theta:
            bound = self._gemms[id(theta)] = GemmUpdate(theta)
        bound(-lr, a, b)

    def reset(self) -> None:
        super().reset()
        self._gemms: dict[int, GemmUpdate] = {}


SGD = GD


def _minus_lr(bound: list[Axpy], gemms: list[tuple[int, GemmUpdate]]):
    def step(lr: float, products) -> None:
        alpha = -lr
        for update in bound:
            update(alpha)
        for i, gemm in gemms:  # theta <- theta - lr * a.T @ b, from the product's factors
            gemm(alpha, *products[i])

    return step


class Momentum(Optimizer):
    r"""Gradient descent with momentum (heavy ball, or Nesterov's), in PyTorch's convention.

    With velocity ``v`` (zeros at the start) and momentum ``mu``:

    .. math::

        v &\leftarrow \mu v + g \\
        \theta &\leftarrow \theta - \mathrm{lr}\, v
            \quad\text{or, with nesterov:}\quad
        \theta \leftarrow \theta - \mathrm{lr}\,(g + \mu v)

    Equal to ``torch.optim.SGD(lr=lr, momentum=mu, nesterov=nesterov, dampening=0)``. (Some
    textbooks write ``v <- mu v - lr g; theta <- theta + v``; with a constant learning rate it is
    the same path.)

    Parameters
    ----------
    lr : float or schedule, default 0.01
        Learning rate (positive) or a schedule ``step -> lr``.
    momentum : float, default 0.9
        ``mu`` in [0, 1): how much of the previous velocity is kept.
    nesterov : bool, default False
        Use Nesterov's look-ahead form.
    weight_decay : float, default 0.0
        L2 coefficient: ``g <- g + weight_decay * theta``.
    clip_norm : float or None, default None
        Clip the global gradient norm to this value first.

    Attributes
    ----------
    state : list of dict
        ``{"v": ndarray}`` per parameter, the velocity.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import Momentum
    >>> w = SimpleNamespace(data=np.array([1.0, 2.0]), grad=np.array([1.0, -1.0]))
    >>> opt = Momentum(lr=0.1, momentum=0.5, nesterov=True)
    >>> opt.step([w])   # v = g; theta - 0.1 * (g + 0.5 * v) = theta - 0.15 * g
    >>> w.data
    array([0.85, 2.15])
    """

    _buffers = ("v",)
    _hyperparameters = ("momentum", "nesterov", "weight_decay", "clip_norm")
    _default_lr = 0.01

    def __init__(
        self,
        lr: LearningRate = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.momentum = _checks.unit_interval("momentum", momentum, 0.9)
        self.nesterov = _checks.boolean("nesterov", nesterov)

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        mu, v = self.momentum, state["v"]
        # v <- mu * v + g
        v *= mu
        v += g
        if self.nesterov:
            # theta <- theta - lr * (g + mu * v)
            step = np.multiply(v, mu, out=tmp)
            step += g
            step *= lr
            theta -= step
        else:
            # theta <- theta - lr * v
            axpy(-lr, v, theta, tmp)


class RMSProp(Optimizer):
    r"""RMSProp: divide the step by a running root-mean-square of recent gradients.

    With ``s`` (zeros at the start) the running average of squared gradients:

    .. math::

        s &\leftarrow \rho s + (1 - \rho)\, g^2 \\
        \theta &\leftarrow \theta - \mathrm{lr}\, \frac{g}{\sqrt{s} + \epsilon}

    (element-wise; ``eps`` outside the square root). Equal to
    ``torch.optim.RMSprop(lr=lr, alpha=rho, eps=eps, weight_decay=weight_decay)``.

    Parameters
    ----------
    lr : float or schedule, default 0.001
        Learning rate (positive) or a schedule ``step -> lr``.
    rho : float, default 0.9
        Decay of the running average, in [0, 1).
    eps : float, default 1e-8
        Positive constant that keeps the denominator away from 0.
    weight_decay : float, default 0.0
        L2 coefficient: ``g <- g + weight_decay * theta``.
    clip_norm : float or None, default None
        Clip the global gradient norm to this value first.

    Attributes
    ----------
    state : list of dict
        ``{"s": ndarray}`` per parameter, the mean square.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import RMSProp
    >>> w = SimpleNamespace(data=np.array([1.0, 1.0]), grad=np.array([2.0, -0.5]))
    >>> RMSProp(lr=0.01, rho=0.75, eps=1e-8).step([w])
    >>> w.data   # s = 0.25 g^2, so g / sqrt(s) = 2 sign(g): theta - 0.02 sign(g)
    array([0.98, 1.02])
    """

    _buffers = ("s",)
    _hyperparameters = ("rho", "eps", "weight_decay", "clip_norm")
    _default_lr = 0.001

    def __init__(
        self,
        lr: LearningRate = 0.001,
        rho: float = 0.9,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.rho = _checks.unit_interval("rho", rho, 0.9)
        self.eps = _checks.positive("eps", eps, 1e-8)

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        rho, s = self.rho, state["s"]
        # s <- rho * s + (1 - rho) * g^2
        s *= rho
        g2 = np.square(g, out=tmp)
        g2 *= 1.0 - rho
        s += g2
        # theta <- theta - lr * g / (sqrt(s) + eps)
        denom = np.sqrt(s, out=tmp)
        denom += self.eps
        step = np.divide(g, denom, out=tmp)
        step *= lr
        theta -= step


class Adam(Optimizer):
    r"""Adam: momentum on the gradient and on its square, with bias correction.

    With ``m``, ``v`` (zeros at the start) and ``t`` the number of updates of this parameter:

    .. math::

        t &\leftarrow t + 1 \\
        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        \theta &\leftarrow \theta - \mathrm{lr}\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}

    (element-wise). Equal to ``torch.optim.Adam(lr=lr, betas=(beta1, beta2), eps=eps,
    weight_decay=weight_decay)``, where ``weight_decay`` is an L2 term added to ``g``; for
    decoupled weight decay use :class:`AdamW`. ``t`` is counted per parameter, so a parameter
    skipped (``.grad`` None) keeps its own bias correction, as in PyTorch.

    Parameters
    ----------
    lr : float or schedule, default 0.001
        Learning rate (positive) or a schedule ``step -> lr``.
    beta1, beta2 : float, default 0.9 and 0.999
        Decay of the running averages of ``g`` and ``g^2``, in [0, 1).
    eps : float, default 1e-8
        Positive constant added to ``sqrt(v_hat)``.
    weight_decay : float, default 0.0
        L2 coefficient: ``g <- g + weight_decay * theta``.
    clip_norm : float or None, default None
        Clip the global gradient norm to this value first.

    Attributes
    ----------
    state : list of dict
        ``{"m": ndarray, "v": ndarray, "t": int}`` per parameter.

    Examples
    --------
    The first step moves every coordinate by about ``lr`` (``m_hat = g``, ``v_hat = g^2``):

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import Adam
    >>> w = SimpleNamespace(data=np.array([1.0, 1.0]), grad=np.array([3.0, -0.01]))
    >>> Adam(lr=0.1).step([w])
    >>> np.round(w.data, 6)
    array([0.9, 1.1])
    """

    _buffers = ("m", "v")
    _counters = ("t",)
    _hyperparameters = ("beta1", "beta2", "eps", "weight_decay", "clip_norm")
    _default_lr = 0.001

    def __init__(
        self,
        lr: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.beta1 = _checks.unit_interval("beta1", beta1, 0.9)
        self.beta2 = _checks.unit_interval("beta2", beta2, 0.999)
        self.eps = _checks.positive("eps", eps, 1e-8)

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        beta1, beta2, m, v = self.beta1, self.beta2, state["m"], state["v"]
        # t <- t + 1
        t = state["t"] = state["t"] + 1
        # m <- beta1 * m + (1 - beta1) * g
        m *= beta1
        m += np.multiply(g, 1.0 - beta1, out=tmp)
        # v <- beta2 * v + (1 - beta2) * g^2
        v *= beta2
        g2 = np.square(g, out=tmp)
        g2 *= 1.0 - beta2
        v += g2
        # theta <- theta - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / c1, v_hat = v / c2;
        # computed as torch does: (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps).
        c1 = 1.0 - beta1**t
        c2 = 1.0 - beta2**t
        denom = np.sqrt(v, out=tmp)
        denom /= math.sqrt(c2)
        denom += self.eps
        step = np.divide(m, denom, out=tmp)
        step *= lr / c1
        theta -= step


class AdamW(Adam):
    r"""Adam with decoupled weight decay: shrink ``theta`` directly, not through the gradient.

    .. math::

        \theta &\leftarrow \theta - \mathrm{lr}\,\lambda\,\theta
            \qquad (\lambda = \text{weight\_decay}) \\
        \theta &\leftarrow \text{the Adam step of } \theta \text{ with gradient } g

    The decay is not scaled by Adam's ``1 / (sqrt(v_hat) + eps)``, which is the point of AdamW
    (Loshchilov & Hutter, 2019). Equal to ``torch.optim.AdamW(lr=lr, betas=(beta1, beta2),
    eps=eps, weight_decay=weight_decay)``.

    Parameters
    ----------
    lr : float or schedule, default 0.001
        Learning rate (positive) or a schedule ``step -> lr``.
    beta1, beta2 : float, default 0.9 and 0.999
        Decay of the running averages of ``g`` and ``g^2``, in [0, 1).
    eps : float, default 1e-8
        Positive constant added to ``sqrt(v_hat)``.
    weight_decay : float, default 0.01
        Decoupled decay coefficient ``lambda`` (>= 0).
    clip_norm : float or None, default None
        Clip the global gradient norm to this value first.

    Attributes
    ----------
    state : list of dict
        ``{"m": ndarray, "v": ndarray, "t": int}`` per parameter.

    Examples
    --------
    With a zero gradient only the decay acts (the Adam step of a zero gradient is 0):

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import AdamW
    >>> w = SimpleNamespace(data=np.array([2.0, -4.0]), grad=np.zeros(2))
    >>> AdamW(lr=0.1, weight_decay=0.5).step([w])   # theta * (1 - 0.1 * 0.5)
    >>> w.data
    array([ 1.9, -3.8])
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        lr: LearningRate = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay=weight_decay, clip_norm=clip_norm)

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        # theta <- theta - lr * weight_decay * theta
        if self.weight_decay:
            theta *= 1.0 - lr * self.weight_decay
        super()._update(theta, g, state, lr, tmp)
