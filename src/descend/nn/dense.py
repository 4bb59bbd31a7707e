"""``Dense``: a layer of neurons, each computing activation(inputs . weights + bias)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from descend.autodiff import ops
from descend.autodiff.tensor import Tensor
from descend.nn.activations import activation_name, get_activation
from descend.nn.init import get_initializer
from descend.nn.module import Module


def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(
            f"dtype={dtype!r} is not supported; use np.float32 (default) or np.float64"
        )
    return dt


class Dense(Module):
    """A fully connected layer: ``a = activation(x @ weight + bias)``.

    Unit j of the layer is one neuron: it multiplies the inputs by its weights (column j of
    ``weight``), sums them, adds its bias ``bias[j]``, and passes the sum through the activation.

    Parameters
    ----------
    in_features : int
        Inputs per sample (the previous layer's ``out_features``).
    out_features : int
        Neurons in this layer.
    activation : str, callable or None, default None
        ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``, ``"linear"``
        (same as None), or a function of a Tensor.
    init : str or callable, default "auto"
        Weight initializer: ``"he"`` (the default for ReLU-type activations), ``"glorot"``
        (``"xavier"``; the default otherwise), ``"normal"``, ``"zeros"``, or a callable
        ``(shape, rng, dtype) -> array``. Biases start at zero.
    seed : int, numpy.random.Generator or None
        Seed of the initial weights; the same seed gives the same weights.
    dtype : {np.float32, np.float64}, default np.float32
    bias : bool, default True
        Whether the layer has biases.

    Attributes
    ----------
    weight : Tensor of shape (in_features, out_features)
    bias : Tensor of shape (out_features,) or None

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> layer = ds.nn.Dense(3, 2, activation="relu", seed=0)
    >>> layer.weight.shape, layer.bias.shape
    ((3, 2), (2,))
    >>> layer(np.ones((5, 3))).shape
    (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | Callable | None = None,
        *,
        init: str | Callable = "auto",
        seed: int | np.random.Generator | None = None,
        dtype=np.float32,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.init = init
        dt = _check_dtype(dtype)
        if init == "auto":
            init = "he" if activation_name(activation) in ("relu", "leaky_relu") else "glorot"
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        w = np.asarray(get_initializer(init)((self.in_features, self.out_features), rng, dt), dt)
        if w.shape != (self.in_features, self.out_features):
            raise ValueError(
                f"init={self.init!r} returned shape {w.shape}, expected "
                f"{(self.in_features, self.out_features)}"
            )
        self.weight = Tensor(w, requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_features, dt), requires_grad=True) if bias else None

    def pre_activation(self, x) -> Tensor:
        """z = x @ weight + bias, the weighted sums before the activation.

        Parameters
        ----------
        x : Tensor or ndarray of shape (n_samples, in_features)

        Returns
        -------
        Tensor of shape (n_samples, out_features)

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> layer = ds.nn.Dense(2, 1, init="zeros")
        >>> layer.pre_activation(np.ones((1, 2))).data
        array([[0.]], dtype=float32)
        """
        data = x.data if isinstance(x, Tensor) else x
        if not isinstance(x, Tensor):
            data = x = np.asarray(x, dtype=self.weight.data.dtype)
        self.check_input(data)
        if self.bias is None:
            return ops.matmul(x, self.weight)
        return ops.linear(x, self.weight, self.bias)

    def check_input(self, data: np.ndarray) -> None:
        """Raise a ValueError that says what to change unless ``data`` is (n, in_features)."""
        if data.ndim != 2 or data.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r} expects input of shape (n_samples, {self.in_features}), got "
                f"{data.shape}; set in_features={data.shape[-1] if data.ndim else 1} or check "
                "the previous layer's out_features"
            )

    def forward(self, x) -> Tensor:
        """activation(x @ weight + bias), shape (n_samples, out_features)."""
        return self.activation_fn(self.pre_activation(x))

    def get_config(self) -> dict:
        name = activation_name(self.activation)
        if name is None:
            raise ValueError(
                "a Dense layer with a custom activation function cannot be saved as JSON; use a "
                "built-in activation name or save the weights with state_dict()"
            )
        return {
            "class": "Dense",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "activation": name,
            "bias": self.bias is not None,
            "dtype": str(self.weight.dtype),
        }

    def __repr__(self) -> str:
        act = activation_name(self.activation) or getattr(self.activation_fn, "__name__", "custom")
        return f"Dense({self.in_features}, {self.out_features}, activation={act!r})"
