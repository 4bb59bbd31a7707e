"""``Sequential``: layers applied one after another; and ``mlp`` to build one from sizes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from descend.nn.activations import Activation
from descend.nn.dense import Dense
from descend.nn.module import Module


class Sequential(Module):
    """A network that applies its layers in order: ``model(x) = layers[-1](...layers[0](x))``.

    Parameters
    ----------
    *layers : Module
        The layers. Their parameters are named by position: ``"0.weight"``, ``"0.bias"``, ...

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.Sequential(
    ...     ds.nn.Dense(4, 8, activation="relu", seed=0),
    ...     ds.nn.Dense(8, 3, activation="softmax", seed=1),
    ... )
    >>> model(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        previous = None
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"layer {i} of Sequential is a {type(layer).__name__}, not a Module; "
                    "pass layers such as ds.nn.Dense(...) or ds.nn.Activation('relu')"
                )
            if isinstance(layer, Dense):
                if previous is not None and previous.out_features != layer.in_features:
                    raise ValueError(
                        f"layer {i} ({layer!r}) has in_features={layer.in_features} but the "
                        f"previous Dense layer gives {previous.out_features} outputs; set "
                        f"in_features={previous.out_features}"
                    )
                previous = layer
            setattr(self, str(i), layer)
        self.layers: list[Module] = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def get_config(self) -> dict:
        return {"class": "Sequential", "layers": [layer.get_config() for layer in self.layers]}

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def mlp(
    sizes: Sequence[int],
    activation: str | Callable = "relu",
    output_activation: str | Callable | None = None,
    *,
    seed: int | np.random.Generator | None = None,
    dtype=np.float32,
) -> Sequential:
    """A multi-layer perceptron: Dense layers of the given sizes, one after another.

    Parameters
    ----------
    sizes : sequence of int
        Input features, then each layer's units: ``[784, 256, 10]`` is 784 -> 256 -> 10.
    activation : str or callable, default "relu"
        The hidden layers' activation.
    output_activation : str, callable or None
        The last layer's: ``"softmax"`` (classes), ``"sigmoid"`` (binary), None (regression).
    seed : int, Generator or None
        One seed for all initial weights (each layer draws from the same generator in turn).
    dtype : {np.float32, np.float64}

    Returns
    -------
    Sequential

    Examples
    --------
    >>> import descend as ds
    >>> ds.nn.mlp([4, 8, 3], output_activation="softmax", seed=0)
    Sequential(
      (0): Dense(4, 8, activation='relu')
      (1): Dense(8, 3, activation='softmax')
    )
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least [n_inputs, n_outputs], got {sizes}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        act = output_activation if i == len(sizes) - 2 else activation
        layers.append(Dense(n_in, n_out, activation=act, seed=rng, dtype=dtype))
    return Sequential(*layers)


_MODULES: dict[str, type] = {"Dense": Dense, "Sequential": Sequential, "Activation": Activation}


def register_module(cls: type) -> type:
    """Make a Module subclass loadable by :func:`from_config` (usable as a decorator).

    Examples
    --------
    >>> import descend as ds
    >>> @ds.nn.register_module
    ... class Identity(ds.nn.Module):
    ...     def forward(self, x):
    ...         return x
    ...     def get_config(self):
    ...         return {"class": "Identity"}
    >>> ds.nn.from_config({"class": "Identity"})
    Identity()
    """
    _MODULES[cls.__name__] = cls
    return cls


def from_config(config: dict) -> Module:
    """Rebuild a module (with fresh weights) from :meth:`Module.get_config`.

    Examples
    --------
    >>> import descend as ds
    >>> model = ds.nn.mlp([2, 3, 1], seed=0)
    >>> ds.nn.from_config(model.get_config()).get_config() == model.get_config()
    True
    """
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"a module config must be a dict with a 'class' key, got {config!r}")
    name = config["class"]
    if name not in _MODULES:
        raise ValueError(f"unknown module class {name!r}; known: {sorted(_MODULES)}")
    args = {k: v for k, v in config.items() if k != "class"}
    if name == "Sequential":
        return Sequential(*[from_config(c) for c in args.get("layers", [])])
    if name == "Dense":
        args["dtype"] = np.dtype(args.get("dtype", "float32"))
        return Dense(**args)
    return _MODULES[name](**args)
