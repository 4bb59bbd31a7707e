"""``python -m descend``: the same as the ``descend`` command."""

import sys

from descend.cli import run_as_program

if __name__ == "__main__":
    sys.exit(run_as_program())
