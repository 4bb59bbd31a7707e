"""The backpropagation view: every layer's activations and partial derivatives, for one batch.

For a network of dense layers ``a_l = f_l(z_l)``, ``z_l = a_{l-1} W_l + b_l`` and a cost C, the
chain rule gives, from the last layer back to the first,

* dC/dz_l = dC/da_l * f_l'(z_l)  (element-wise; for softmax or sigmoid with its cross-entropy,
  the fused dC/dz_L = (p - y) / n)
* dC/dW_l = a_{l-1}^T dC/dz_l     shape (in_features, out_features)
* dC/db_l = sum over samples of dC/dz_l     shape (out_features,)
* dC/da_{l-1} = dC/dz_l W_l^T     the error passed back to the previous layer

:func:`backprop` runs the forward pass, one ``backward()``, and returns each of these per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from descend import losses
from descend.autodiff.tensor import Tensor
from descend.data.validation import check_array
from descend.nn.dense import Dense
from descend.nn.module import Module
from descend.nn.sequential import Sequential


@dataclass
class LayerGradients:
    """One layer's part of the backpropagation view (``None`` where a quantity does not apply).

    Attributes
    ----------
    name : str
        The layer's name in the model (``"0"``, ``"1"``, ...).
    layer : Module
    a_in : ndarray of shape (n_samples, in_features)
        The input activations a_{l-1} (the previous layer's output, or X).
    z : ndarray of shape (n_samples, out_features) or None
        The pre-activation z_l = a_{l-1} W + b (Dense layers).
    a_out : ndarray of shape (n_samples, out_features)
        The output activations a_l = f(z_l).
    dC_dz : ndarray or None
        dC/dz_l (the "error" delta of the layer).
    dC_dW : ndarray of shape (in_features, out_features) or None
    dC_db : ndarray of shape (out_features,) or None
    dC_da_in : ndarray of shape (n_samples, in_features)
        dC/da_{l-1}, the error passed back to the previous layer.
    """

    name: str
    layer: Module
    a_in: np.ndarray
    z: np.ndarray | None
    a_out: np.ndarray
    dC_dz: np.ndarray | None
    dC_dW: np.ndarray | None
    dC_db: np.ndarray | None
    dC_da_in: np.ndarray | None


@dataclass
class BackpropResult:
    """The result of :func:`backprop`: the cost and the per-layer view, first layer first."""

    cost: float
    layers: list[LayerGradients]

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> LayerGradients:
        return self.layers[i]


def backprop(model: Module, X, y, loss: str | Callable = "mse") -> BackpropResult:
    """Run one forward and backward pass and return every layer's activations and derivatives.

    The parameters' ``.grad`` are left exactly as ``backward()`` leaves them (they are first reset
    to None), so ``result[l].dC_dW`` is ``model[l].weight.grad``.

    Parameters
    ----------
    model : Sequential (or a single Dense layer)
    X : ndarray of shape (n_samples, n_features)
        Finite numbers (NaN or inf raise a ValueError that names X).
    y : ndarray
        Targets as the loss expects them (labels, one-hot rows, or values).
    loss : str or callable, default "mse"

    Returns
    -------
    BackpropResult
        ``cost`` (float) and ``layers``, a list of :class:`LayerGradients` in forward order.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 3, 2], output_activation="softmax", seed=0, dtype=np.float64)
    >>> view = ds.backprop(model, np.array([[0.5, -1.0]]), np.array([1]),
    ...                    "categorical_cross_entropy")
    >>> [layer.dC_dW.shape for layer in view]
    [(2, 3), (3, 2)]
    >>> bool(np.array_equal(view[0].dC_dW, model[0].weight.grad))
    True
    """
    layers = list(model.layers) if isinstance(model, Sequential) else [model]
    loss_fn = losses.get(loss)
    dtype = model.dtype or np.float64
    X = check_array(X, name="X", allow_nd=True)  # NaN or inf: a clear error, before any warning
    model.zero_grad()
    # Finite inputs can still overflow in a layer; the cost then says so (a non-finite output),
    # and NumPy's warnings on the way would only add noise before that message.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = Tensor(np.asarray(X, dtype=dtype), requires_grad=True)
        records = []
        for i, layer in enumerate(layers):
            a_in = a.retain_grad()
            if isinstance(layer, Dense):
                z = layer.pre_activation(a_in).retain_grad()
                a = layer.activation_fn(z)
            else:
                z = None
                a = layer(a_in)
            records.append((str(i), layer, a_in, z, a))
        cost = loss_fn(a, y)
        cost.backward()
    out = []
    for name, layer, a_in, z, a_out in records:
        dense = isinstance(layer, Dense)
        out.append(
            LayerGradients(
                name=name,
                layer=layer,
                a_in=a_in.data,
                z=None if z is None else z.data,
                a_out=a_out.data,
                dC_dz=None if z is None else _grad_or_zeros(z),
                dC_dW=layer.weight.grad if dense else None,
                dC_db=layer.bias.grad if dense and layer.bias is not None else None,
                dC_da_in=_grad_or_zeros(a_in),
            )
        )
    return BackpropResult(cost=float(cost.item()), layers=out)


def _grad_or_zeros(t: Tensor) -> np.ndarray:
    return np.zeros_like(t.data) if t.grad is None else t.grad
