"""The optimizer base class: the step loop, per-parameter state, and saving/restoring that state.

A *parameter* is any object with ``.data`` (a floating-point ndarray, updated in place) and
``.grad`` (an ndarray of the same shape, or None for "no gradient this step"). The update rules
(:mod:`descend.optim.rules`) only say what one step does to one parameter; everything else
(learning-rate schedule, gradient clipping, L2 weight decay, bookkeeping) lives here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Real
from typing import Any, ClassVar, Protocol

import numpy as np

from descend.optim import _checks
from descend.optim.clipping import clip_coefficient, global_grad_norm
from descend.optim.schedules import Schedule

__all__ = ["Optimizer", "Parameter", "LearningRate"]

LearningRate = float | Schedule | Callable[[int], float]


class Parameter(Protocol):
    """What an optimizer needs from a parameter (``descend.Tensor`` leaves have both)."""

    data: np.ndarray
    grad: np.ndarray | None


class Optimizer:
    r"""Base class of the update rules: ``opt.step(params)`` applies one update to every parameter.

    Before the rule sees the gradient of parameter ``theta``, two optional steps shape it (the
    parameter's ``.grad`` itself is never written to)::

        g <- grad * min(1, clip_norm / (||grad||_global + 1e-6))   if clip_norm is set
        g <- g + weight_decay * theta                               if weight_decay > 0

    where ``||grad||_global`` is the 2-norm of all gradients of this step taken together (as
    ``torch.nn.utils.clip_grad_norm_``). :class:`~descend.optim.AdamW` instead decays
    ``theta`` directly (decoupled weight decay).

    Parameters
    ----------
    lr : float or callable
        Learning rate: a positive finite number, or a schedule ``step -> lr`` (see
        :mod:`descend.optim.schedules`) evaluated at :attr:`iterations` before each step.
    weight_decay : float, default 0.0
        L2 penalty coefficient, >= 0.
    clip_norm : float or None, default None
        Largest global gradient norm; None turns clipping off.

    Attributes
    ----------
    lr : float
        The learning rate the next step will use (settable: a number or a schedule).
    lr_schedule : callable or None
        The schedule, when ``lr`` was given as one.
    iterations : int
        Number of steps taken. A step in which every ``.grad`` is None updates nothing and is not
        counted (so it does not advance the schedule either).
    state : list of dict
        Per-parameter state (e.g. ``{"v": ndarray}`` for momentum), in the order of the
        parameters given to :meth:`step`; empty before the first step.

    Notes
    -----
    State is kept by position: ``step`` must get the same parameters in the same order each time
    (``model.parameters()`` does). A different number of parameters or a different shape raises
    ValueError; call :meth:`reset` (or make a new optimizer) to start over on another model.
    State buffers have the parameter's dtype, so float32 models stay float32.

    Examples
    --------
    Any parameter-like object works; the optimizer only reads ``.grad`` and updates ``.data``.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from descend.optim import Momentum
    >>> w = SimpleNamespace(data=np.array([1.0, 2.0]), grad=np.array([1.0, -1.0]))
    >>> opt = Momentum(lr=0.1, momentum=0.5)
    >>> opt.step([w]); opt.step([w])   # v = g, then v = 0.5 * v + g = 1.5 * g
    >>> w.data                          # theta - 0.1 * g - 0.1 * 1.5 * g
    array([0.75, 2.25])
    >>> opt.iterations, opt.state[0]["v"]
    (2, array([ 1.5, -1.5]))
    """

    # Names of the per-parameter ndarray buffers (zeros at the start) and integer counters.
    _buffers: ClassVar[tuple[str, ...]] = ()
    _counters: ClassVar[tuple[str, ...]] = ()
    # Constructor arguments other than lr, stored as attributes of the same name (get_config).
    _hyperparameters: ClassVar[tuple[str, ...]] = ("weight_decay", "clip_norm")
    _default_lr: ClassVar[float] = 0.01
    # AdamW decays theta in its rule; the others add weight_decay * theta to the gradient.
    _decoupled_weight_decay: ClassVar[bool] = False

    def __init__(
        self, lr: LearningRate, *, weight_decay: float = 0.0, clip_norm: float | None = None
    ) -> None:
        self.lr = lr
        self.weight_decay = _checks.non_negative(
            "weight_decay", weight_decay, "use weight_decay=0.0 for none, or e.g. 1e-4"
        )
        self.clip_norm = _checks.optional_positive("clip_norm", clip_norm, 1.0)
        self.reset()

    # ------------------------------------------------------------------ learning rate
    @property
    def lr(self) -> float:
        """The learning rate the next step will use."""
        if self._lr_schedule is None:
            return self._lr_value
        return self._scheduled_lr(self._iterations)

    @lr.setter
    def lr(self, value: LearningRate) -> None:
        if callable(value):
            self._lr_schedule: Callable[[int], float] | None = value
            self._lr_value = math.nan
        else:
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(
                    "lr must be a positive number or a schedule (a callable step -> lr), "
                    f"got {type(value).__name__} {value!r}"
                )
            self._lr_value = _checks.positive("lr", value, self._default_lr)
            self._lr_schedule = None

    @property
    def lr_schedule(self) -> Callable[[int], float] | None:
        """The learning-rate schedule, or None when ``lr`` is a constant."""
        return self._lr_schedule

    def _scheduled_lr(self, step: int) -> float:
        value = self._lr_schedule(step)  # type: ignore[misc]
        try:
            lr = _checks.real("lr", value)
        except TypeError:
            lr = math.nan
        if not (math.isfinite(lr) and lr >= 0.0):
            raise ValueError(
                f"the lr schedule {self._lr_schedule!r} returned {value!r} at step {step}; "
                "a schedule must return a finite number >= 0"
            )
        return lr

    # ------------------------------------------------------------------ state
    @property
    def iterations(self) -> int:
        """Number of steps taken (steps where every gradient was None are not counted)."""
        return self._iterations

    @property
    def state(self) -> list[dict[str, Any]]:
        """Per-parameter state dicts, by position (live buffers: read, do not write)."""
        return list(self._state or ())

    def reset(self) -> None:
        """Forget all state: the step count goes to 0 and buffers are dropped.

        Examples
        --------
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> from descend.optim import Adam
        >>> opt = Adam()
        >>> opt.step([SimpleNamespace(data=np.zeros(3), grad=np.ones(3))])
        >>> opt.reset()
        >>> opt.iterations, opt.state
        (0, [])
        """
        self._iterations = 0
        self._state: list[dict[str, Any]] | None = None
        # Shapes the state was made for; None for a parameter whose shape is not known yet
        # (a loaded state of a rule without buffers).
        self._shapes: list[tuple[int, ...] | None] = []
        # Scratch arrays per parameter, reused by every step: [work, effective gradient].
        self._scratch: list[list[np.ndarray | None]] = []
        # False after load_state_dict: the next step checks shapes and casts dtypes.
        self._bound = True
        # The parameter list and arrays the last step checked (see _prepare).
        self._checked: tuple | None = None
        # (the checked parameter list, the rule's step per parameter bound to its arrays):
        # see _bound_steps
        self._steps: tuple | None = None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this optimizer is: numbers and arrays.

        Returns
        -------
        dict
            ``"iterations"`` (int), ``"n_params"`` (int), and for parameter ``i`` each buffer as
            ``"state.{i}.{name}"`` (a copy, shape of the parameter) and each counter as an int.
            Flat, so ``np.savez(path, **opt.state_dict())`` stores it. The schedule's position is
            ``iterations`` (schedules are pure functions of the step); hyperparameters are in
            :meth:`get_config`.

        Examples
        --------
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> from descend.optim import Adam
        >>> w = SimpleNamespace(data=np.zeros(2), grad=np.array([1.0, -1.0]))
        >>> opt = Adam(lr=0.1)
        >>> opt.step([w])
        >>> sorted(opt.state_dict())
        ['iterations', 'n_params', 'state.0.m', 'state.0.t', 'state.0.v']
        >>> again = Adam(lr=0.1)
        >>> again.load_state_dict(opt.state_dict())
        >>> again.iterations, again.state[0]["t"]
        (1, 1)
        """
        state = self._state or []
        out: dict[str, Any] = {"iterations": self._iterations, "n_params": len(state)}
        for i, st in enumerate(state):
            for name in self._buffers:
                out[f"state.{i}.{name}"] = st[name].copy()
            for name in self._counters:
                out[f"state.{i}.{name}"] = int(st[name])
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` (arrays are copied).

        Parameters
        ----------
        state_dict : mapping
            As returned by :meth:`state_dict` of the same optimizer class (an ``np.load``-ed
            ``.npz`` works too: 0-d integer arrays count as integers).

        Raises
        ------
        ValueError
            Missing or unexpected keys (e.g. the state of another optimizer class), negative
            counts, or buffers of one parameter with different shapes. Nothing is changed then.

        Examples
        --------
        See :meth:`state_dict`.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a dict as returned by state_dict(), "
                f"got {type(state_dict).__name__}"
            )
        keys = set(state_dict.keys())
        name = type(self).__name__
        for key in ("iterations", "n_params"):
            if key not in keys:
                raise ValueError(
                    f"state_dict has no key {key!r}; {name}.load_state_dict expects the dict "
                    "returned by state_dict()"
                )
        iterations = _checks.integer("iterations", state_dict["iterations"], minimum=0)
        n_params = _checks.integer("n_params", state_dict["n_params"], minimum=0)
        per_param = self._buffers + self._counters
        expected = {"iterations", "n_params"}
        expected |= {f"state.{i}.{k}" for i in range(n_params) for k in per_param}
        missing, unexpected = sorted(expected - keys), sorted(keys - expected)
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not fit {name} with {n_params} parameters "
                f"(per-parameter state {list(per_param)}): missing keys {_few(missing)}, "
                f"unexpected keys {_few(unexpected)}; was it saved from another optimizer class?"
            )
        new_state: list[dict[str, Any]] = []
        shapes: list[tuple[int, ...] | None] = []
        for i in range(n_params):
            st: dict[str, Any] = {}
            shape = None
            for k in self._buffers:
                key = f"state.{i}.{k}"
                arr = state_dict[key]
                if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
                    raise TypeError(
                        f"state_dict[{key!r}] must be a floating-point ndarray, "
                        f"got {type(arr).__name__} {getattr(arr, 'dtype', '')}"
                    )
                if shape is not None and arr.shape != shape:
                    first = f"state.{i}.{self._buffers[0]}"
                    raise ValueError(
                        f"state_dict[{key!r}] has shape {arr.shape} but state_dict[{first!r}] "
                        f"has shape {shape}; both belong to parameter {i} and must match"
                    )
                shape = arr.shape
                st[k] = arr.copy()
            for k in self._counters:
                st[k] = _checks.integer(f"state.{i}.{k}", state_dict[f"state.{i}.{k}"], minimum=0)
            new_state.append(st)
            shapes.append(shape)
        self.reset()
        self._iterations = iterations
        if n_params:
            self._state = new_state
            self._shapes = shapes
            self._scratch = [[None, None] for _ in range(n_params)]
            self._bound = False
            self._checked = None
            self._steps = None

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``{"class_name": ..., "config": {...}}``.

        A schedule given as ``lr`` appears as its own ``get_config()`` dict; a plain callable
        (not a :class:`~descend.optim.schedules.Schedule`) cannot be described and raises
        TypeError.

        Examples
        --------
        >>> from descend.optim import GD, CosineDecay
        >>> GD(lr=CosineDecay(0.1, total_steps=50)).get_config()  # doctest: +NORMALIZE_WHITESPACE
        {'class_name': 'GD', 'config': {'lr': {'class_name': 'CosineDecay',
         'config': {'lr': 0.1, 'total_steps': 50, 'min_lr': 0.0}},
         'weight_decay': 0.0, 'clip_norm': None}}
        """
        if self._lr_schedule is None:
            lr: Any = self._lr_value
        elif hasattr(self._lr_schedule, "get_config"):
            lr = self._lr_schedule.get_config()
        else:
            raise TypeError(
                f"lr is a plain callable ({self._lr_schedule!r}), which get_config() cannot "
                "describe; use a schedule from descend.optim.schedules"
            )
        config = {"lr": lr}
        config.update({key: getattr(self, key) for key in self._hyperparameters})
        return {"class_name": type(self).__name__, "config": config}

    def __repr__(self) -> str:
        lr = self._lr_value if self._lr_schedule is None else self._lr_schedule
        args = [f"lr={lr!r}"] + [f"{k}={getattr(self, k)!r}" for k in self._hyperparameters]
        return f"{type(self).__name__}({', '.join(args)})"

    # ------------------------------------------------------------------ the step
    def step(
        self,
        params: Iterable[Parameter] | Mapping[str, Parameter],
        *,
        products: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Update every parameter that has a gradient, in place, by one step of the rule.

        Parameters
        ----------
        params : iterable of parameters, or a mapping name -> parameter (its values are used)
            The same parameters, in the same order, at every step. A parameter whose ``.grad``
            is None is skipped and its state left as it is.
        products : mapping of int to (a, b), optional
            Parameters (by position) whose gradient is the product ``a.T @ b``, given as its two
            factors and never written out: the rule takes its step from them
            (:meth:`step_from_product`). Only for a rule whose :attr:`folds_products` is True
            (the compiled step's ``fold_gd`` rewrite uses it).

        Raises
        ------
        ValueError
            No parameters; a number of parameters or a shape other than the state was made for;
            a gradient whose shape differs from its parameter's.

        Examples
        --------
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> from descend.optim import GD
        >>> w = SimpleNamespace(data=np.array([1.0, -2.0]), grad=np.array([0.5, -1.0]))
        >>> frozen = SimpleNamespace(data=np.array([3.0]), grad=None)
        >>> GD(lr=0.1).step([w, frozen])   # theta <- theta - 0.1 * grad
        >>> w.data, frozen.data
        (array([ 0.95, -1.9 ]), array([3.]))
        """
        params = self._prepare(params)
        lr = self.lr
        if products:
            self._check_folds()
        scale = None
        if self.clip_norm is not None:
            coefficient = clip_coefficient(global_grad_norm(params), self.clip_norm)
            if coefficient < 1.0:
                scale = coefficient
        state, updated = self._state, False
        assert state is not None
        # the gradient as it is, when neither clipping nor the L2 term changes it (see
        # _effective_grad): then no call per parameter is needed to find that out
        wd = 0.0 if self._decoupled_weight_decay else self.weight_decay
        as_is = scale is None and wd == 0.0
        folds = tuple(products) if products else ()
        bound = self._steps
        if as_is and bound is not None and bound[0] is params and bound[2] == folds:
            # the same checked list and arrays, and the same folded parameters, as the step
            # that bound them: the rule's own step per parameter, without the loop's lookups
            bound[1](lr, products)
            self._iterations += 1
            return
        self._steps = None
        scratch, update = self._scratch, self._update
        for i, p in enumerate(params):
            grad = p.grad
            if grad is None:
                if products and i in products:
                    self.step_from_product(p.data, *products[i], lr)
                    updated = True
                continue
            theta = p.data
            g = grad if as_is else self._effective_grad(i, theta, grad, scale)
            tmp = scratch[i][0]
            if tmp is None and self._uses_scratch:
                tmp = self._work(i, 0, theta)
            update(theta, g, state[i], lr, tmp)
            updated = True
        if updated:
            self._iterations += 1
            if as_is and all(p.grad is not None or i in folds for i, p in enumerate(params)):
                steps = self._bound_steps(params, folds)
                self._steps = None if steps is None else (params, steps, folds)

    def _bound_steps(
        self, params: list[Any], folds: tuple[int, ...]
    ) -> Callable[[float, Mapping | None], None] | None:
        """The rule's step of every parameter as one call ``f(lr, products)``, bound to the
        arrays the step just used (their ``.data``, ``.grad`` and state; ``folds``: the
        positions of the parameters it stepped from ``products``): the next step on the same
        arrays and positions calls it and nothing else. None (the default): every step goes
        through :meth:`_update`."""
        return None

    @property
    def folds_products(self) -> bool:
        """Whether this rule can take its step from a gradient given as a product ``a.T @ b``
        (:meth:`step_from_product`); False for every rule but plain gradient descent."""
        return False

    def step_from_product(self, theta: np.ndarray, a: np.ndarray, b: np.ndarray, lr: float) -> None:
        """One step of the rule on ``theta`` whose gradient is ``a.T @ b``, not written out.

        Only rules with :attr:`folds_products` implement it (``GD.step_from_product``).
        """
        raise TypeError(f"{type(self).__name__} cannot take its step from a product")

    def _check_folds(self) -> None:
        if not self.folds_products:
            raise TypeError(
                f"products= was given to {type(self).__name__}.step, whose rule cannot take its "
                "step from a product (folds_products is False); give the gradients in .grad"
            )

    _uses_scratch = True
    """Whether :meth:`_update` writes to its ``tmp`` (a scratch array the size of each
    parameter, made at the first step and kept); False: ``tmp`` is None and none is made."""

    def _update(
        self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, tmp: np.ndarray
    ) -> None:
        """One step of the rule on one parameter: ``theta`` in place, from gradient ``g``.

        ``g`` must not be written to (it may be the parameter's ``.grad``); ``tmp`` is a scratch
        array of ``theta``'s shape and dtype, free to overwrite (None for a rule whose
        :attr:`_uses_scratch` is False).
        """
        raise NotImplementedError

    def _effective_grad(
        self, i: int, theta: np.ndarray, grad: np.ndarray, scale: float | None
    ) -> np.ndarray:
        """The gradient the rule sees: clipped, plus the L2 term. ``grad`` is only read."""
        wd = 0.0 if self._decoupled_weight_decay else self.weight_decay
        if scale is None and wd == 0.0:
            return grad
        g = self._work(i, 1, theta)
        if scale is None:
            # g <- grad + wd * theta
            np.multiply(theta, wd, out=g)
            g += grad
            return g
        # g <- scale * grad (clipped), then g <- g + wd * theta
        np.multiply(grad, scale, out=g)
        if wd:
            g += np.multiply(theta, wd, out=self._work(i, 0, theta))
        return g

    def _work(self, i: int, k: int, theta: np.ndarray) -> np.ndarray:
        """Scratch array ``k`` of parameter ``i``, made on first use and then reused."""
        buf = self._scratch[i][k]
        if buf is None:
            buf = self._scratch[i][k] = np.empty_like(theta)
        return buf

    def _prepare(self, params: Any) -> list[Any]:
        """List the parameters; make the state on the first step, else check it still fits."""
        checked = self._checked
        if checked is not None and params is checked[0]:
            # The same list object with the same arrays as the step before (fit's loop, the
            # compiled step's reused gradient buffers): already checked, nothing can have
            # changed shape. The list given is kept (not its copy), so this is found again.
            listed, arrays = checked[1], checked[2]
            if len(params) == len(arrays):
                # a loop, not all() over a generator: no frame per parameter
                for p, q, (d, g) in zip(params, listed, arrays, strict=True):
                    if p is not q or p.data is not d or p.grad is not g:
                        break
                else:
                    return listed
        given = params if type(params) is list else None  # a generator is not seen twice
        params = self._prepare_and_check(params)
        self._checked = (given, params, [(p.data, p.grad) for p in params])
        return params

    def _prepare_and_check(self, params: Any) -> list[Any]:
        if isinstance(params, Mapping):
            params = params.values()
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                "params must be an iterable of parameters (objects with .data and .grad), such "
                f"as model.parameters() or a list, got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError(
                "step() got no parameters; pass model.parameters() or a non-empty list of "
                "parameters (a generator can only be iterated once)"
            )
        if self._state is None:
            for i, p in enumerate(params):
                _check_parameter(i, p)
            self._state = [self._new_state(p.data) for p in params]
            self._shapes = [p.data.shape for p in params]
            self._scratch = [[None, None] for _ in params]
        elif len(params) != len(self._state):
            raise ValueError(
                f"optimizer state was made for {len(self._state)} parameters but step() got "
                f"{len(params)}; create a new optimizer or call opt.reset()"
            )
        elif not self._bound:
            self._bind(params)
        shapes = self._shapes
        for i, p in enumerate(params):
            shape = p.data.shape
            if shape != shapes[i]:
                raise ValueError(
                    f"optimizer state was made for parameter {i} of shape {shapes[i]} but step() "
                    f"got shape {shape}; create a new optimizer or call opt.reset()"
                )
            grad = p.grad
            if grad is None:
                continue
            if not isinstance(grad, np.ndarray):
                raise TypeError(
                    f"parameter {i}: .grad must be an ndarray or None, got {type(grad).__name__}"
                )
            if grad.shape != shape:
                raise ValueError(
                    f"parameter {i}: .grad has shape {grad.shape} but .data has shape {shape}; "
                    "a gradient must have its parameter's shape"
                )
        return params

    def _bind(self, params: list[Any]) -> None:
        """First step after load_state_dict: learn unknown shapes, use the parameters' dtypes."""
        assert self._state is not None
        for i, p in enumerate(params):
            _check_parameter(i, p)
            theta = p.data
            if self._shapes[i] is None:
                self._shapes[i] = theta.shape
            elif theta.shape == self._shapes[i]:
                st = self._state[i]
                for k in self._buffers:
                    if st[k].dtype != theta.dtype:
                        st[k] = st[k].astype(theta.dtype)
        self._bound = True

    def _new_state(self, theta: np.ndarray) -> dict[str, Any]:
        state: dict[str, Any] = {k: np.zeros_like(theta) for k in self._buffers}
        for k in self._counters:
            state[k] = 0
        return state


def _check_parameter(i: int, p: Any) -> None:
    data = getattr(p, "data", None)
    if not hasattr(p, "grad") or not isinstance(data, np.ndarray):
        raise TypeError(
            f"parameter {i} must have .data (an ndarray) and .grad, got {type(p).__name__}; "
            "pass model.parameters() or objects with those attributes"
        )
    if data.dtype.kind != "f":
        raise TypeError(
            f"parameter {i} has .data of dtype {data.dtype}; the optimizer updates floating-point "
            "arrays in place, convert it with .astype(np.float32)"
        )


def _few(keys: list[str], limit: int = 6) -> str:
    if len(keys) <= limit:
        return str(keys)
    return f"{keys[:limit]} (and {len(keys) - limit} more)"
