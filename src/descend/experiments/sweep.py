"""Sweeps: many independent trainings, one after another or as Ray tasks, and their table.

:func:`run_many` is the one runner the experiments share: ``[fn(**item) for item in items]``,
on this machine or, given ``cluster=ds.cluster.Ray(...)``, as Ray tasks (each run the same
computation, so the same numbers as serially). :func:`grid_sweep` trains one model on one data
set for every combination of learning rates, batch sizes, optimizers and seeds, and tabulates
the results.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from descend.experiments._table import markdown

__all__ = ["SweepResult", "grid_sweep", "run_many"]


def run_many(
    fn: Callable,
    items: Sequence[dict],
    cluster=None,
    shared: dict | None = None,
    cost: Callable[[dict], float] | None = None,
) -> list:
    """``[fn(**shared, **item) for item in items]``, serially or as Ray tasks.

    Parameters
    ----------
    fn : callable
        A module-level function (Ray workers import it by name).
    items : sequence of dict
        Each run's keyword arguments.
    cluster : descend.cluster.Ray, optional
        Run the calls as Ray tasks (:meth:`descend.cluster.Ray.map`: in batches, ``cluster.workers``
        at a time); results come back in the order of ``items``.
    shared : dict, optional
        Keyword arguments common to every run (e.g. the data): on a cluster, put into Ray's
        object store once rather than sent with every task (the runs must not change them).
    cost : callable, optional
        ``cost(item)``, a run's relative cost: on a cluster the costly runs start first.

    Returns
    -------
    list
        The results in the order of ``items``.

    Examples
    --------
    >>> def area(width, height):
    ...     return width * height
    >>> run_many(area, [{"width": 2}, {"width": 3}], shared={"height": 10})
    [20, 30]
    """
    shared = dict(shared or {})
    if cluster is None:
        return [fn(**shared, **item) for item in items]
    return cluster.map(fn, items, shared=shared, cost=cost)


@dataclass
class SweepResult:
    """The runs of a :func:`grid_sweep`: one row each, and the trained weights.

    Attributes
    ----------
    rows : list of dict
        Per run: ``optimizer``, ``lr``, ``batch size``, ``seed``, ``updates``, ``train loss``,
        ``test loss`` (and accuracies for classification), ``wall time (s)``, ``diverged``.
    states : list of dict
        Each run's trained weights (``model.state_dict()``), in the order of ``rows``.
    settings : dict
        The sweep's arguments.
    """

    rows: list[dict]
    states: list[dict] = field(repr=False)
    settings: dict = field(default_factory=dict)

    def to_markdown(self, digits: int = 4) -> str:
        """The rows as a Markdown table."""
        return markdown(self.rows, digits)

    def best(self, key: str = "train loss") -> dict:
        """The row with the lowest ``key`` among the runs that did not diverge."""
        ok = [r for r in self.rows if not r["diverged"] and not math.isnan(r[key])]
        if not ok:
            raise ValueError(f"no run of the sweep finished with a finite {key!r}")
        return min(ok, key=lambda r: r[key])

    def __repr__(self) -> str:
        return f"SweepResult({len(self.rows)} runs)"


def grid_sweep(
    model,
    X,
    y,
    *,
    loss: str | Callable,
    lrs: Sequence[float] = (0.1,),
    batch_sizes: Sequence[int | str] = (32,),
    optimizers: Sequence[str] = ("gd",),
    seeds: Sequence[int] = (0,),
    epochs: int = 10,
    test_data: tuple | None = None,
    metrics="auto",
    cluster=None,
) -> SweepResult:
    """Train one model for every learning rate x batch size x optimizer x seed; tabulate it.

    Every run starts from the same initial weights (those of ``model``, not changed; or
    ``model(seed)`` when ``model`` is a function of the seed) and sees the same data; the
    seed sets the shuffling. A run that diverges is a row with ``diverged`` True, not an error.

    Parameters
    ----------
    model : Module or callable
        The network whose weights every run starts from, or a function ``seed -> Module``.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or callable
        As for :func:`descend.fit`.
    lrs : sequence of float, default (0.1,)
    batch_sizes : sequence of (int or "full"), default (32,)
    optimizers : sequence of str, default ("gd",)
        Names of update rules (``"gd"``, ``"momentum"``, ``"adam"``, ...).
    seeds : sequence of int, default (0,)
    epochs : int, default 10
    test_data : (X_test, y_test), optional
        Held-out data for the final test loss (and accuracy).
    metrics : "auto", str, callable or list
        As for :func:`descend.fit`.
    cluster : descend.cluster.Ray, optional
        Run the trainings as Ray tasks (:func:`run_many`); each gives the same numbers as run
        serially (with one BLAS thread; see ``docs/determinism.md``).

    Returns
    -------
    SweepResult
        ``.rows`` (in the order optimizer, lr, batch size, seed), ``.to_markdown()``,
        ``.best()``, ``.states``.

    Examples
    --------
    >>> import descend as ds
    >>> X, y = ds.datasets.moons(60, seed=0)
    >>> result = ds.experiments.grid_sweep(
    ...     ds.nn.mlp([2, 4, 2], output_activation="softmax", seed=0), X, y,
    ...     loss="categorical_cross_entropy", lrs=[0.1, 0.5], batch_sizes=["full", 16], epochs=2)
    >>> len(result.rows), [r["updates"] for r in result.rows]
    (4, [2, 8, 2, 8])
    """
    from descend import optim
    from descend.data import check_X_y
    from descend.nn.module import Module

    X, y = check_X_y(X, y)
    if test_data is not None:
        test_data = check_X_y(*test_data, name_X="X_test", name_y="y_test")
    for name in optimizers:
        optim.get(name, lr=0.1)  # fail early, naming the valid ones
    grid = list(itertools.product(optimizers, lrs, batch_sizes, seeds))
    if not grid:
        raise ValueError("the sweep is empty: give at least one value for each of lrs, "
                         "batch_sizes, optimizers and seeds")  # fmt: skip
    if not isinstance(model, Module) and not callable(model):
        raise TypeError(f"model must be a Module or a function seed -> Module, got {model!r}")
    items = [
        {"model": model if isinstance(model, Module) else model(seed), "optimizer": name,
         "lr": float(lr), "batch_size": b, "seed": int(seed)}
        for name, lr, b, seed in grid
    ]  # fmt: skip
    shared = {"X": X, "y": y, "loss": loss, "epochs": epochs, "test_data": test_data,
              "metrics": metrics}  # fmt: skip
    n = len(X)
    done = run_many(_sweep_run, items, cluster, shared, cost=lambda item: _updates(item, n, epochs))
    settings = {"lrs": list(lrs), "batch_sizes": list(batch_sizes),
                "optimizers": list(optimizers), "seeds": list(seeds), "epochs": epochs,
                "loss": getattr(loss, "__name__", loss), "n_train": len(X),
                "cluster": repr(cluster) if cluster is not None else None}  # fmt: skip
    return SweepResult([row for row, _ in done], [state for _, state in done], settings)


def _updates(item: dict, n: int, epochs: int) -> int:
    """A run's number of updates (its cost, for the order of a sweep's Ray tasks)."""
    b = item["batch_size"]
    if isinstance(b, int | float) and b >= 1:
        return epochs * -(-n // min(int(b), n))
    return epochs  # "full" (or a name fit resolves): one update per epoch


def _sweep_run(model, optimizer, lr, batch_size, seed, X, y, loss, epochs, test_data, metrics):
    """One run of a sweep: its row and trained weights."""
    from descend import losses, optim
    from descend.train import DivergenceError, evaluate, fit
    from descend.train.metrics import get_metrics

    net = copy.deepcopy(model)
    row = {"optimizer": optimizer, "lr": lr, "batch size": batch_size, "seed": seed}
    began = time.perf_counter()
    diverged = False
    try:
        history = fit(net, X, y, loss=loss, optimizer=optim.get(optimizer, lr=lr),
                      batch_size=batch_size, epochs=epochs, seed=seed, metrics=metrics,
                      progress=False)  # fmt: skip
        updates = history.n_updates
    except DivergenceError as exc:
        diverged, updates = True, exc.step
    row["updates"] = updates
    keys = ["loss", *get_metrics(metrics, losses.is_classification(loss))]
    parts = [("train", (X, y))] + ([("test", test_data)] if test_data is not None else [])
    for part, (X_part, y_part) in parts:
        scores = {} if diverged else evaluate(net, X_part, y_part, loss=loss, metrics=metrics)
        row.update({f"{part} {k}": scores.get(k, math.nan) for k in keys})
    row["wall time (s)"] = time.perf_counter() - began
    row["diverged"] = diverged
    return row, net.state_dict()
