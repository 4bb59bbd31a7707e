"""Batch, stochastic and mini-batch gradient descent compared: same model, same start, same data.

:func:`compare_variants` trains one model from the same initial weights with each batch size and
each seed, and measures per run:

``updates``, ``epochs``
    Gradient-descent updates taken (``epochs * ceil(n / batch_size)``) and passes over the data.
``wall time``
    Seconds of training, without the evaluation this experiment adds after each epoch.
``time to target``, ``updates to target``, ``epochs to target``
    When the full-data training loss (measured after every epoch) first reached the target loss.
    The default target is the highest final training loss among the runs that ended below
    their starting loss: a loss each of them reaches, so the column says who got there first
    (a run that never reaches it shows a dash).
``final training/test loss and accuracy``
    :func:`descend.evaluate` on the training data and on ``test_data`` after the last epoch.
``loss noise``
    How noisy the per-update loss is (the loss of the batch each update descended), relative
    to its level: the standard deviation of its residual around a centred moving average of
    ``noise_window`` updates, divided by that average, over the second half of the run (after
    the initial descent, which a moving average would count as noise). Relative, because an
    absolute spread calls a run smooth whose loss is simply near 0. Batch GD's per-update loss
    is the full training loss, a smooth curve, so its noise is near 0; SGD's is the loss of one
    sample at a time.

Seeds set the shuffling order (and, when ``model`` is a function of the seed, the initial
weights); everything else is deterministic: the same seeds give the same numbers, wall times
aside.

Measured on the digits (all ten classes; 1347 training and 450 test images, MLP 64-32-10 with
ReLU, plain GD at lr = 0.1 for every variant, 20 epochs, seeds 0, 1, 2; mean over seeds; one
BLAS thread on a shared 2-core machine, so wall times vary by tens of percent between repeats).
Details and a second rate in ``docs/variants.md``:

==================  =======  ========  ===============  ==========  =========  =======
variant             updates  wall (s)  time to 0.3 (s)  train loss  test acc.  noise
==================  =======  ========  ===============  ==========  =========  =======
batch (b=1347)      20       0.05      never            1.93        0.467      0.00003
mini-batch (b=32)   860      0.37      0.13             0.119       0.973      0.49
stochastic (b=1)    26940    6.5       0.89             0.008       0.979      8.8
==================  =======  ========  ===============  ==========  =========  =======

The trade-off, as measured: per epoch, the smaller the batch the further the loss falls
(20 epochs of SGD end 240 times lower than batch GD), but an epoch of SGD costs 17 to 29 times
the wall time of one of mini-batch 32, and SGD's per-update loss is 18 times as noisy for
its level (one sample's loss is mostly near 0, with spikes); to a given loss in wall time,
mini-batch wins (0.13 s to 0.3 against 0.89 s for SGD; batch GD, with one update per epoch
at this rate, is still at 1.93 after 20 epochs). At lr = 0.5 batch GD gets to 0.80,
mini-batch to 0.026, and SGD does not learn at all (loss 2.42, chance accuracy).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from descend.experiments import _figures
from descend.experiments._table import fmt, markdown
from descend.experiments.problems import variant_label
from descend.experiments.sweep import run_many
from descend.train.callbacks import Callback
from descend.train.loop import DivergenceError

__all__ = ["VariantComparison", "VariantRun", "compare_variants", "loss_noise"]


def loss_noise(step_loss, window: int = 10, *, relative: bool = True) -> float:
    """The noise of a per-update loss curve: its spread around a moving average.

    The residual is ``L_t - m_t`` with ``m_t = mean(L_{t-h} .. L_{t+h})``, ``2h + 1`` the largest
    odd window of at most ``window`` updates that leaves at least 3 residuals, over the second
    half of the curve (where the trend is slow). The noise is the residual's standard
    deviation divided by the mean of ``m_t`` (the loss level), so that a run whose loss is
    near 0 is not called smooth for that alone; ``relative=False`` gives the standard
    deviation itself. NaN when that half has fewer than 5 points, or when the level is 0 and
    the residual is not.

    Parameters
    ----------
    step_loss : array-like of shape (n_updates,)
    window : int, default 10
    relative : bool, default True
        Divide by the loss level (a fraction: 0.5 means the loss of an update is typically
        off its local average by half of that average).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> loss_noise(np.linspace(1.0, 0.0, 100))      # a straight line: no noise
    0.0
    >>> round(loss_noise(np.tile([1.0, 0.0], 50), window=3, relative=False), 3)  # +-2/3
    0.667
    >>> round(loss_noise(np.tile([1.0, 0.0], 50), window=3), 3)  # the level is 1/2
    1.333
    """
    values = np.asarray(step_loss, dtype=np.float64)
    tail = values[len(values) // 2 :]
    # The odd window, at most `window` wide and leaving at least 3 residuals.
    half = (min(window, len(tail) - 2) - 1) // 2
    if half < 1:
        return math.nan
    width = 2 * half + 1
    smooth = np.convolve(tail, np.full(width, 1.0 / width), mode="valid")
    spread = float(np.round((tail[half : len(tail) - half] - smooth).std(), 12))
    if not relative or spread == 0.0:
        return spread
    level = float(np.abs(smooth).mean())
    return float(np.round(spread / level, 12)) if level > 0 else math.nan


@dataclass
class VariantRun:
    """One training run of :func:`compare_variants`.

    Attributes
    ----------
    variant : str
        ``"batch (b=n)"``, ``"stochastic (b=1)"`` or ``"mini-batch (b=k)"``.
    batch_size : int
    seed : int
    updates : int
    epochs : int
    wall_time : float
        Seconds of training, without this experiment's per-epoch evaluation.
    noise : float
        :func:`loss_noise` of ``step_loss``.
    step_loss : ndarray of shape (updates,)
        The loss of the batch each update descended.
    curve : dict of str to ndarray of shape (epochs + 1,)
        After 0, 1, ... epochs: ``"epoch"``, ``"updates"``, ``"time"`` (training seconds),
        ``"loss"`` (full training data) and, when available, ``"accuracy"``, ``"test_loss"``,
        ``"test_accuracy"``.
    final : dict of str to float
        ``train_loss``, ``test_loss`` and, for classification, ``train_accuracy``,
        ``test_accuracy`` (NaN without test data).
    history : History
        What ``fit`` returned (for a diverged run: what it had recorded).
    diverged : int or None
        The update at which training diverged (the cost or a gradient became NaN or
        infinite), None if it did not. A diverged run's ``final`` numbers are NaN; its curves
        and ``updates`` stop where it stopped, its ``noise`` is NaN.
    steps_per_epoch : int or None
        Updates in a full epoch (``ceil(n / batch_size)``).
    """

    variant: str
    batch_size: int
    seed: int
    updates: int
    epochs: int
    wall_time: float
    noise: float
    step_loss: np.ndarray
    curve: dict
    final: dict
    history: object = field(repr=False, default=None)
    diverged: int | None = None
    steps_per_epoch: int | None = None

    def to_target(self, target: float) -> dict[str, float]:
        """When the training loss first reached ``target``: ``{"time", "updates", "epochs"}``.

        NaN everywhere when it never did.
        """
        hit = np.flatnonzero(self.curve["loss"] <= target)
        if hit.size == 0:
            return {"time": math.nan, "updates": math.nan, "epochs": math.nan}
        i = hit[0]
        return {
            "time": float(self.curve["time"][i]),
            "updates": float(self.curve["updates"][i]),
            "epochs": float(self.curve["epoch"][i]),
        }


@dataclass
class VariantComparison:
    """The result of :func:`compare_variants`.

    Attributes
    ----------
    runs : list of VariantRun
        Every run, variants in the order given, seeds inner.
    variants : list of str
        The variant labels, in order.
    seeds : list of int
    target_loss : float
        The training loss the "to target" columns refer to.
    settings : dict
        The experiment's arguments (epochs, optimizer, n_train, n_test, ...).
    """

    runs: list
    variants: list
    seeds: list
    target_loss: float
    settings: dict = field(default_factory=dict)

    def runs_of(self, variant: str) -> list[VariantRun]:
        """The runs of one variant (one per seed)."""
        return [r for r in self.runs if r.variant == variant]

    def summary(self) -> list[dict]:
        """One row per variant: each number as ``(mean, std)`` over the seeds (std NaN for one).

        Returns
        -------
        list of dict
            Keys: ``variant``, ``batch size``, ``updates``, ``epochs``, ``wall time (s)``,
            ``time to target (s)``, ``updates to target``, ``train loss``, ``test loss``,
            ``loss noise`` and, for classification, ``train accuracy``, ``test accuracy``; when
            any run diverged, ``diverged`` ("k of n" seeds, and the updates where they
            diverged). ``updates`` and ``epochs`` are the first seed's (they differ only for a
            diverged run).
        """
        rows = []
        for variant in self.variants:
            runs = self.runs_of(variant)
            targets = [r.to_target(self.target_loss) for r in runs]
            row = {
                "variant": variant,
                "batch size": runs[0].batch_size,
                "updates": runs[0].updates,
                "epochs": runs[0].epochs,
                "wall time (s)": _spread([r.wall_time for r in runs]),
                "time to target (s)": _spread([t["time"] for t in targets]),
                "updates to target": _spread([t["updates"] for t in targets]),
                "train loss": _spread([r.final["train_loss"] for r in runs]),
            }
            if "train_accuracy" in runs[0].final:
                row["train accuracy"] = _spread([r.final["train_accuracy"] for r in runs])
            row["test loss"] = _spread([r.final["test_loss"] for r in runs])
            if "test_accuracy" in runs[0].final:
                row["test accuracy"] = _spread([r.final["test_accuracy"] for r in runs])
            row["loss noise"] = _spread([r.noise for r in runs])
            if any(r.diverged is not None for r in self.runs):
                row["diverged"] = _diverged_note(runs)
            rows.append(row)
        return rows

    def why_incomplete(self, variant: str) -> str | None:
        """Why a variant has no time to target or no loss noise (a dash in the table, no
        point in the trade-off figure); None when it has both.

        Examples
        --------
        >>> import descend as ds
        >>> X, y = ds.datasets.xor(64, seed=0)
        >>> result = ds.experiments.compare_variants(
        ...     ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0), X, y,
        ...     loss="categorical_cross_entropy", batch_sizes=["full", 16], epochs=4, lr=0.1)
        >>> result.why_incomplete("batch (b=64)")
        'no loss noise: 4 updates are too few to measure it (it takes 9)'
        """
        runs = self.runs_of(variant)
        diverged = [r.diverged for r in runs if r.diverged is not None]
        if diverged:
            return (
                f"diverged (the cost or a gradient became NaN or infinite) at update "
                f"{', '.join(map(str, diverged))}: its curves stop there; a smaller learning "
                "rate avoids it"
            )
        if any(math.isnan(r.noise) for r in runs):
            fewest = min(r.updates for r in runs)
            return f"no loss noise: {fewest} updates are too few to measure it (it takes 9)"
        if any(math.isnan(r.to_target(self.target_loss)["time"]) for r in runs):
            return "never reached the target loss" + (" in some seeds" if len(runs) > 1 else "")
        return None

    def to_markdown(self, digits: int = 4, caption: bool = True) -> str:
        """The summary as a Markdown table (``mean ± std`` over seeds), with a caption line.

        Examples
        --------
        >>> import descend as ds
        >>> X, y = ds.datasets.xor(64, seed=0)
        >>> result = ds.experiments.compare_variants(
        ...     ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0), X, y,
        ...     loss="categorical_cross_entropy", batch_sizes=["full", 16], epochs=2, lr=0.1)
        >>> print(result.to_markdown(caption=False).splitlines()[0])  # doctest: +ELLIPSIS
        | variant | batch size | updates | epochs | wall time (s) | time to target (s) | ...
        """
        table = markdown(self.summary(), digits)
        if not caption:
            return table
        s = self.settings
        seeds = ", ".join(str(x) for x in self.seeds)
        note = (
            f"\n\n{s.get('n_train')} training samples"
            + (f", {s['n_test']} test samples" if s.get("n_test") else "")
            + f"; {s.get('optimizer')}, {s.get('epochs')} epochs, the same initial weights for "
            f"every variant; mean ± std over seeds {seeds}. Target loss {fmt(self.target_loss)}"
            f" ({s.get('target_note')}). Wall time excludes the per-epoch evaluation; it is "
            "measured once per seed on a shared machine and varies between repeats. Loss noise:"
            f" std of the per-update loss around a {s.get('noise_window')}-update moving "
            "average, divided by that average (relative to the loss level), second half of the "
            "run."
        )
        for variant in self.variants:
            why = self.why_incomplete(variant)
            if why:
                note += f" {variant}: {why}."
        return table + note

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready): ``settings``, ``target_loss``, ``summary``, ``runs``."""

        def plain(v):
            if isinstance(v, tuple):
                return {"mean": _nan_none(v[0]), "std": _nan_none(v[1])}
            return _nan_none(v) if isinstance(v, float) else v

        runs = [
            {
                "variant": r.variant, "batch_size": r.batch_size, "seed": r.seed,
                "updates": r.updates, "epochs": r.epochs, "wall_time": r.wall_time,
                "noise": _nan_none(r.noise), "diverged": r.diverged,
                "final": {k: _nan_none(v) for k, v in r.final.items()},
                "to_target": {k: _nan_none(v) for k, v in r.to_target(self.target_loss).items()},
            }
            for r in self.runs
        ]  # fmt: skip
        return {
            "settings": dict(self.settings),
            "target_loss": _nan_none(self.target_loss),
            "summary": [{k: plain(v) for k, v in row.items()} for row in self.summary()],
            "runs": runs,
        }

    def plot_history(self, *, seed: int | None = None, path=None, **options):
        """Per-update and per-epoch losses of every variant: :func:`descend.viz.history`.

        ``options`` go to that function (``log_scale=True``, ``smooth=10``, ...).
        """
        return _figures.draw("history", self, seed=seed, path=path, **options)

    def plot_tradeoff(self, *, path=None, **options):
        """Speed against smoothness: :func:`descend.viz.tradeoff` (``options`` go to it)."""
        return _figures.draw("tradeoff", self, path=path, **options)

    def __repr__(self) -> str:
        return (
            f"VariantComparison(variants={self.variants}, seeds={self.seeds}, "
            f"target_loss={self.target_loss:.4g})"
        )


def _spread(values) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    if np.isnan(a).all():
        return (math.nan, math.nan)
    if np.isnan(a).any():
        # Some seeds never reached the target: the mean would hide it.
        return (math.nan, math.nan)
    mean = float(a.mean())
    sd = float(a.std(ddof=1)) if len(a) > 1 else math.nan
    # Equal values can differ in the last bit of the mean: no spurious "± 1e-17".
    if sd <= 1e-12 * abs(mean):
        sd = 0.0
    return (mean, sd)


def _diverged_note(runs) -> str:
    """How many seeds diverged, and where: ``1 of 3 (at update 8)``."""
    at = [r.diverged for r in runs if r.diverged is not None]
    note = f"{len(at)} of {len(runs)}"
    if at:
        note += f" (at update{'s' if len(at) > 1 else ''} {', '.join(map(str, at))})"
    return note


def _nan_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


class _Curve(Callback):
    """The full-data losses after every epoch, timed apart from training."""

    def __init__(self, X, y, test, loss, metrics):
        self.X, self.y, self.test, self.loss, self.metrics = X, y, test, loss, metrics
        self.rows: list[dict] = []
        self.eval_time = 0.0  # evaluation inside fit's timer (after the first measurement)
        self.diverged_at: int | None = None

    def _measure(self, epoch: int, updates: int, elapsed: float) -> float:
        from descend.train import evaluate

        began = time.perf_counter()
        row = {"epoch": epoch, "updates": updates, "time": elapsed}
        try:
            row.update(evaluate(self.model, self.X, self.y, loss=self.loss, metrics=self.metrics))
            if self.test is not None:
                test = evaluate(self.model, *self.test, loss=self.loss, metrics=self.metrics)
                row.update({f"test_{k}": v for k, v in test.items()})
        except ValueError:
            if not self.rows:
                raise  # the data does not fit the model: the caller's mistake, say so
            # The same evaluation worked at the start, so what fails now is the numbers: the
            # last updates overflowed the weights or the output (their own batch costs were
            # still finite). The run diverged; stop it, its numbers from here on are NaN.
            self.diverged_at = updates
            self.stop_training = True
            row.update({k: math.nan for k in self.rows[0] if k not in row})
        self.rows.append(row)
        return time.perf_counter() - began

    def on_train_begin(self, logs):
        # Before fit starts its timer: not counted anywhere.
        self._measure(0, 0, 0.0)
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        elapsed = time.perf_counter() - self.start - self.eval_time
        self.eval_time += self._measure(epoch + 1, self.history.n_updates, elapsed)

    def on_train_end(self, logs):
        # The run's training time on the same clock as the epochs' times.
        self.training_time = time.perf_counter() - self.start - self.eval_time


def _fresh_optimizer(optimizer, lr):
    from descend import optim

    if isinstance(optimizer, optim.Optimizer):
        if lr is not None:
            raise ValueError("give lr on the optimizer object or lr= with an optimizer name")
        return lambda: optim.from_config(optimizer.get_config())
    kwargs = {} if lr is None else {"lr": lr}
    optim.get(optimizer, **kwargs)  # fail early on a bad name or rate
    return lambda: optim.get(optimizer, **kwargs)


def _starting_models(model, seeds) -> dict:
    from descend.nn.module import Module

    if isinstance(model, Module):
        return dict.fromkeys(seeds, model)
    if callable(model):
        return {seed: model(seed) for seed in seeds}
    raise TypeError(f"model must be a Module or a function seed -> Module, got {model!r}")


def _train_one(net, label, batch_size, seed, X, y, curve, fit_args, noise_window) -> VariantRun:
    """One run of the comparison; a divergence is recorded in the run, not raised."""
    from descend.train import fit

    diverged = None
    try:
        history = fit(net, X, y, batch_size=batch_size, seed=seed, callbacks=[curve],
                      progress=False, **fit_args)  # fmt: skip
    except DivergenceError as exc:
        # Reported, not raised: one variant diverging (SGD at a large rate, typically) is a
        # result of the comparison.
        history, diverged = exc.history, exc.step
    if curve.diverged_at is not None:
        diverged = curve.diverged_at
    table = {k: np.array([row[k] for row in curve.rows]) for k in curve.rows[0]}
    last = curve.rows[-1]
    final = {"train_loss": last["loss"]}
    if "accuracy" in last:
        final["train_accuracy"] = last["accuracy"]
    final["test_loss"] = last.get("test_loss", math.nan)
    if "accuracy" in last:
        final["test_accuracy"] = last.get("test_accuracy", math.nan)
    step_loss = np.asarray(history.step["loss"], dtype=np.float64)
    noise = loss_noise(step_loss, noise_window)
    if diverged is not None:
        # Its last numbers are the explosion, not the variant's noise or its result.
        final = dict.fromkeys(final, math.nan)
        noise = math.nan
    return VariantRun(
        variant=label, batch_size=batch_size, seed=seed, updates=history.n_updates,
        epochs=history.n_epochs, wall_time=curve.training_time, noise=noise,
        step_loss=step_loss, curve=table, final=final, history=history, diverged=diverged,
        steps_per_epoch=math.ceil(len(X) / batch_size),
    )  # fmt: skip


def _target(runs, target_loss) -> tuple[float, str]:
    """The target loss of the "to target" columns, and how it was chosen."""
    if target_loss is not None:
        return float(target_loss), "given"
    # The worst final loss among the runs that learned something: each of those reaches it,
    # so the column ranks them; a run that never got below its start shows "-".
    improved = [
        r.final["train_loss"] for r in runs
        if r.diverged is None and r.final["train_loss"] < r.curve["loss"][0]
    ]  # fmt: skip
    if not improved:
        return math.nan, "none: no run improved on its starting loss"
    return max(improved), "the highest final training loss of the runs that improved on their start"


def compare_variants(
    model,
    X,
    y,
    *,
    loss: str | Callable,
    test_data: tuple | None = None,
    batch_sizes: Sequence[int | str] = ("full", 32, 1),
    epochs: int = 10,
    optimizer="gd",
    lr: float | None = 0.1,
    seeds: Sequence[int] = (0,),
    target_loss: float | None = None,
    noise_window: int = 10,
    metrics="auto",
    cluster=None,
) -> VariantComparison:
    """Train one model with batch, stochastic and mini-batch gradient descent, and measure it.

    Every run starts from the same initial weights (those of ``model``, which is not changed),
    sees the same data and uses a fresh copy of the same optimizer; runs differ only in the
    batch size and the seed of the shuffling. See the module documentation for every measure.

    Parameters
    ----------
    model : Module or callable
        The network whose current weights are every run's start; or a function ``seed ->
        Module`` to give each seed its own initial weights (shared by the variants).
    X : ndarray of shape (n_samples, n_features)
        Training inputs.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Training targets.
    loss : str or callable
        As for :func:`descend.fit`.
    test_data : (X_test, y_test), optional
        Held-out data for the final test loss and accuracy (and the per-epoch test curve).
    batch_sizes : sequence of (int or "full") or dict of label to batch size
        Default ``("full", 32, 1)``: batch, mini-batch of 32, stochastic.
    epochs : int, default 10
        Passes over the data, the same for every variant.
    optimizer : str or Optimizer, default "gd"
        The update rule; each run gets a fresh copy (``from_config(get_config())``).
    lr : float or None, default 0.1
        The learning rate when ``optimizer`` is a name; None for the rule's default. Must be
        None when ``optimizer`` is an object.
    seeds : sequence of int, default (0,)
        One run per variant and seed.
    target_loss : float, optional
        The training loss for the "to target" columns; default: the highest final training
        loss among the runs that improved on their start (one that each of them reaches).
    noise_window : int, default 10
        The moving-average window of the loss noise (:func:`loss_noise`).
    metrics : "auto", str, callable or list
        As for :func:`descend.fit`; "auto" is accuracy for classification.
    cluster : descend.cluster.Ray, optional
        Run the trainings as Ray tasks (:func:`~descend.experiments.sweep.run_many`): each
        run gives the same numbers as serially, its wall time measured where it ran.

    Returns
    -------
    VariantComparison
        ``.summary()``, ``.to_markdown()``, ``.to_dict()``, ``.plot_history()``,
        ``.plot_tradeoff()``, ``.runs``.

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(100, seed=0)
    >>> model = ds.nn.mlp([2, 8, 2], output_activation="softmax", seed=0)
    >>> result = ds.experiments.compare_variants(
    ...     model, X, y, loss="categorical_cross_entropy", batch_sizes=["full", 1, 16],
    ...     epochs=3, lr=0.1, seeds=[0, 1])
    >>> [(r["variant"], r["updates"]) for r in result.summary()]
    [('batch (b=100)', 3), ('stochastic (b=1)', 300), ('mini-batch (b=16)', 21)]
    """
    from descend import losses
    from descend.data import check_X_y
    from descend.data.batching import _resolve_batch_size
    from descend.train.metrics import get_metrics

    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed, e.g. seeds=(0,)")
    X, y = check_X_y(X, y)
    n = len(X)
    if isinstance(batch_sizes, Mapping):
        named = [(str(k), v) for k, v in batch_sizes.items()]
    else:
        named = [(variant_label(b, n), b) for b in batch_sizes]
    resolved = [(label, _resolve_batch_size(b, n)) for label, b in named]
    labels = [label for label, _ in resolved]
    if len(set(labels)) != len(labels):
        raise ValueError(f"batch_sizes gives the same variant twice: {labels}")
    metric_fns = get_metrics(metrics, losses.is_classification(loss))
    make_optimizer = _fresh_optimizer(optimizer, lr)
    if test_data is not None:
        test_data = check_X_y(*test_data, name_X="X_test", name_y="y_test")

    starts = _starting_models(model, seeds)
    runs = run_many(_train_one, [
        dict(net=copy.deepcopy(starts[seed]), label=label, batch_size=batch_size, seed=seed, X=X,
             y=y, curve=_Curve(X, y, test_data, loss, metric_fns),
             fit_args=dict(loss=loss, optimizer=make_optimizer(), epochs=epochs, metrics=metrics),
             noise_window=noise_window)
        for label, batch_size in resolved
        for seed in seeds
    ], cluster, cost=lambda item: -(-n // item["batch_size"]))  # fmt: skip
    target, note = _target(runs, target_loss)
    opt_repr = repr(make_optimizer())
    settings = {
        "epochs": epochs, "optimizer": opt_repr, "loss": getattr(loss, "__name__", loss),
        "seeds": seeds, "batch_sizes": {label: b for label, b in resolved}, "n_train": n,
        "n_test": None if test_data is None else len(test_data[0]),
        "noise_window": noise_window, "target_note": note,
    }  # fmt: skip
    return VariantComparison(runs, labels, seeds, target, settings)
