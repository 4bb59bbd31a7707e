"""``Recorder``: a callback that keeps the path the parameters take, and how big each step was.

Three records, for the figures of :mod:`descend.viz` (``landscape``, ``surface``,
``gradient_norms``):

* **snapshots** of all parameters, flattened into one vector in the order of
  ``model.named_parameters()``: at the start, every ``every`` updates, and at the end. Their
  memory is bounded: at most ``max_snapshots`` vectors are kept. When one more would not fit,
  every second snapshot is dropped (the start is always kept) and the interval doubles, so the
  kept snapshots stay evenly spaced over the whole run.
* **gradient norms** per layer at every update: ``||dC/dtheta||`` over the layer's weights and
  biases together, for the batch that update descended.
* **update-to-weight ratios** per layer at every update: ``||theta_new - theta_old|| /
  ||theta_old||`` over the layer's parameters. Around ``1e-3`` is the usual rule of thumb for a
  healthy rate; much larger and the layer's weights are being rewritten at each step.

The gradients are read in ``on_step_end``, right after the update that used them, and reduced to
a number there: on the compiled path (:mod:`descend.compile`) the ``.grad`` arrays are buffers
that the next update overwrites.
"""

from __future__ import annotations

import math

import numpy as np

from descend.train.callbacks import Callback

__all__ = ["Recorder"]


def _layer_of(name: str) -> str:
    # "0.weight" -> "0", "encoder.1.bias" -> "encoder.1"; a bare "weight" (one Dense layer) -> "0"
    return name.rsplit(".", 1)[0] if "." in name else "0"


class Recorder(Callback):
    """Record parameter snapshots, per-layer gradient norms and update-to-weight ratios.

    Pass it to :func:`descend.fit` in ``callbacks``; each call of ``fit`` starts a new record.
    With ``EarlyStopping(restore_best=True)``, list the Recorder after it, so that its final
    snapshot is taken after the best weights are restored.
    The per-update numbers also go into the run's ``History.step`` under the keys
    ``"grad_norm/<layer>"`` and ``"update_ratio/<layer>"`` (one entry per update, like
    ``"loss"``), so ``ds.viz.gradient_norms(history)`` works too.

    Parameters
    ----------
    every : int, default 1
        Take a snapshot of the parameters every ``every`` updates (the start and the end are
        always taken).
    max_snapshots : int or None, default 1000
        Keep at most this many snapshots (at least 3). When the next one would exceed it, every
        second snapshot is dropped and ``every`` doubles: the memory of the snapshots is at most
        ``max_snapshots * n_params * itemsize`` bytes (:attr:`memory_bound`). None keeps every
        snapshot (memory grows with the run: use it for small models).
    norms : bool, default True
        Record the per-layer gradient norms and update-to-weight ratios. They cost one copy of
        the parameters (to measure each update) and 16 bytes per layer per update.

    Attributes
    ----------
    snapshots : ndarray of shape (n_snapshots, n_params)
        The kept parameter vectors, first the start; the last is the final weights.
    snapshot_steps : ndarray of shape (n_snapshots,)
        How many updates had been taken when each snapshot was taken (0 for the start).
    trajectory : ndarray of shape (n_snapshots, n_params)
        Same as ``snapshots``; the name :func:`descend.viz.landscape` uses.
    grad_norms : dict of str to ndarray of shape (n_updates,)
        Per layer (``"0"``, ``"1"``, ...), ``||dC/dtheta||`` of each update.
    update_ratios : dict of str to ndarray of shape (n_updates,)
        Per layer, ``||delta theta|| / ||theta||`` of each update (NaN where ``||theta|| = 0``).
    param_names : list of str
        ``named_parameters()`` names, in the order they are flattened.
    shapes : dict of str to tuple
        Each parameter's shape.
    interval : int
        The current snapshot interval (``every``, doubled at each thinning).
    memory_bound : int or None
        The most bytes the snapshots can take (None when ``max_snapshots`` is None).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> X, y = ds.datasets.moons(40, seed=0)
    >>> model = ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0)
    >>> rec = ds.Recorder(every=1)
    >>> h = ds.fit(model, X, y, loss="categorical_cross_entropy", optimizer=ds.optim.GD(0.1),
    ...            batch_size=10, epochs=3, callbacks=[rec], progress=False)
    >>> rec.snapshots.shape          # the start + one per update; 4 + 2 + 8 + 2 = 22 parameters
    (13, 22)
    >>> sorted(rec.grad_norms), rec.grad_norms["0"].shape
    (['0', '1'], (12,))
    >>> bool(np.array_equal(rec.snapshots[-1], rec.flatten(model)))
    True
    """

    def __init__(self, every: int = 1, max_snapshots: int | None = 1000, norms: bool = True):
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}; e.g. every=10")
        if max_snapshots is not None and (
            isinstance(max_snapshots, bool)
            or not isinstance(max_snapshots, int | np.integer)
            or max_snapshots < 3
        ):
            raise ValueError(
                f"max_snapshots must be an integer >= 3 or None, got {max_snapshots!r}; e.g. "
                "max_snapshots=1000"
            )
        self.every = int(every)
        self.max_snapshots = None if max_snapshots is None else int(max_snapshots)
        self.norms = bool(norms)
        self._reset()

    def _reset(self) -> None:
        self.interval = self.every
        self.param_names: list[str] = []
        self.shapes: dict[str, tuple] = {}
        self.layer_names: list[str] = []
        self._snapshots: list[np.ndarray] = []
        self._snapshot_steps: list[int] = []
        self._grad_norms: dict[str, list[float]] = {}
        self._update_ratios: dict[str, list[float]] = {}
        self._previous: list[np.ndarray] = []
        self._scratch: list[np.ndarray] = []
        self.n_updates = 0
        self.memory_bound = None

    # ------------------------------------------------------------------ helpers
    def flatten(self, model_or_state) -> np.ndarray:
        """One vector of a model's parameters (or of a ``state_dict``), in the recorded order.

        Parameters
        ----------
        model_or_state : Module or dict of str to ndarray

        Returns
        -------
        ndarray of shape (n_params,)
        """
        if isinstance(model_or_state, dict):
            arrays = [np.asarray(model_or_state[n]) for n in self.param_names]
        else:
            params = model_or_state.named_parameters()
            names = self.param_names or list(params)
            arrays = [params[n].data for n in names]
        return np.concatenate([a.ravel() for a in arrays])

    def unflatten(self, vector) -> dict[str, np.ndarray]:
        """The inverse of :meth:`flatten`: ``{name: array of the parameter's shape}``.

        Parameters
        ----------
        vector : ndarray of shape (n_params,)

        Returns
        -------
        dict of str to ndarray
        """
        vector = np.asarray(vector)
        out, start = {}, 0
        for name in self.param_names:
            shape = self.shapes[name]
            size = int(np.prod(shape, dtype=np.int64))
            out[name] = vector[start : start + size].reshape(shape)
            start += size
        if start != vector.size:
            raise ValueError(
                f"vector has {vector.size} values but the recorded model has {start} parameters"
            )
        return out

    @property
    def snapshots(self) -> np.ndarray:
        if not self._snapshots:
            return np.empty((0, 0))
        return np.stack(self._snapshots)

    @property
    def trajectory(self) -> np.ndarray:
        return self.snapshots

    @property
    def snapshot_steps(self) -> np.ndarray:
        return np.asarray(self._snapshot_steps, dtype=np.int64)

    @property
    def grad_norms(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._grad_norms.items()}

    @property
    def update_ratios(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._update_ratios.items()}

    def _full(self) -> bool:
        return self.max_snapshots is not None and len(self._snapshots) >= self.max_snapshots

    def _take_snapshot(self, step_count: int) -> None:
        self._snapshots.append(self.flatten(self.model))
        self._snapshot_steps.append(step_count)

    def _thin(self) -> None:
        # Keep the snapshots on the doubled grid (multiples of 2 * interval, so the start stays);
        # an off-grid final snapshot cannot be here: it is only added at the end of training.
        self.interval *= 2
        kept = [i for i, s in enumerate(self._snapshot_steps) if s % self.interval == 0]
        self._snapshots = [self._snapshots[i] for i in kept]
        self._snapshot_steps = [self._snapshot_steps[i] for i in kept]

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs: dict) -> None:
        self._reset()
        params = self.model.named_parameters()
        self.param_names = list(params)
        self.shapes = {n: tuple(p.data.shape) for n, p in params.items()}
        self._params = list(params.values())
        layers: dict[str, list[int]] = {}
        for i, name in enumerate(self.param_names):
            layers.setdefault(_layer_of(name), []).append(i)
        self._layers = layers
        self.layer_names = list(layers)
        n_params = sum(p.data.size for p in self._params)
        itemsize = max((p.data.dtype.itemsize for p in self._params), default=8)
        if self.max_snapshots is not None:
            self.memory_bound = self.max_snapshots * n_params * itemsize
        if self.norms:
            self._previous = [p.data.copy() for p in self._params]
            self._scratch = [np.empty_like(p.data) for p in self._params]
            for layer in self.layer_names:
                self._grad_norms[layer] = []
                self._update_ratios[layer] = []
                if self.history is not None:
                    self.history.step[f"grad_norm/{layer}"] = self._grad_norms[layer]
                    self.history.step[f"update_ratio/{layer}"] = self._update_ratios[layer]
        self._take_snapshot(0)

    def on_step_end(self, step: int, logs: dict) -> None:
        self.n_updates = step + 1
        if self.norms:
            self._record_norms()
        if self.n_updates % self.interval == 0:
            if self._full():
                self._thin()
            # Thinning doubled the interval: this update may no longer be on the grid.
            if self.n_updates % self.interval == 0:
                self._take_snapshot(self.n_updates)

    def _record_norms(self) -> None:
        # Reduced here: a compiled step's .grad buffers are overwritten by the next update.
        grad_sq = np.zeros(len(self._params))
        step_sq = np.zeros(len(self._params))
        weight_sq = np.zeros(len(self._params))
        for i, p in enumerate(self._params):
            g = p.grad
            if g is not None:
                grad_sq[i] = float(np.vdot(g, g))
            prev, diff = self._previous[i], self._scratch[i]
            np.subtract(p.data, prev, out=diff)
            step_sq[i] = float(np.vdot(diff, diff))
            weight_sq[i] = float(np.vdot(prev, prev))
            np.copyto(prev, p.data)
        for layer, idx in self._layers.items():
            self._grad_norms[layer].append(math.sqrt(grad_sq[idx].sum()))
            w = weight_sq[idx].sum()
            self._update_ratios[layer].append(math.sqrt(step_sq[idx].sum() / w) if w else math.nan)

    def on_train_end(self, logs: dict) -> None:
        if not self._snapshot_steps or self._snapshot_steps[-1] != self.n_updates:
            if self._full():
                self._thin()
            self._take_snapshot(self.n_updates)

    def __repr__(self) -> str:
        return (
            f"Recorder(every={self.every}, max_snapshots={self.max_snapshots}, "
            f"snapshots={len(self._snapshots)}, updates={self.n_updates})"
        )
