"""The run folder: what ``descend train --out DIR`` leaves behind, and reading it back.

::

    DIR/model.npz        the network (architecture JSON + weights), ds.load reads it
    DIR/config.toml      the settled options: descend train --config DIR/config.toml repeats the run
    DIR/preprocess.json  features, target, classes, standardisation statistics
    DIR/history.csv      one row per epoch: loss, metrics, validation, learning rate, time
    DIR/steps.csv        one row per update: the batch cost it descended
    DIR/metrics.json     final metrics per split, updates, wall time, whether it was interrupted
    DIR/*.png            figures
    DIR/report.html      everything above on one self-contained page

Every file is written atomically (a temporary file renamed over the target), and the folder
itself appears only when complete (:class:`descend.cli.output.RunFolder`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from descend.cli import runfiles
from descend.cli.errors import CLIError, UsageError
from descend.cli.options import dump_toml, read_toml
from descend.io import atomic_write


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (an existing file keeps its mode)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity: write them as null, so every JSON reader accepts the file.
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (NaN and infinity become null)."""
    return write_text(path, json.dumps(_clean(data), indent=2, default=_json_default) + "\n")


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """Write a CSV file atomically; floats keep all their digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return write_text(path, buffer.getvalue())


def write_history(folder: Path, history) -> None:
    """``history.csv`` (per epoch) and ``steps.csv`` (per update) from a ``History``."""
    keys = list(history.epoch)
    n = max((len(v) for v in history.epoch.values()), default=0)
    rows = [[i + 1] + [history.epoch[k][i] if i < len(history.epoch[k]) else "" for k in keys]
            for i in range(n)]  # fmt: skip
    write_csv(folder / "history.csv", ["epoch", *keys], rows)
    n_steps = len(history.step.get("loss", []))
    # The per-update record: the cost, the batch size, and what a Recorder added (gradient norms
    # and update-to-weight ratios per layer), each with one value per update.
    step_keys = [k for k, v in history.step.items() if len(v) == n_steps]
    write_csv(
        folder / "steps.csv", ["update", *step_keys],
        [[i + 1, *(history.step[k][i] for k in step_keys)] for i in range(n_steps)],
    )  # fmt: skip


def write_config(
    folder: Path, values: dict[str, Any], command: str, shown: Path | None = None
) -> Path:
    """The settled options as ``config.toml`` in ``folder`` (whose final name is ``shown``)."""
    header = (
        f"descend {command}: the settled options of this run.\n"
        f"Repeat it exactly with: descend {command} --config "
        f"{(shown or folder) / 'config.toml'} --out NEW_DIR"
    )
    return write_text(folder / "config.toml", dump_toml(values, header))


@dataclass
class Run:
    """A run folder read back: the model and what is needed to use it on new data."""

    folder: Path
    model: Any
    config: dict[str, Any]
    info: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def loss(self) -> str:
        """The cost the model was trained with."""
        return self.info["loss"]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise inputs as in training, in the model's dtype."""
        X = np.asarray(X, dtype=np.float64)
        if self.info.get("standardize"):
            X = (X - np.asarray(self.info["mean"])) / np.asarray(self.info["scale"])
        return X.astype(self.model.dtype or np.float32)

    def target_for_loss(self, y: np.ndarray) -> np.ndarray:
        """Targets in the form the cost saw in training (scaled for regression)."""
        if self.info["task"] == "regression" and self.info.get("target_scale"):
            return (np.asarray(y, np.float64) - self.info["target_mean"]) / self.info[
                "target_scale"
            ]
        return y

    def output_to_target(self, out: np.ndarray) -> np.ndarray:
        """Regression outputs back in the units of the target."""
        out = np.asarray(out, dtype=np.float64)
        if self.info.get("target_scale"):
            out = out * self.info["target_scale"] + self.info["target_mean"]
        return out


def load_run(path: str | Path) -> Run:
    """Read a run folder written by ``descend train``; errors say what is missing."""

    folder = Path(path)
    if not folder.exists():
        raise CLIError(
            f"run folder {folder} not found; give a folder written by descend train --out"
        )
    if not folder.is_dir():
        raise UsageError(
            f"{folder} is a file; give the run folder written by descend train --out (it holds "
            "model.npz)"
        )
    model_path = folder / "model.npz"
    if not model_path.exists():
        raise CLIError(
            f"{folder} is not a run folder (no model.npz); give a folder written by descend train"
        )
    # Every file is read as the model file is: bounded, checked, one line naming it if wrong.
    model = runfiles.read_model(model_path)
    info = runfiles.read_info(folder, model)
    config = read_toml(folder / "config.toml") if (folder / "config.toml").exists() else {}
    metrics = runfiles.read_metrics(folder)
    return Run(folder=folder, model=model, config=config, info=info, metrics=metrics)
