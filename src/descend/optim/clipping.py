"""Gradient clipping by the global norm (the norm of all gradients taken as one long vector).

The optimizers use these with ``clip_norm=max_norm``: every gradient is multiplied by
``clip_coefficient(global_grad_norm(params), max_norm)``, the same rule as
``torch.nn.utils.clip_grad_norm_``. Nothing here writes to ``.grad``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["global_grad_norm", "clip_coefficient"]

# Added to the norm before dividing, as torch does, so a zero gradient gives no division by zero.
CLIP_EPS = 1e-6


def global_grad_norm(params: Iterable[Any]) -> float:
    r"""The 2-norm of all gradients together: ``sqrt(sum_p sum_i grad_p[i] ** 2)``.

    Parameters
    ----------
    params : iterable of objects with ``.grad`` (ndarray of any shape, or None)
        Parameters whose ``.grad`` is None are left out.

    Returns
    -------
    float
        0.0 when no parameter has a gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import global_grad_norm
    >>> a = SimpleNamespace(data=np.zeros(2), grad=np.array([3.0, 0.0]))
    >>> b = SimpleNamespace(data=np.zeros((1, 1)), grad=np.array([[4.0]]))
    >>> global_grad_norm([a, b, SimpleNamespace(data=np.zeros(3), grad=None)])
    5.0
    """
    total = 0.0
    for p in params:
        g = p.grad
        if g is not None:
            total += float(np.vdot(g, g))
    return math.sqrt(total)


def clip_coefficient(total_norm: float, max_norm: float) -> float:
    """Factor that brings a gradient of norm ``total_norm`` down to (about) ``max_norm``.

    ``min(1, max_norm / (total_norm + 1e-6))``: 1.0 (no change) when the norm is already small.

    Parameters
    ----------
    total_norm : float
        Global gradient norm, e.g. from :func:`global_grad_norm`.
    max_norm : float
        Largest norm allowed.

    Returns
    -------
    float
        In (0, 1] for finite inputs.

    Examples
    --------
    >>> from descend.optim import clip_coefficient
    >>> clip_coefficient(10.0, max_norm=1.0) == 1.0 / (10.0 + 1e-6)
    True
    >>> clip_coefficient(0.5, max_norm=1.0)
    1.0
    """
    coefficient = max_norm / (total_norm + CLIP_EPS)
    return coefficient if coefficient < 1.0 else 1.0
