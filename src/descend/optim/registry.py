"""Optimizers by name (``get``) and from their ``get_config()`` dicts (``from_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from descend._names import close_names, join_or
from descend.optim import schedules
from descend.optim.base import Optimizer
from descend.optim.rules import GD, Adam, AdamW, Momentum, RMSProp

__all__ = ["get", "from_config"]

# name -> (class, default keyword arguments)
_NAMES: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "gd": (GD, {}),
    "sgd": (GD, {}),
    "momentum": (Momentum, {}),
    "nesterov": (Momentum, {"nesterov": True}),
    "rmsprop": (RMSProp, {}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
}
_CLASSES: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (GD, Momentum, RMSProp, Adam, AdamW)
}
_CLASSES["SGD"] = GD


def get(name_or_optimizer: str | Optimizer | type[Optimizer], **kwargs: Any) -> Optimizer:
    """An optimizer by name (case-insensitive), or the given optimizer itself.

    Parameters
    ----------
    name_or_optimizer : str, Optimizer or Optimizer subclass
        ``"gd"``, ``"sgd"``, ``"momentum"``, ``"nesterov"`` (momentum with ``nesterov=True``),
        ``"rmsprop"``, ``"adam"`` or ``"adamw"``; an instance is returned unchanged; a class is
        called with ``kwargs``.
    **kwargs
        Constructor arguments (``lr``, ``momentum``, ...); not allowed with an instance.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones).

    Examples
    --------
    >>> from descend.optim import get
    >>> get("Nesterov", lr=0.05)
    Momentum(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0, clip_norm=None)
    >>> opt = get("adam")
    >>> get(opt) is opt
    True
    """
    if isinstance(name_or_optimizer, Optimizer):
        if kwargs:
            raise TypeError(
                f"get() takes keyword arguments only with a name, not with an optimizer instance "
                f"({name_or_optimizer!r}); set them when you create it"
            )
        return name_or_optimizer
    if isinstance(name_or_optimizer, type) and issubclass(name_or_optimizer, Optimizer):
        return name_or_optimizer(**kwargs)
    valid = ", ".join(repr(n) for n in _NAMES)
    if not isinstance(name_or_optimizer, str):
        raise TypeError(
            f"optimizer must be a name ({valid}) or an Optimizer, "
            f"got {type(name_or_optimizer).__name__}"
        )
    key = name_or_optimizer.strip().lower()
    if key not in _NAMES:
        close = close_names(key, _NAMES)
        hint = f"; did you mean {join_or([repr(n) for n in close])}?" if close else ""
        raise ValueError(f"unknown optimizer {name_or_optimizer!r}; valid names: {valid}{hint}")
    cls, defaults = _NAMES[key]
    return cls(**{**defaults, **kwargs})


def from_config(config: Mapping[str, Any]) -> Optimizer:
    """Rebuild an optimizer (with its schedule) from the dict returned by ``get_config()``.

    The new optimizer has the same hyperparameters and no state; restore the state with
    ``load_state_dict``.

    Parameters
    ----------
    config : dict
        ``{"class_name": "Adam", "config": {"lr": 0.001 or a schedule config, ...}}``.

    Returns
    -------
    Optimizer

    Examples
    --------
    >>> import json
    >>> from descend.optim import AdamW, StepDecay, from_config
    >>> opt = AdamW(lr=StepDecay(0.01, step_size=100), weight_decay=0.1)
    >>> from_config(json.loads(json.dumps(opt.get_config())))
    AdamW(lr=StepDecay(lr=0.01, step_size=100, gamma=0.1), beta1=0.9, beta2=0.999, eps=1e-08, \
weight_decay=0.1, clip_norm=None)
    """
    cls, kwargs = schedules._split_config(config, _CLASSES, "optimizer")
    if isinstance(kwargs.get("lr"), Mapping):
        kwargs["lr"] = schedules.from_config(kwargs["lr"])
    return cls(**kwargs)
