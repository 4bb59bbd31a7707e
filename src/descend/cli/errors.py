"""The kinds of error the command reports: usage errors (exit 2), failures (exit 1), Ctrl-C."""

from __future__ import annotations


class CLIError(Exception):
    """A failure the user can act on: printed as one line, exit status 1.

    Parameters
    ----------
    message : str
        What went wrong and what to do about it, in one sentence.
    prog : str, optional
        The command it belongs to (``"descend train"``), when known.
    """

    exit_code = 1

    def __init__(self, message: str, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class UsageError(CLIError):
    """A wrong command line or configuration: printed as one line, exit status 2."""

    exit_code = 2


class Interrupted(CLIError):
    """Ctrl-C: what was trained so far is kept; exit status 130 (128 + SIGINT), as shells do."""

    exit_code = 130
