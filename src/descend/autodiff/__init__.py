"""The backpropagation engine: tensors, the primitives table, reverse mode, grad and gradcheck."""

from descend.autodiff.backward import backward, toposort
from descend.autodiff.functional import GradcheckResult, grad, gradcheck, value_and_grad
from descend.autodiff.ops import (
    abs,
    clip,
    concatenate,
    exp,
    leaky_relu,
    linear,
    log,
    log_softmax,
    matmul,
    max,
    mean,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    sum,
    tanh,
    transpose,
    where,
)
from descend.autodiff.primitives import PRIMITIVES, Primitive, register_primitive, unbroadcast
from descend.autodiff.tensor import Tensor, apply, is_grad_enabled, no_grad

__all__ = [
    "PRIMITIVES", "GradcheckResult", "Primitive", "Tensor", "abs", "apply", "backward", "clip",
    "concatenate", "exp", "grad", "gradcheck", "is_grad_enabled", "leaky_relu", "linear", "log",
    "log_softmax", "matmul", "max", "mean", "no_grad", "register_primitive", "relu", "reshape",
    "sigmoid", "softmax", "sqrt", "sum", "tanh", "toposort", "transpose", "unbroadcast",
    "value_and_grad", "where",
]  # fmt: skip
