"""``python -m descend``: the same as the ``descend`` command."""

import sys

from descend.cli import main

if __name__ == "__main__":
    sys.exit(main())
