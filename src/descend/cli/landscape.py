"""``descend landscape``: the loss of a trained run on a plane through its final weights."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from descend.cli import data as data_module
from descend.cli.errors import CLIError, UsageError
from descend.cli.figures import Figures, experiments_module
from descend.cli.output import RunFolder, add_force_flag
from descend.cli.report import Report
from descend.cli.runs import load_run, write_json

EPILOG = """\
examples:
  descend landscape runs/digits                       # PCA plane of the recorded trajectory
  descend landscape runs/digits --method random       # filter-normalised random directions
  descend landscape runs/moons --resolution 41 --kind both --out runs/moons/landscape

The plane passes through the final weights (its centre) and is spanned either by the top two
principal components of the parameter trajectory that descend train recorded
(trajectory.npz), or by two random directions scaled filter by filter to the weights
(Li et al., 2018). The cost is that of the run's training data. The trajectory is drawn
projected onto the plane, with the share of its variance that the plane explains.
"""


def register(subparsers, parents) -> None:
    """Add ``descend landscape``."""
    parser = subparsers.add_parser(
        "landscape", help="the loss landscape around a trained run's weights",
        description="Draw the cost of a trained run on a plane through its final weights, "
        "with the path that training took projected onto it.", epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument("run", metavar="RUN", help="the run folder (written by descend train)")
    parser.add_argument("--method", choices=("pca", "random"), default="pca",
                        help="how the plane is chosen (default: pca)")  # fmt: skip
    parser.add_argument(
        "--resolution",
        type=int,
        default=25,
        metavar="N",
        help="grid points per axis, N*N cost evaluations (default: 25)",
    )
    parser.add_argument(
        "--extent",
        type=float,
        metavar="X",
        help="half-width of the plane (default: 1.25 x the trajectory's reach)",
    )
    parser.add_argument(
        "--kind",
        choices=("contour", "both"),
        default="contour",
        help="contour, or both contour and 3-D (default: contour)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    parser.add_argument("--out", metavar="DIR", help="folder for the figure and report "
                        "(default: RUN/landscape, or RUN/landscape-2, ... when taken)")  # fmt: skip
    add_force_flag(parser)
    parser.set_defaults(func=run)


def training_data(run) -> tuple[np.ndarray, np.ndarray]:
    """The run's training split, rebuilt from its config (same seed, same split, same scaling)."""
    from descend.cli.options import config_values
    from descend.cli.train import OPTIONS, prepare, scaled_target

    values = {o.key: o.default for o in OPTIONS}
    # config.toml is a file of the folder like any other: checked as a --config file is.
    values.update(config_values(OPTIONS, run.config, "train", f"{run.folder}/config.toml"))
    if not values.get("data"):
        raise CLIError(f"{run.folder}/config.toml does not name the data; cannot rebuild it")
    try:
        data = data_module.load(values["data"], values["target"], values["task"])
        prep = prepare(data, values)
    except CLIError as exc:
        raise type(exc)(f"{exc} (the data named in {run.folder}/config.toml)") from None
    return prep.X_train, scaled_target(prep.y_train, prep.info)


# Far beyond the weights' own scale the outputs overflow float32 and the plane says nothing.
MAX_EXTENT = 1e6


def run(args: argparse.Namespace) -> int:
    """Run ``descend landscape``."""
    from descend.cli.runfiles import read_trajectory

    run_ = load_run(args.run)
    if args.resolution < 3 or args.resolution > 201:
        raise UsageError(f"--resolution must be between 3 and 201, got {args.resolution}")
    if args.extent is not None and not 0 < args.extent < MAX_EXTENT:
        raise UsageError(
            f"--extent must be a number greater than 0 and below {MAX_EXTENT:g} (the plane's "
            f"half-width in weight units), got {args.extent}"
        )
    experiments = experiments_module()
    if experiments is None or not hasattr(experiments, "loss_plane"):
        raise CLIError(
            'descend landscape needs descend.experiments and matplotlib; pip install "descend[cli]"'
        )
    X, y = training_data(run_)
    final = np.concatenate([p.data.ravel() for p in run_.model.parameters()]).astype(np.float64)
    path = Path(run_.folder) / "trajectory.npz"
    note = ""
    if path.exists() or path.is_symlink():
        trajectory = read_trajectory(path, final.size)  # checked as the model file is
    elif args.method == "pca":
        raise CLIError(
            f"{run_.folder} has no trajectory.npz (the recorded path of the weights) for the PCA "
            "plane; use --method random, or train again with descend train"
        )
    else:
        trajectory = np.stack([final, final])
        note = "No trajectory was recorded: the plane shows the final weights only."
    folder = RunFolder(args.out or Path(run_.folder) / "landscape", force=args.force,
                       default=args.out is None)  # fmt: skip
    plane = experiments.loss_plane(
        run_.model, X, y, run_.loss, trajectory, args.method, resolution=args.resolution,
        extent=args.extent, seed=args.seed,
    )  # fmt: skip
    with folder:
        out = folder.path
        figures = Figures(out, debug=args.debug)
        figures.draw("landscape.png", f"The cost on the {args.method} plane through the final "
                     "weights, with the training path projected", "landscape", plane,
                     kind=args.kind)  # fmt: skip
        facts = {
            "method": plane.method, "resolution": len(plane.alphas),
            "cost at the final weights": plane.center_loss,
            "lowest cost on the plane": float(np.nanmin(plane.losses)),
            "highest cost on the plane": float(np.nanmax(plane.losses)),
            "variance explained by the plane": plane.explained,
            "snapshots in the trajectory": len(plane.coords),
            "training samples": len(X),
        }  # fmt: skip
        write_json(
            out / "landscape.json",
            {
                **facts,
                "alphas": plane.alphas,
                "betas": plane.betas,
                "losses": plane.losses,
                "coords": plane.coords,
            },
        )
        report = Report(f"descend landscape: {run_.folder}", f"the {run_.loss} of the training "
                        "data on a plane through the final weights")  # fmt: skip
        report.key_values(facts)
        if note:
            report.paragraph(note, "note")
        report.images(figures.made, figures.skipped)
        report.preformatted(EPILOG.split("\n\n", 1)[1])
        report.write(out / "report.html")
    out = folder.shown
    for key, value in facts.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key + ':':34s}{shown}")
    if note:
        print(note)
    print(f"\nfolder: {out} (landscape.png, landscape.json, report.html)")
    return 0
