"""``descend surface``: a cost over two parameters, with the paths gradient descent takes."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from descend.cli.console import text_table
from descend.cli.errors import CLIError, UsageError
from descend.cli.figures import Figures, experiments_module, viz_function
from descend.cli.options import parse_batches, parse_floats
from descend.cli.output import RunFolder, add_force_flag
from descend.cli.report import Report
from descend.cli.runs import write_json

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")

EPILOG = """\
examples:
  descend surface                                   # a line fitted to diabetes (bmi), 3 variants
  descend surface --feature bp --scale standard     # a round bowl instead of a long valley
  descend surface --batches full,1 --lr 0.3 --epochs 5 --start -2,2
  descend surface --problem camel                   # local and global minima, many starts
  descend surface --problem camel --lrs 0.01,0.05 --starts 50 --steps 500 --out runs/camel

line: y = w x + b fitted by mean squared error to one feature of the diabetes data; its cost
over (w, b) is a bowl with one minimum (the least-squares line). Each variant starts at the
same point; batch gradient descent walks smoothly down, stochastic zig-zags.
camel: the three-hump camel function, one global and two local minima, written as a mean over
samples; from many starts, how often each variant ends in the global minimum.
The folder gets surface.png (contour and 3-D), surface.html (interactive 3-D, when plotly is
installed), surface.json and report.html.
"""


def register(subparsers, parents) -> None:
    """Add ``descend surface``."""
    parser = subparsers.add_parser(
        "surface", help="a cost surface over two parameters with descent paths",
        description="Draw the cost surface of a built-in two-parameter problem, as contours "
        "and in 3-D, with the paths of batch, stochastic and mini-batch gradient descent.",
        epilog=EPILOG, parents=parents,
    )  # fmt: skip
    parser.add_argument(
        "--problem",
        choices=("line", "camel"),
        default="line",
        help="line (one minimum) or camel (local minima) (default: line)",
    )
    parser.add_argument("--feature", choices=FEATURES, default="bmi", metavar="NAME",
                        help="line: the diabetes feature x (default: bmi)")  # fmt: skip
    parser.add_argument("--scale", choices=("minmax", "standard"), default="minmax",
                        help="line: x scaled to [0, 1] (a long valley) or standardised (a "
                        "round bowl) (default: minmax)")  # fmt: skip
    parser.add_argument("--batches", default=None, metavar="LIST",
                        help="batch sizes, e.g. full,32,1 (line default: full,32,1; camel "
                        "default: full,10,1)")  # fmt: skip
    parser.add_argument(
        "--lr",
        type=float,
        default=0.1,
        metavar="RATE",
        help="line: the learning rate (default: 0.1)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        metavar="N",
        help="line: passes over the data (default: 10)",
    )
    parser.add_argument("--start", metavar="W,B", help="line: the starting point (default: "
                        "the lower left of the picture)")  # fmt: skip
    parser.add_argument(
        "--lrs",
        default=None,
        metavar="LIST",
        help="camel: learning rates (default: 0.01,0.05,0.1)",
    )
    parser.add_argument(
        "--starts", type=int, default=100, metavar="N", help="camel: starting points (default: 100)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        metavar="N",
        help="camel: updates per run (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the shuffling seed (default: 0)")
    parser.add_argument(
        "--html",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write the interactive 3-D view (default: yes)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="the folder to write (default: runs/surface-<problem>-<time>)"
    )
    add_force_flag(parser)
    parser.set_defaults(func=run)


def _check(args) -> None:
    for name in ("epochs", "starts", "steps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 < args.lr < math.inf:
        raise UsageError(f"--lr must be a number greater than 0, got {args.lr}")
    _start(args.start)  # every argument is checked before anything is computed or written
    if args.problem == "camel":
        from descend.cli.limits import check_memory

        # Each start keeps its path (up to 200 points of 2 floats) for each rate and batch size.
        check_memory(args.starts * 16 * 201 * 9, f"--starts {args.starts}",
                     "use fewer starting points, e.g. --starts 100")  # fmt: skip
    if args.lrs is not None:
        parse_floats(args.lrs, "--lrs")  # checked whatever the problem: never silently ignored
        if args.problem != "camel":
            raise UsageError(
                "--lrs (several learning rates) is for --problem camel; the line problem takes "
                "one rate: --lr"
            )
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")


def _start(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        w, b = (float(v) for v in text.split(","))
        if not (math.isfinite(w) and math.isfinite(b)):
            raise ValueError
    except ValueError:
        raise UsageError(f"--start must be two numbers w,b such as -2,1.5, got {text!r}") from None
    return w, b


def run(args: argparse.Namespace) -> int:
    """Run ``descend surface``."""
    _check(args)
    experiments = experiments_module()
    if experiments is None or not hasattr(experiments, "line_problem"):
        raise CLIError(
            'descend surface needs descend.experiments and matplotlib; pip install "descend[cli]"'
        )
    default = "full,32,1" if args.problem == "line" else "full,10,1"
    batches = parse_batches(args.batches or default, "--batches")
    folder = RunFolder(
        args.out or Path("runs") / f"surface-{args.problem}-{time.strftime('%Y%m%d-%H%M%S')}",
        force=args.force, default=args.out is None,
    )  # fmt: skip
    with folder:
        out = folder.path
        figures = Figures(out, debug=args.debug)
        if args.problem == "line":
            report, rows, record = _line(args, experiments, batches, figures, out)
        else:
            report, rows, record = _camel(args, experiments, batches, figures)
        print(text_table(rows))
        write_json(out / "surface.json", record)
        report.images(figures.made, figures.skipped)
        if (out / "surface.html").exists():
            report.paragraph("The interactive 3-D view is in surface.html, beside this page.",
                             "note")  # fmt: skip
        report.preformatted(EPILOG.split("\n\n", 1)[1])
        report.write(out / "report.html")
    out = folder.shown
    print(f"\nfolder: {out}\nreport: {out / 'report.html'}")
    return 0


def _line(args, experiments, batches, figures: Figures, out: Path):
    problem = experiments.line_problem(args.feature, scale=args.scale)
    n = len(problem.X)
    too_big = [b for b in batches if b != "full" and b > n]
    if too_big:
        raise UsageError(f"--batches {too_big[0]} is larger than the {n} samples; use full")
    paths = experiments.descent_paths(
        problem, batches, lr=args.lr, epochs=args.epochs, start=_start(args.start), seed=args.seed
    )
    ((w_min, b_min),) = problem.minima.values()
    rows = []
    for label, path in paths.items():
        end = path[-1]
        rows.append({
            "variant": label, "updates": len(path) - 1, "start": _pair(path[0]),
            "end": _pair(end), "cost at the end": float(problem.cost(*end)),
            "distance to the minimum": float(np.hypot(end[0] - w_min, end[1] - b_min)),
        })  # fmt: skip
    title = f"{problem.name}: paths of gradient descent (lr={args.lr:g}, {args.epochs} epochs)"
    common = dict(labels=list(paths), minima=problem.minima, bounds=problem.bounds,
                  param_names=problem.param_names, title=title)  # fmt: skip
    figures.draw("surface.png", "The full-data cost over (w, b), contour and 3-D, with the "
                 "paths", "surface", problem.cost, list(paths.values()), **common)  # fmt: skip
    html = viz_function("surface_html")
    if args.html and html is not None:
        try:
            html(problem.cost, list(paths.values()), path=out / "surface.html", **common)
        except ImportError:  # plotly is not installed: the PNG is enough
            pass
    print(f"{problem.description}\nminimum (least squares): w = {w_min:.4f}, b = {b_min:.4f}\n")
    report = Report("descend surface: " + problem.name, problem.description)
    report.section("Paths")
    report.table(rows)
    report.key_values(
        {
            "least-squares w": w_min,
            "least-squares b": b_min,
            "learning rate": args.lr,
            "epochs": args.epochs,
            "seed": args.seed,
        }
    )
    report.section("Figures")
    record = {"problem": problem.name, "minimum": [w_min, b_min], "rows": rows,
              "paths": {k: v.tolist() for k, v in paths.items()}}  # fmt: skip
    return report, rows, record


DEFAULT_LRS = "0.01,0.05,0.1"


def _camel(args, experiments, batches, figures: Figures):
    lrs = parse_floats(args.lrs or DEFAULT_LRS, "--lrs")
    if any(b != "full" and b > 100 for b in batches):
        raise UsageError("--batches: the camel problem has 100 samples; use sizes up to 100")
    result = experiments.local_minima(
        batch_sizes=batches, lrs=lrs, n_starts=args.starts, steps=args.steps, seed=args.seed
    )
    rows = [dict(row) for row in result.rows]
    for lr in lrs:
        figures.draw(f"minima_lr{lr:g}.png", f"Every run at lr={lr:g}, coloured by where it "
                     "ended", "local_minima", result, lr)  # fmt: skip
    problem = result.problem
    figures.draw("surface.png", "The three-hump camel function: one global, two local minima",
                 "surface", problem.cost, None, minima=problem.minima, bounds=problem.bounds,
                 param_names=problem.param_names, title=problem.name)  # fmt: skip
    print(f"{problem.description}; {args.starts} starts, {args.steps} updates each\n")
    report = Report("descend surface: " + problem.name, problem.description)
    report.section("Where the runs ended (fractions)")
    report.table(rows)
    report.section("Figures")
    return report, rows, {"problem": problem.name, "rows": rows, "settings": result.settings}


def _pair(p) -> str:
    return f"({float(p[0]):.3f}, {float(p[1]):.3f})"
