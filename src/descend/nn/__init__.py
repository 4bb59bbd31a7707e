"""Networks: ``Module``, ``Dense``, ``Sequential``, activations and initializers."""

from descend.nn import init
from descend.nn.activations import (
    ACTIVATIONS,
    Activation,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
)
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential, from_config, mlp, register_module

__all__ = [
    "ACTIVATIONS", "Activation", "Dense", "Module", "ReLU", "Sequential", "Sigmoid", "Softmax",
    "Tanh", "from_config", "get_activation", "init", "mlp", "register_module",
]  # fmt: skip
