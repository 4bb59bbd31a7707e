"""Until ``ds.train.Trainer`` exists: the one update ``ds.fit`` makes, taken one call at a time.

This follows the update of ``ds.fit`` without callbacks path for path (the fused step, plain
gradient descent applied inside it, the graph otherwise; the BLAS thread choice for small
products), so that the playground's updates equal ``fit``'s bit for bit. It goes away when the
Trainer lands: :func:`descend.playground.session._make_trainer` prefers the Trainer.
"""

from __future__ import annotations

from math import isfinite

import numpy as np

from descend import losses
from descend import optim as optim_module
from descend._blas import single_thread_if_small
from descend.train import loop
from descend.train.fused import compile_step


class FitStep:
    """``step(xb, yb) -> float``: the cost of the batch before its update, as ``Trainer`` has it."""

    def __init__(self, model, loss: str, optimizer: optim_module.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.loss_fn = losses.get(loss)
        self.fused = compile_step(model, self.loss_fn)
        self.params = model.parameters()
        self.in_step = self.fused is not None and loop._plain_gd(optimizer)
        if self.in_step:
            optimizer._prepare(self.params)
        self._flops = None

    def check_targets(self, y: np.ndarray) -> np.ndarray:
        """The targets as the step reads them (``fit`` converts them once, before batching)."""
        return y if self.fused is None else self.fused.check_targets(y)

    def step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        if self._flops is None:
            self._flops = loop._largest_matmul_flops(self.model, len(xb))
        with single_thread_if_small(self._flops):
            return self._step(xb, yb)

    def _step(self, xb, yb) -> float:
        if xb.dtype != (self.model.dtype or np.float32):
            xb = xb.astype(self.model.dtype or np.float32)
        rate = self.optimizer.lr
        if self.in_step:
            value = self.fused.descend(xb, yb, rate)
            finite = self.fused.grads_finite
        elif self.fused is not None:
            value = self.fused(xb, yb)
            finite = self.fused.grads_finite
        else:
            self.model.zero_grad()
            cost = self.loss_fn(self.model(xb), yb)
            value = float(cost.data)
            if isfinite(value):
                cost.backward()
            finite = loop._grads_finite(self.params)
        if not isfinite(value) or not finite:
            return float("nan")
        if self.in_step:
            self.optimizer._count_step()
        else:
            self.optimizer.step(self.params)
        return value
