"""``descend gradcheck``: backpropagation's gradient of a saved model against finite differences."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from descend.cli.errors import CLIError, UsageError

EPILOG = """\
examples:
  descend gradcheck runs/digits                 # a run folder: its loss, on 4 of its samples
  descend gradcheck runs/digits --samples 8 --data digits:0-3
  descend gradcheck model.npz                   # a bare model: random inputs and targets
  descend gradcheck model.npz --loss mse --rtol 1e-5

Every parameter's partial derivative dC/dtheta from backpropagation is compared with the
central difference (C(theta + eps) - C(theta - eps)) / (2 eps), in float64. The exit status
is 0 when all agree within the tolerances, 1 when one does not.
"""


def register(subparsers, parents) -> None:
    """Add ``descend gradcheck``."""
    parser = subparsers.add_parser(
        "gradcheck", help="check a saved model's gradients against finite differences",
        description="Check backpropagation on a saved model: the gradient of its cost with "
        "respect to every parameter, against central differences in float64, on a few "
        "samples.", epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("model", metavar="RUN_OR_MODEL",
                        help="a run folder or a model .npz file")  # fmt: skip
    parser.add_argument(
        "--data",
        metavar="DATA",
        help="data to take the samples from "
        "(default: the run's own data; random inputs for a bare model)",
    )
    parser.add_argument("--samples", type=_positive, default=4, metavar="N",
                        help="samples in the batch (default: 4)")  # fmt: skip
    parser.add_argument("--loss", metavar="NAME", help="the cost, for a bare model "
                        "(default: from its output: softmax -> categorical_cross_entropy, "
                        "sigmoid -> binary_cross_entropy, else mse)")  # fmt: skip
    parser.add_argument("--eps", type=float, default=1e-6, help="finite-difference step "
                        "(default: 1e-6)")  # fmt: skip
    parser.add_argument("--rtol", type=float, default=1e-5,
                        help="relative tolerance (default: 1e-5)")  # fmt: skip
    parser.add_argument("--atol", type=float, default=1e-8,
                        help="absolute tolerance (default: 1e-8)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed for random inputs (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _output_activation(model) -> str | None:
    layers = list(getattr(model, "layers", [model]))
    config = layers[-1].get_config() if layers else {}
    return config.get("activation")


def _float64_copy(model):
    import descend as ds

    def widen(config):
        if isinstance(config, dict):
            return {k: ("float64" if k == "dtype" else widen(v)) for k, v in config.items()}
        if isinstance(config, list):
            return [widen(v) for v in config]
        return config

    copy = ds.nn.from_config(widen(model.get_config()))
    copy.load_state_dict({k: v.astype(np.float64) for k, v in model.state_dict().items()})
    return copy


def cost_of_parameters(model, X: np.ndarray, y: np.ndarray, loss: str):
    """``f(*params) -> cost`` with the model's parameters replaced by the arguments.

    The model's own ``forward`` runs, so what is checked is the model as it is, not a copy of
    its formulas. The original parameters are put back after every call.
    """
    import descend as ds

    loss_fn = ds.losses.get(loss)
    slots = []
    for name in model.named_parameters():
        owner = model
        *path, attr = name.split(".")
        for part in path:
            owner = owner._modules[part]
        slots.append((owner, attr))

    def f(*params):
        saved = [getattr(owner, attr) for owner, attr in slots]
        try:
            for (owner, attr), p in zip(slots, params, strict=True):
                object.__setattr__(owner, attr, p)  # not registered: a temporary stand-in
            return loss_fn(model(X), y)
        finally:
            for (owner, attr), p in zip(slots, saved, strict=True):
                object.__setattr__(owner, attr, p)

    return f


def _batch(args, model, n_in: int, n_out: int, activation: str | None):
    """Inputs, targets and the cost to check with."""
    from descend.cli.runfiles import run_data
    from descend.cli.runs import load_run
    from descend.cli.train import scaled_target

    target = Path(args.model)
    n = args.samples
    if target.is_dir():
        run = load_run(target)
        spec = args.data or run.info["data"]
        data = run_data(run, args.data)
        X = run.transform(data.X[:n]).astype(np.float64)
        y = scaled_target(data.y[:n], run.info)
        return X, np.asarray(y), args.loss or run.loss, spec
    rng = np.random.default_rng(args.seed)
    if args.data:
        raise UsageError("--data needs a run folder (with its preprocessing); for a bare model "
                         "random inputs are used")  # fmt: skip
    X = rng.normal(size=(n, n_in))
    loss = args.loss
    if loss is None:
        loss = {"softmax": "categorical_cross_entropy", "sigmoid": "binary_cross_entropy"}.get(
            activation or "", "mse"
        )
    if loss in ("categorical_cross_entropy", "cross_entropy") or (loss == "log_loss" and n_out > 1):
        y = rng.integers(0, n_out, size=n)
    elif loss in ("binary_cross_entropy", "bce", "log_loss"):
        y = rng.integers(0, 2, size=(n, n_out)).astype(np.float64)
    else:
        y = rng.normal(size=(n, n_out))
    return X, y, loss, "random inputs"


def run(args: argparse.Namespace) -> int:
    """Run ``descend gradcheck``."""
    import descend as ds

    target = Path(args.model)
    if not target.exists():
        raise CLIError(f"{target} not found; give a run folder or a model .npz file")
    path = target / "model.npz" if target.is_dir() else target
    if not path.exists():
        raise CLIError(f"{target} has no model.npz; give a folder written by descend train")
    try:
        model = ds.load(path)
    except ds.ModelFileError as exc:
        raise CLIError(str(exc)) from None
    params = model.named_parameters()
    first = next(iter(params.values()))
    last = list(params.values())[-1]
    X, y, loss, source = _batch(args, model, first.shape[0], last.shape[-1],
                                _output_activation(model))  # fmt: skip
    wide = _float64_copy(model)
    f = cost_of_parameters(wide, X, y, loss)
    arrays = [p.data for p in wide.named_parameters().values()]
    result = ds.gradcheck(f, *arrays, eps=args.eps, rtol=args.rtol, atol=args.atol)
    names = list(params)
    worst_arg, worst_index = result.worst if result.worst else (0, ())
    worst_name = names[worst_arg] if names else "?"
    n_checked = sum(a.size for a in arrays)
    summary = {
        "ok": bool(result.ok), "max_rel_error": float(result.max_rel_error),
        "max_abs_error": float(result.max_abs_error), "worst_parameter": worst_name,
        "worst_index": [int(i) for i in np.atleast_1d(worst_index)],
        "partial_derivatives": n_checked, "samples": len(X), "loss": loss, "data": source,
        "rtol": args.rtol, "atol": args.atol, "eps": args.eps,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        verdict = "OK" if result.ok else "FAILED"
        print(
            f"gradcheck {verdict}: {n_checked} partial derivatives of {loss} on {len(X)} "
            f"samples ({source}), float64, eps={args.eps:g}\n"
            f"worst relative error {result.max_rel_error:.3g} at {worst_name}"
            f"{list(summary['worst_index'])}, worst absolute error {result.max_abs_error:.3g} "
            f"(tolerance: rtol={args.rtol:g}, atol={args.atol:g})"
        )
    if not result.ok:
        raise CLIError(
            f"backpropagation and finite differences disagree at {worst_name}: relative error "
            f"{result.max_rel_error:.3g} > rtol={args.rtol:g} (a ReLU kink within eps of a "
            "sample can cause this; try --eps 1e-7 or other --samples)"
        )
    return 0
