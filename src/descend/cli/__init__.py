"""The ``descend`` command: train, compare, inspect and check networks from the shell.

Run ``descend --help`` for the commands and ``descend COMMAND --help`` for each one's options
and examples. :func:`main` is the entry point (also ``python -m descend``); it returns the exit
status: 0 for success, 1 for a failure, 2 for a usage error, 130 after Ctrl-C. Errors are one
line on stderr saying what went wrong and what to do; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence

from descend.cli.errors import CLIError, Interrupted, UsageError

__all__ = ["main"]

EPILOG = """\
examples:
  descend datasets                                 # the built-in data sets
  descend train digits:0-3 --out runs/digits       # train, write a run folder with report.html
  descend compare digits:0-3 --out runs/compare    # batch vs stochastic vs mini-batch
  descend surface --out runs/surface               # the cost surface and the descent paths
  descend inspect runs/digits --sample 3           # backpropagation, layer by layer
  descend evaluate runs/digits new.csv             # a saved run on new data
  descend predict runs/digits new.csv -o predictions.csv
  descend landscape runs/digits                    # the loss around the trained weights
  descend gradcheck runs/digits                    # backprop against finite differences
  descend playground                               # watch and steer it live in the browser

Run descend COMMAND --help for the options of each command.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one-line usage errors (exit status 2)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        description = kwargs.get("description")
        if description and "\n" not in description:
            kwargs["description"] = textwrap.fill(description, 78)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message}; see {self.prog} --help", prog=self.prog)


def build_parser() -> argparse.ArgumentParser:
    """The ``descend`` parser with every subcommand."""
    from descend import __version__
    from descend.cli import (
        compare,
        datasets_cmd,
        evaluate,
        gradcheck,
        inspect_cmd,
        landscape,
        playground,
        surface,
        train,
    )

    parser = _Parser(
        prog="descend",
        description="Train neural networks by gradient descent and backpropagation, with every "
        "step visible.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"descend {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )  # fmt: skip
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    for module in (train, evaluate, compare, surface, landscape, inspect_cmd, gradcheck,
                   datasets_cmd, playground):  # fmt: skip
        module.register(subparsers, [common])
    return parser


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``descend`` command with ``argv`` (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv : sequence of str, optional

    Returns
    -------
    int
        The exit status: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).

    Examples
    --------
    >>> main(["datasets", "--names"])
    digits
    breast_cancer
    diabetes
    moons
    circles
    spiral
    xor
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    command = next((a for a in argv if not a.startswith("-")), None)
    prog = f"descend {command}" if command else "descend"
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        args.debug = getattr(args, "debug", False) or debug
        if args.command is None:
            parser.print_help()
            return 2
        prog = f"descend {args.command}"
        if extra:
            raise UsageError(
                f"unrecognized arguments: {' '.join(extra)}; see {prog} --help", prog=prog
            )
        return int(args.func(args) or 0)
    except Interrupted as exc:
        print(f"{prog}: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (descend ... | head): stop quietly, as other shell tools do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except CLIError as exc:
        if debug:
            traceback.print_exc()
        where = getattr(exc, "prog", None) or prog
        print(f"{where}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, TypeError, FileNotFoundError, PermissionError, ImportError) as exc:
        # descend's own errors already say what to do; the command adds only where it was.
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} (run again with "
            "--debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
