"""The article's two experiments, made interactive: the race and the minima.

The race trains batch, stochastic and mini-batch gradient descent from the same starting weights
on the same data, one epoch of each per request, so the page can draw them side by side as they
go: updates, training seconds and cost. The minima experiment runs
:func:`descend.experiments.local_minima` (many starts on the three-hump camel surface) and
returns where each run ended, colour-coded by the minimum it reached.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from descend.compile import backend
from descend.playground.session import (
    FitSteps,
    PlaygroundError,
    Session,
    _number,
    _rounded,
)

__all__ = ["Race", "minima"]

MAX_RACE_EPOCHS = 200


class Race:
    """Batch, stochastic and mini-batch gradient descent from one session's starting weights.

    Parameters
    ----------
    session : Session
        Its data, network shape, cost, update rule, learning rate and seed are used; its
        initial weights (those of a reset) are every variant's start.
    k : int
        The mini-batch size.

    Examples
    --------
    >>> race = Race(Session(), k=16)
    >>> [v["name"] for v in race.step()["variants"]]
    ['batch', 'stochastic (b=1)', 'mini-batch (b=16)']
    """

    def __init__(self, session: Session, k: int = 16) -> None:
        import descend as ds

        s = session.settings
        n = len(session.prep.X_train)
        k = int(_number(k, "k", 1, n))
        self.session = session
        self.X, self.y = session.prep.X_train, session.y_train
        start = ds.nn.mlp(session.sizes, s["activation"], session.output_activation,
                          seed=s["seed"])  # fmt: skip
        self.variants = []
        for name, batch in (("batch", "full"), ("stochastic (b=1)", 1), (f"mini-batch (b={k})", k)):
            model = ds.nn.from_config(start.get_config())
            model.load_state_dict(start.state_dict())
            optimizer = ds.optim.get(s["optimizer"], lr=s["lr"])
            steps = FitSteps(model, session.loss, optimizer, self.X, self.y, batch, s["seed"])
            cost = self._cost(model)
            self.variants.append({
                "name": name, "batch": batch, "model": model, "steps": steps, "updates": 0,
                "time": 0.0, "epochs": 0,
                "curve": [{"epoch": 0, "updates": 0, "time": 0.0, "loss": cost}],
                "diverged": False,
            })  # fmt: skip

    def _cost(self, model) -> float | None:
        import descend as ds

        try:
            with backend.blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
                value = float(ds.evaluate(model, self.X, self.y, loss=self.session.loss)["loss"])
        except (ValueError, FloatingPointError):  # the cost overflows: a diverging run
            return None
        return value if np.isfinite(value) else None

    def step(self) -> dict[str, Any]:
        """One more epoch of every variant; returns each one's new point and totals."""
        import descend as ds

        for v in self.variants:
            if v["diverged"] or v["epochs"] >= MAX_RACE_EPOCHS:
                continue
            start = time.perf_counter()
            try:
                for _ in range(len(v["steps"].batches)):
                    v["steps"].step()
                    v["updates"] += 1
            except ds.DivergenceError:
                v["diverged"] = True
            v["time"] += time.perf_counter() - start
            v["epochs"] += 1
            v["curve"].append({"epoch": v["epochs"], "updates": v["updates"],
                               "time": v["time"], "loss": self._cost(v["model"])})  # fmt: skip
        return self.state()

    def state(self) -> dict[str, Any]:
        """Every variant's curve so far (JSON values)."""
        return {
            "type": "race",
            "variants": [
                {
                    k: v[k]
                    for k in ("name", "batch", "updates", "time", "epochs", "curve", "diverged")
                }  # fmt: skip
                for v in self.variants
            ],
        }


def minima(
    lr: float = 0.05, n_starts: int = 60, steps: int = 500, noise: float = 2.0, seed: int = 0
) -> dict[str, Any]:
    """Many starts on the camel surface with batch, mini-batch (10) and stochastic descent.

    Returns the surface (a grid of the cost), its minima, every start, every run's end point
    and outcome (``"global"``, ``"local"``, ``"diverged"`` or ``"other"``), a thinned path per
    run, and each variant's share of runs that reached the global minimum.

    Examples
    --------
    >>> out = minima(n_starts=5, steps=50)
    >>> [v["name"] for v in out["variants"]]
    ['batch (b=100)', 'mini-batch (b=10)', 'stochastic (b=1)']
    """
    from descend.experiments import local_minima

    lr = _number(lr, "lr", 1e-4, 1.0)
    n_starts = int(_number(n_starts, "starts", 1, 400))
    steps = int(_number(steps, "steps", 1, 5000))
    noise = _number(noise, "noise", 0.0, 20.0)
    seed = int(_number(seed, "seed", 0, 2**31 - 1))
    result = local_minima(batch_sizes=("full", 10, 1), lrs=(lr,), n_starts=n_starts, steps=steps,
                          noise=noise, seed=seed, max_path_points=40)  # fmt: skip
    problem = result.problem
    (x0, x1), (y0, y1) = problem.bounds
    n = 80
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    # The camel grows as x^6: draw log(1 + f) so the three basins show.
    surface = np.log1p(np.maximum(problem.cost(gx, gy), 0.0))
    variants = []
    for row in result.rows:
        key = (row["batch size"], float(lr))
        paths = result.paths[key]
        variants.append({
            "name": row["variant"], "global": row["global"], "local": row["local"],
            "diverged": row["diverged"], "other": row["other"],
            "ends": _rounded(np.clip(paths[:, -1, :], -1e3, 1e3), 5, nested=True),
            "outcomes": result.outcomes[key].tolist(),
            "paths": _rounded(np.clip(paths, -1e3, 1e3), 4, nested=True),
        })  # fmt: skip
    return {
        "type": "minima", "lr": lr, "steps": steps, "n_starts": n_starts, "noise": noise,
        "seed": seed, "bounds": [[x0, x1], [y0, y1]], "n": n,
        "surface": _rounded(surface.ravel(), 4),
        "minima": {k: list(v) for k, v in problem.minima.items()},
        "starts": _rounded(result.starts, 5, nested=True), "variants": variants,
    }  # fmt: skip


def check_race_request(message: dict) -> int:
    """The mini-batch size a race request asks for."""
    k = message.get("k", 16)
    if isinstance(k, bool) or not isinstance(k, int | float | str):
        raise PlaygroundError(f"k must be a whole number, got {k!r}")
    return int(_number(k, "k", 1, 10**9))
