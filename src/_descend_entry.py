"""The ``descend`` command's entry point, outside the package so that it runs before NumPy loads.

Starting the command imports NumPy and descend, which takes a few tenths of a second. Ctrl-C in
that time would otherwise print a traceback from deep inside an import (or an ImportError that
NumPy makes of it); here it ends the command at once, quietly, with exit status 130. Once the
command runs, :func:`descend.cli.run_as_program` handles Ctrl-C.
"""

import os
import signal


def _exit_quietly(signum, frame):  # noqa: ARG001 - the signal handler's signature
    # Nothing has been written yet: stop without unwinding half-finished imports.
    os.write(2, b"descend: interrupted\n")
    os._exit(130)


def main() -> int:
    """Run the ``descend`` command (the console script calls this)."""
    # Only where Ctrl-C would raise KeyboardInterrupt: an ignored SIGINT (a background job)
    # stays ignored.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_quietly)
    from descend.cli import run_as_program

    return run_as_program()
