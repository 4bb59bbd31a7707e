"""Activation functions by name, and as layers.

The functions themselves are primitives of :mod:`descend.autodiff` (forward and derivative side
by side there); this module names them and wraps them as layers for :class:`~descend.nn.Sequential`.
"""

from __future__ import annotations

from collections.abc import Callable

from descend._names import resolve
from descend.autodiff import ops
from descend.nn.module import Module


def linear(x):
    """The identity: no activation (a regression output)."""
    return x


ACTIVATIONS: dict[str, Callable] = {
    "relu": ops.relu,
    "leaky_relu": ops.leaky_relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "softmax": ops.softmax,
    "linear": linear,
}


def get_activation(activation: str | Callable | None) -> Callable:
    """The activation function for a name (``"relu"``, ...), a callable, or None (linear).

    Examples
    --------
    >>> import numpy as np
    >>> get_activation("relu")(np.array([-1.0, 2.0])).data
    array([0., 2.])
    """
    if activation is None:
        return linear
    return resolve(activation, ACTIVATIONS, argument="activation", what="activation",
                   callable_hint="a callable taking and returning a Tensor")  # fmt: skip


def activation_name(activation: str | Callable | None) -> str | None:
    """The built-in name of an activation, or None for a user's own callable."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation.lower()
    for name, fn in ACTIVATIONS.items():
        if fn is activation:
            return name
    return None


class Activation(Module):
    """An activation function as a layer of its own (no parameters).

    Parameters
    ----------
    activation : str or callable
        ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"linear"``, or a
        function of a Tensor.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> ds.nn.Activation("relu")(np.array([[-1.0, 1.0]])).data
    array([[0., 1.]])
    """

    def __init__(self, activation: str | Callable = "relu") -> None:
        super().__init__()
        self.activation = activation
        self.fn = get_activation(activation)

    def forward(self, x):
        return self.fn(x)

    def get_config(self) -> dict:
        name = activation_name(self.activation)
        if name is None:
            raise ValueError(
                "a layer with a custom activation function cannot be saved as JSON; use a "
                f"built-in name ({sorted(ACTIVATIONS)}) or save the weights with state_dict()"
            )
        return {"class": "Activation", "activation": name}

    def __repr__(self) -> str:
        name = activation_name(self.activation) or getattr(self.fn, "__name__", "custom")
        return f"Activation({name!r})"


def ReLU() -> Activation:  # noqa: N802 - layer constructors read as classes, as in PyTorch
    """A ReLU layer.

    Examples
    --------
    >>> ReLU()
    Activation('relu')
    """
    return Activation("relu")


def Sigmoid() -> Activation:  # noqa: N802
    """A sigmoid layer.

    Examples
    --------
    >>> Sigmoid()
    Activation('sigmoid')
    """
    return Activation("sigmoid")


def Tanh() -> Activation:  # noqa: N802
    """A tanh layer.

    Examples
    --------
    >>> Tanh()
    Activation('tanh')
    """
    return Activation("tanh")


def Softmax() -> Activation:  # noqa: N802
    """A softmax layer (over the last axis).

    Examples
    --------
    >>> Softmax()
    Activation('softmax')
    """
    return Activation("softmax")
