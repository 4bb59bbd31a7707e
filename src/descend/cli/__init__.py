"""The ``descend`` command: train, compare, inspect and check networks from the shell.

Run ``descend --help`` for the commands and ``descend COMMAND --help`` for each one's options
and examples. :func:`main` is the entry point (also ``python -m descend``); it returns the exit
status: 0 for success, 1 for a failure, 2 for a usage error, 130 after Ctrl-C. Errors are one
line on stderr saying what went wrong and what to do; ``--debug`` shows the traceback.

Output folders (``--out`` of train, compare, surface, inspect, landscape) appear only when
complete: they are written into a hidden sibling and renamed into place. An existing folder
that is not empty is refused unless ``--force`` is given, which replaces the run in it once the
new one is complete (and never a folder holding files descend did not write). Files keep their
modes; ``predict -o`` follows links and writes into devices and named pipes. Ctrl-C while the
command starts exits 130 without a traceback; a Ctrl-C after the command has finished is
ignored (the exit status stays the command's: its files are complete). See
:mod:`descend.cli.output` for the rules.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import textwrap
import traceback
from collections.abc import Sequence

from descend.cli.errors import CLIError, Interrupted, UsageError
from descend.cluster import ClusterError

__all__ = ["main", "run_as_program"]

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
  descend sweep moons --lrs 0.01,0.1 --batches full,32 --optimizers gd,adam
  descend train digits --workers 2                 # on Ray: 2 workers, each a shard of the data
  descend playground                               # watch and steer it live in the browser

--workers and --address (train, compare, sweep) need the ray extra: pip install 'descend[ray]'.

Run descend COMMAND --help for the options of each command. An --out folder that already holds
a run is refused; add --force to replace it (once the new run is complete).
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``descend`` parser with every subcommand, or only with ``command``'s when it names
    one: the others' flags are not needed to run it (building all of them costs more than
    most commands' own work in tests that run many)."""
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
        sweep,
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
    modules = {
        "train": train, "evaluate": evaluate, "predict": evaluate, "compare": compare,
        "sweep": sweep, "surface": surface, "landscape": landscape, "inspect": inspect_cmd,
        "gradcheck": gradcheck, "datasets": datasets_cmd, "playground": playground,
    }  # fmt: skip
    wanted = [modules[command]] if command in modules else dict.fromkeys(modules.values())
    for module in wanted:
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
        parser = build_parser(command)
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
    except Exception as exc:
        if debug:
            traceback.print_exc()
        return _report(prog, exc)


def _report(prog: str, exc: Exception) -> int:
    """Print the one line for an error that ended the command; return the exit status."""
    if isinstance(exc, CLIError):
        print(f"{exc.prog or prog}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    if isinstance(
        exc,
        ValueError | TypeError | FileNotFoundError | PermissionError | ImportError | ClusterError,
    ):
        # descend's own errors already say what to do; the command adds only where it was.
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
        # A full or read-only disk is the machine's state, not a bug: say which file.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror}{where}", file=sys.stderr)
        return 1
    return _internal_error(prog, exc)


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def _internal_error(prog: str, exc: BaseException) -> int:
    print(
        f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} (run again with "
        "--debug for the traceback, and please report it)",
        file=sys.stderr,
    )
    return 1


def run_as_program(argv: Sequence[str] | None = None) -> int:
    """Run :func:`main` as the ``descend`` program, and make Ctrl-C after its end harmless.

    Ctrl-C during the command is :func:`main`'s (exit status 130). Once :func:`main` has
    returned, the command's work is done and its files are complete, so a Ctrl-C that lands
    while Python shuts down is ignored and the exit status is :func:`main`'s (0 after
    success), instead of the process dying by the signal. Only for the program: this changes
    the process's SIGINT handler, which a library caller of :func:`main` would not want.

    Parameters
    ----------
    argv : sequence of str, optional

    Returns
    -------
    int
        The exit status.
    """
    status = 130
    try:
        if callable(signal.getsignal(signal.SIGINT)):  # not when SIGINT is ignored
            signal.signal(signal.SIGINT, signal.default_int_handler)
        status = main(argv)
    except KeyboardInterrupt:
        # After main returned (status is its own), or in its last lines (130).
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if status == 130:
        _end_interrupted()
    return status


def _end_interrupted() -> None:
    """End an interrupted command now, without the interpreter's finalization.

    By then the command has said so and its folder is either absent or the earlier run, intact.
    What Ctrl-C cut short inside a C library (a figure half drawn, a BLAS call) can make
    finalization abort the process ("Fatal Python error", exit by SIGABRT) after descend's
    line; seen about once in twenty interrupts while a run folder was written. So: stop a Ray
    instance this process started, flush the streams, and exit with 130.
    """
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    except Exception:  # an interrupted Ray: its processes end with their driver
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)
