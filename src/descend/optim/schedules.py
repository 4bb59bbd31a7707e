"""Learning-rate schedules: callables ``schedule(step) -> lr``.

``step`` is the number of updates done so far (0 before the first update), so an optimizer given
a schedule uses ``schedule(opt.iterations)`` for each step. A schedule is a pure function of
``step``: it keeps no state, and the optimizer's step count is all that is needed to resume it.

==================== =========================================================
name                 lr at step ``t``
==================== =========================================================
``Constant``         ``lr``
``StepDecay``        ``lr * gamma ** (t // step_size)``
``ExponentialDecay`` ``lr * gamma ** t``
``InverseTimeDecay`` ``lr / (1 + decay_rate * t / decay_steps)``
``CosineDecay``      ``min_lr + (lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2``
==================== =========================================================
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from descend._names import close_names, join_or
from descend.optim import _checks

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "get_schedule",
    "from_config",
]


class Schedule:
    """Base class of the learning-rate schedules: ``schedule(step) -> lr``.

    Subclasses store their constructor arguments as attributes of the same names, list them in
    ``_config_keys``, and implement ``_value(step)``.

    Examples
    --------
    >>> from descend.optim.schedules import Schedule
    >>> class Halving(Schedule):
    ...     _config_keys = ("lr",)
    ...     def __init__(self, lr):
    ...         self.lr = lr
    ...     def _value(self, step):
    ...         return self.lr / 2**step
    >>> Halving(1.0)(3)
    0.125
    """

    _config_keys: ClassVar[tuple[str, ...]] = ()

    def __call__(self, step: int) -> float:
        """Learning rate for the update that follows ``step`` updates (``step >= 0``)."""
        return float(self._value(_checks.integer("step", step, minimum=0)))

    def _value(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable description: ``{"class_name": ..., "config": {argument: value}}``.

        Examples
        --------
        >>> from descend.optim import StepDecay
        >>> StepDecay(0.1, step_size=10).get_config()
        {'class_name': 'StepDecay', 'config': {'lr': 0.1, 'step_size': 10, 'gamma': 0.1}}
        """
        return {
            "class_name": type(self).__name__,
            "config": {key: getattr(self, key) for key in self._config_keys},
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._config_keys)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule) or type(self) is not type(other):
            return NotImplemented
        return self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(repr(self))


class Constant(Schedule):
    """The same learning rate at every step: ``lr(t) = lr``.

    Parameters
    ----------
    lr : float
        The learning rate, a positive finite number.

    Examples
    --------
    >>> from descend.optim import Constant
    >>> Constant(0.05)(0), Constant(0.05)(1000)
    (0.05, 0.05)
    """

    _config_keys = ("lr",)

    def __init__(self, lr: float) -> None:
        self.lr = _checks.positive("lr", lr, 0.01)

    def _value(self, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    ``lr(t) = lr * gamma ** (t // step_size)`` (like ``torch.optim.lr_scheduler.StepLR``).

    Parameters
    ----------
    lr : float
        Learning rate for steps ``0 .. step_size - 1``; positive and finite.
    step_size : int
        Number of steps between two decays, >= 1.
    gamma : float, default 0.1
        Decay factor in (0, 1].

    Examples
    --------
    >>> from descend.optim import StepDecay
    >>> s = StepDecay(1.0, step_size=2, gamma=0.5)
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    _config_keys = ("lr", "step_size", "gamma")

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _checks.positive("lr", lr, 0.01)
        self.step_size = _checks.integer("step_size", step_size, minimum=1, suggestion=100)
        self.gamma = _checks.decay_factor("gamma", gamma, 0.1)

    def _value(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """Multiply the learning rate by ``gamma`` at every step: ``lr(t) = lr * gamma ** t``.

    Parameters
    ----------
    lr : float
        Initial learning rate, positive and finite.
    gamma : float
        Decay factor per step, in (0, 1].

    Examples
    --------
    >>> from descend.optim import ExponentialDecay
    >>> s = ExponentialDecay(1.0, gamma=0.5)
    >>> [s(t) for t in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    _config_keys = ("lr", "gamma")

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = _checks.positive("lr", lr, 0.01)
        self.gamma = _checks.decay_factor("gamma", gamma, 0.99)

    def _value(self, step: int) -> float:
        return self.lr * self.gamma**step


class InverseTimeDecay(Schedule):
    """Inverse-time decay: ``lr(t) = lr / (1 + decay_rate * t / decay_steps)``.

    Parameters
    ----------
    lr : float
        Initial learning rate, positive and finite.
    decay_rate : float
        Non-negative; with ``decay_steps = k`` the rate has halved after ``k / decay_rate`` steps.
    decay_steps : float, default 1
        Positive time unit of the decay.

    Examples
    --------
    >>> from descend.optim import InverseTimeDecay
    >>> s = InverseTimeDecay(1.0, decay_rate=0.5, decay_steps=2)
    >>> [s(t) for t in range(5)]
    [1.0, 0.8, 0.6666666666666666, 0.5714285714285714, 0.5]
    """

    _config_keys = ("lr", "decay_rate", "decay_steps")

    def __init__(self, lr: float, decay_rate: float, decay_steps: float = 1) -> None:
        self.lr = _checks.positive("lr", lr, 0.01)
        self.decay_rate = _checks.non_negative(
            "decay_rate", decay_rate, "try decay_rate=0.01 (0 keeps lr constant)"
        )
        self.decay_steps = _checks.positive("decay_steps", decay_steps, 1)

    def _value(self, step: int) -> float:
        return self.lr / (1.0 + self.decay_rate * step / self.decay_steps)


class CosineDecay(Schedule):
    """Half a cosine from ``lr`` down to ``min_lr`` over ``total_steps``, then ``min_lr``.

    ``lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2`` with
    ``T = total_steps`` (the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` for
    ``t <= T``; after ``T`` it stays at ``min_lr`` instead of rising again).

    Parameters
    ----------
    lr : float
        Learning rate at step 0, positive and finite.
    total_steps : int
        Number of steps ``T >= 1`` after which the rate is ``min_lr``.
    min_lr : float, default 0.0
        Final learning rate, ``0 <= min_lr <= lr``. With 0, updates from step ``T`` on do nothing.

    Examples
    --------
    >>> from descend.optim import CosineDecay
    >>> s = CosineDecay(1.0, total_steps=4, min_lr=0.2)
    >>> [round(s(t), 6) for t in range(6)]
    [1.0, 0.882843, 0.6, 0.317157, 0.2, 0.2]
    """

    _config_keys = ("lr", "total_steps", "min_lr")

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0) -> None:
        self.lr = _checks.positive("lr", lr, 0.01)
        self.total_steps = _checks.integer("total_steps", total_steps, minimum=1, suggestion=1000)
        self.min_lr = _checks.non_negative("min_lr", min_lr, "try min_lr=0.0")
        if self.min_lr > self.lr:
            raise ValueError(
                f"min_lr must be <= lr, got min_lr={self.min_lr!r} > lr={self.lr!r}; "
                f"try min_lr={self.lr / 100!r}"
            )

    def _value(self, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


_SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls
    for cls in (Constant, StepDecay, ExponentialDecay, InverseTimeDecay, CosineDecay)
}
# Lookup key: lower case without separators, so "step_decay", "StepDecay" and "step" all work.
_NAMES: dict[str, type[Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "stepdecay": StepDecay,
    "exponential": ExponentialDecay,
    "exponentialdecay": ExponentialDecay,
    "inversetime": InverseTimeDecay,
    "inversetimedecay": InverseTimeDecay,
    "cosine": CosineDecay,
    "cosinedecay": CosineDecay,
}
_VALID_NAMES = ("constant", "step_decay", "exponential_decay", "inverse_time_decay", "cosine_decay")
_CANONICAL = dict(zip(_SCHEDULES.values(), _VALID_NAMES, strict=True))


def get_schedule(name: str | Schedule, **kwargs: Any) -> Schedule:
    """Build a schedule by name, case-insensitively; a ``Schedule`` instance passes through.

    Parameters
    ----------
    name : str or Schedule
        One of ``"constant"``, ``"step_decay"`` (or ``"step"``), ``"exponential_decay"``
        (``"exponential"``), ``"inverse_time_decay"`` (``"inverse_time"``), ``"cosine_decay"``
        (``"cosine"``); class names such as ``"CosineDecay"`` also work.
    **kwargs
        Constructor arguments of the schedule.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from descend.optim import get_schedule
    >>> get_schedule("cosine", lr=0.1, total_steps=100)
    CosineDecay(lr=0.1, total_steps=100, min_lr=0.0)
    """
    if isinstance(name, Schedule):
        if kwargs:
            raise TypeError(
                "get_schedule() takes keyword arguments only with a name, not with a Schedule "
                f"instance ({name!r}); build the schedule with the arguments you want instead"
            )
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a schedule name or a Schedule, got {type(name).__name__}; "
            f"valid names: {', '.join(_VALID_NAMES)}"
        )
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    cls = _NAMES.get(key)
    if cls is None:
        close = list(dict.fromkeys(_CANONICAL[_NAMES[k]] for k in close_names(key, _NAMES)))
        hint = f"; did you mean {join_or([repr(n) for n in close])}?" if close else ""
        raise ValueError(f"unknown schedule {name!r}; valid names: {', '.join(_VALID_NAMES)}{hint}")
    return cls(**kwargs)


def from_config(config: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from the dict returned by its ``get_config()``.

    Parameters
    ----------
    config : dict
        ``{"class_name": "CosineDecay", "config": {"lr": ..., ...}}``.

    Returns
    -------
    Schedule

    Examples
    --------
    >>> from descend.optim import ExponentialDecay, schedule_from_config
    >>> s = ExponentialDecay(0.1, gamma=0.9)
    >>> schedule_from_config(s.get_config()) == s
    True
    """
    cls, kwargs = _split_config(config, _SCHEDULES, "schedule")
    return cls(**kwargs)


def _split_config(
    config: Any, classes: Mapping[str, type], kind: str
) -> tuple[type, dict[str, Any]]:
    """Check a ``{"class_name", "config"}`` dict against ``classes``; return (class, kwargs)."""
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(
            f"a {kind} config must be a dict {{'class_name': ..., 'config': {{...}}}} as returned "
            f"by get_config(), got {config!r}"
        )
    unexpected = set(config) - {"class_name", "config"}
    if unexpected:
        raise ValueError(
            f"a {kind} config has only the keys 'class_name' and 'config', "
            f"got also {sorted(unexpected)}"
        )
    name = config["class_name"]
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown {kind} class_name {name!r}; valid class names: {', '.join(sorted(classes))}"
        )
    kwargs = config.get("config", {})
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"the 'config' of a {kind} config must be a dict, got {kwargs!r}")
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} config has unknown arguments {unknown}; valid arguments: {accepted}"
        )
    return cls, dict(kwargs)
