"""Update rules (gradient descent and its relatives) and learning-rate schedules.

An optimizer turns gradients into parameter updates: ``opt.step(model.parameters())`` moves every
parameter that has a ``.grad`` by one step of its rule, in place.

>>> import numpy as np
>>> from types import SimpleNamespace
>>> from descend import optim
>>> w = SimpleNamespace(data=np.array([4.0]), grad=None)
>>> opt = optim.get("momentum", lr=0.1, momentum=0.5)
>>> for _ in range(100):
...     w.grad = 2 * w.data          # gradient of f(w) = w^2
...     opt.step([w])
>>> bool(abs(w.data[0]) < 1e-6)
True
"""

from descend.optim.base import LearningRate, Optimizer, Parameter
from descend.optim.clipping import clip_coefficient, global_grad_norm
from descend.optim.registry import from_config, get
from descend.optim.rules import GD, SGD, Adam, AdamW, Momentum, RMSProp
from descend.optim.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    Schedule,
    StepDecay,
    get_schedule,
)
from descend.optim.schedules import from_config as schedule_from_config

__all__ = [
    "Optimizer",
    "Parameter",
    "LearningRate",
    "GD",
    "SGD",
    "Momentum",
    "RMSProp",
    "Adam",
    "AdamW",
    "get",
    "from_config",
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "get_schedule",
    "schedule_from_config",
    "global_grad_norm",
    "clip_coefficient",
]
