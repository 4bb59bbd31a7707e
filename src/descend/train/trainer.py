"""``Trainer``: one update of gradient descent, as the textbook writes it.

The eager step is the five lines every course teaches::

    model.zero_grad()                  # forget the previous update's gradients
    pred = model(X_batch)              # forward pass
    cost = loss(pred, y_batch)         # the cost of this batch
    cost.backward()                    # backpropagation: dC/dW, dC/db for every layer
    optimizer.step(model.parameters()) # gradient descent: theta <- theta - lr * dC/dtheta

With ``compile=True`` the Trainer asks for a compiled form of the same step (one plan of the same
primitives, replayed in reused buffers) and falls back to the five lines, saying why in
``trainer.why_eager``, when the model or cost cannot be compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite

import numpy as np

from descend import losses, optim
from descend.autodiff.tensor import Tensor
from descend.compile import NotCompilable, compile_step
from descend.nn.module import Module
from descend.train.checks import check_model, checked_targets, resolve_optimizer


class DivergenceError(FloatingPointError):
    """Training diverged: the cost (or a gradient) became NaN or infinite, or exploded.

    Attributes
    ----------
    step : int
        The update (from 0) at which it happened.
    epoch : int or None
        The epoch (None when raised by :meth:`Trainer.step` outside ``fit``).
    lr : float
        The learning rate in use.
    history : History or None
        Everything recorded up to that point (None outside ``fit``).
    what, value
        What diverged (``"the cost"``, ``"a gradient"``, ...) and what it became.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X = np.random.default_rng(0).normal(size=(32, 2)) * 100
    >>> try:
    ...     ds.fit(ds.nn.mlp([2, 1], seed=0), X, X.sum(axis=1) ** 2, loss="mse",
    ...            optimizer=ds.optim.GD(10.0), batch_size=8, epochs=20, progress=False)
    ... except ds.DivergenceError as err:
    ...     print(err.lr, err.step == err.history.n_updates)
    10.0 True
    """

    def __init__(
        self,
        message: str,
        *,
        step: int,
        epoch: int | None,
        lr: float,
        history=None,
        what: str = "the cost",
        value: object = "not finite",
    ):
        super().__init__(message)
        self.step, self.epoch, self.lr, self.history = step, epoch, lr, history
        self.what, self.value = what, value


class Trainer:
    """One update of gradient descent on ``model``: forward, cost, backward, optimizer step.

    Parameters
    ----------
    model : Module
        The network; trained in place.
    loss : str or callable
        The cost (see :func:`descend.losses.get`).
    optimizer : str or Optimizer, default "gd"
        The update rule, or its name (see :func:`descend.optim.get`).
    compile : bool, default True
        Run each update as a compiled plan of the same primitives (the same numbers, faster)
        when the model and cost can be compiled; else, or with False, the eager graph.

    Attributes
    ----------
    executor : {"compiled", "eager"}
        Which form ran (or will run) the updates.
    why_eager : str or None
        Why the step is eager: ``"compile=False"``, or why it could not be compiled.
    plan : object or None
        The compiled plan (``print(trainer.plan)`` lists it); None when eager.
    cost : Tensor or None
        The last eager update's cost, with its graph (None when compiled).
    output : ndarray or None
        The network's output for the last batch, computed before the update.
    n_steps : int
        The updates this Trainer applied.
    reads_grads : bool, default True
        Whether the parameters' ``.grad`` must hold the gradients after every update. When
        False, a compiled step may fold a plain-GD update into the weight-gradient product and
        write ``.grad`` only at :meth:`finish` (``fit`` sets it from its callbacks).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> model = ds.nn.mlp([2, 1], seed=0)
    >>> trainer = ds.train.Trainer(model, loss="mse", optimizer=ds.optim.GD(0.1), compile=False)
    >>> X, y = np.ones((4, 2), np.float32), np.zeros(4, np.float32)
    >>> first = trainer.step(X, y)
    >>> trainer.step(X, y) < first, trainer.executor, trainer.plan is None
    (True, 'eager', True)
    """

    def __init__(
        self,
        model: Module,
        *,
        loss: str | Callable,
        optimizer: str | optim.Optimizer = "gd",
        compile: bool = True,
    ) -> None:
        check_model(model)
        self.model = model
        self.loss = losses.get(loss)
        self.optimizer = resolve_optimizer(optimizer, None)
        self.params = model.parameters()  # the same list at every step (the optimizer's check)
        if not self.params:
            raise ValueError("the model has no trainable parameters (no Tensor with requires_grad)")
        self.compile = bool(compile)
        self.why_eager: str | None = None if self.compile else "compile=False"
        self.reads_grads = True
        self.cost: Tensor | None = None
        self.n_steps = 0
        self._pred = None
        self._compiled = None
        self._targets_checked = False

    @property
    def executor(self) -> str:
        return "eager" if self.why_eager is not None else "compiled"

    @property
    def plan(self):
        return None if self._compiled is None else self._compiled.plan

    @property
    def output(self) -> np.ndarray | None:
        if self._compiled is not None:
            return self._compiled.output
        pred = self._pred
        return pred.data if isinstance(pred, Tensor) else pred

    def prepare(self, X: np.ndarray, y: np.ndarray, batch_size: int) -> np.ndarray:
        """Get ready to train on ``(X, y)`` in batches of ``batch_size`` rows.

        Checks every target once against the cost and the model's output (so that a wrong
        label is reported as a problem of ``y``, not of some batch) and compiles the step.
        ``X`` must be in the model's dtype (a memory-mapped file may be in any).

        Returns
        -------
        ndarray
            ``y`` as the cost computes with it (see :func:`descend.losses.check_target`):
            pass its batches to :meth:`step`.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> trainer = ds.train.Trainer(ds.nn.mlp([2, 3], output_activation="softmax", seed=0),
        ...                            loss="categorical_cross_entropy")
        >>> X, y = np.zeros((6, 2), np.float32), np.array([0, 1, 2, 0, 1, 2])
        >>> trainer.prepare(X, y, batch_size=3).dtype == np.intp, trainer.executor
        (True, 'compiled')
        """
        dtype = self.model.dtype or np.float32
        y = checked_targets(self.model, X, y, self.loss, dtype, "y")
        self._targets_checked = True
        if self.compile and self._compiled is None and self.why_eager is None:
            rows = min(batch_size, len(X))
            self._try_compile(np.asarray(X[:rows], dtype), y[:rows])
            hook = getattr(self._compiled, "prepare", None)
            if hook is not None:
                hook(X, batch_size)
        return y

    def step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """One update on the batch ``(xb, yb)``; returns its cost before the update.

        Raises
        ------
        DivergenceError
            When the cost or a gradient is not finite: nothing was updated.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> model = ds.nn.mlp([1, 1], seed=0)
        >>> trainer = ds.train.Trainer(model, loss="mse", optimizer=ds.optim.GD(0.1))
        >>> X, y = np.ones((2, 1), np.float32), np.zeros(2, np.float32)
        >>> costs = [trainer.step(X, y) for _ in range(3)]
        >>> costs[0] > costs[1] > costs[2], trainer.n_steps
        (True, 3)
        """
        if self._compiled is None and self.why_eager is None:
            self._try_compile(xb, yb)
        if self._compiled is not None:
            return self._compiled_step(xb, yb)
        self.model.zero_grad()  # 1. forget the previous update's gradients
        pred = self._pred = self.model(xb)  # 2. forward pass
        cost = self.cost = self._cost(pred, yb)  # 3. the cost of this batch
        value = float(cost.data)
        if not isfinite(value):
            raise self._diverged("the cost", value)
        cost.backward()  # 4. backpropagation
        if not _grads_finite(self.params):
            raise self._diverged("a gradient", "not finite")
        self.optimizer.step(self.params)  # 5. gradient descent
        self.n_steps += 1
        return value

    def finish(self) -> None:
        """Write out what the compiled step deferred (the weights' ``.grad``, see
        ``reads_grads``); call it when training ends. Nothing to do when eager.

        Examples
        --------
        >>> import numpy as np, descend as ds
        >>> model = ds.nn.mlp([1, 1], seed=0)
        >>> trainer = ds.train.Trainer(model, loss="mse", optimizer=ds.optim.GD(0.1))
        >>> trainer.reads_grads = False  # nothing reads .grad between the steps
        >>> _ = trainer.step(np.ones((2, 1), np.float32), np.zeros(2, np.float32))
        >>> trainer.finish(); model[0].weight.grad.shape
        (1, 1)
        """
        if self._compiled is not None:
            self._compiled.finish()

    def _compiled_step(self, xb, yb) -> float:
        compiled = self._compiled
        value = compiled.run(xb, yb)
        if not isfinite(value):
            raise self._diverged("the cost", value)
        if not compiled.grads_finite:
            raise self._diverged("a gradient", "not finite")
        self.n_steps += 1
        return value

    def _try_compile(self, xb, yb) -> None:
        try:
            compiled = compile_step(self.model, self.loss, self.optimizer, xb, yb)
        except NotCompilable as exc:
            self.why_eager = str(exc)
            return
        compiled.reads_grads = self.reads_grads
        compiled.targets_checked = self._targets_checked
        self._compiled = compiled

    def _cost(self, pred, yb) -> Tensor:
        """The cost of a batch, checked: a one-element Tensor, or a divergence."""
        try:
            cost = self.loss(pred, yb)
        except losses.CostOverflowError:
            raise self._diverged("the cost", "not finite") from None
        except ValueError:
            data = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
            if data.dtype.kind == "f" and not np.isfinite(data).all():
                raise self._diverged("the network's output", "not finite") from None
            raise
        if not isinstance(cost, Tensor) or cost.data.size != 1:
            shape = f" of shape {cost.shape}" if hasattr(cost, "shape") else ""
            raise TypeError(
                f"loss must return a one-element Tensor (the mean cost of the batch), got "
                f"{type(cost).__name__}{shape}"
            )
        return cost

    def _diverged(self, what: str, value) -> DivergenceError:
        lr = self.optimizer.lr
        return DivergenceError(
            f"training diverged at update {self.n_steps}: {what} became {value}; nothing was "
            f"updated. Try a smaller learning rate (lr={lr:g} now; e.g. lr={lr / 10:g})",
            step=self.n_steps, epoch=None, lr=lr, what=what, value=value,
        )  # fmt: skip


def _grads_finite(params) -> bool:
    # max and min propagate NaN and reach +-inf: two passes that allocate nothing.
    for p in params:
        g = p.grad
        if g is not None and not (np.isfinite(g.max()) and np.isfinite(g.min())):
            return False
    return True


__all__ = ["DivergenceError", "Trainer"]
