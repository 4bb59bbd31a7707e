"""Text for the terminal: aligned tables and one-line epoch logs."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from descend.cli.report import format_number
from descend.train.callbacks import Callback


def text_table(rows: Sequence[Mapping[str, Any]], digits: int = 4) -> str:
    """Rows of dicts as an aligned plain-text table (numbers right-aligned).

    >>> print(text_table([{"split": "train", "loss": 0.5}, {"split": "test", "loss": 0.25}]))
    split  loss
    train   0.5
    test   0.25
    """
    if not rows:
        return ""
    head = list(rows[0])
    cells = [[format_number(row.get(k), digits) for k in head] for row in rows]
    numeric = [
        all(isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool)
            for row in rows if row.get(k) is not None)
        for k in head
    ]  # fmt: skip
    widths = [max(len(str(h)), *(len(c[j]) for c in cells)) for j, h in enumerate(head)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for c in cells:
        parts = [
            c[j].rjust(widths[j]) if numeric[j] else c[j].ljust(widths[j]) for j in range(len(head))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


class EpochLog(Callback):
    """Prints one line per epoch (thinned to about 20 lines for long runs) where no bar is shown.

    The first epoch is always printed, so a caller watching the output knows training has begun.
    """

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.every = 1
        self.epochs = 1

    def on_train_begin(self, logs: dict) -> None:
        self.epochs = int(logs.get("epochs", 1))
        self.every = max(1, self.epochs // 20)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        n = epoch + 1
        if n == 1 or n == self.epochs or n % self.every == 0:
            shown = "  ".join(
                f"{k} {format_number(v)}" for k, v in logs.items() if k not in ("lr", "time")
            )
            print(f"epoch {n}/{self.epochs}  {shown}", file=self.file or sys.stderr, flush=True)


class Keeper(Callback):
    """Holds on to the History being filled, so it survives an exception out of ``fit``."""
