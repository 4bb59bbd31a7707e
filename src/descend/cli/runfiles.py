"""Reading the files of a run folder with the model loader's discipline.

``preprocess.json``, ``metrics.json`` and ``trajectory.npz`` are read as the model file is: a
regular file of bounded size, JSON nested at most 100 deep, an archive checked before anything is
allocated (:class:`descend.io.ArchiveReader`), and every value checked against what the model
needs before it is used. Whatever is wrong gives one line that names the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from descend.cli.errors import CLIError
from descend.io import ArchiveReader, ModelFileError, read_json_file

# preprocess.json holds a mean and a scale per feature: 64 MiB allows about a million features.
MAX_INFO_BYTES = 64 << 20
MAX_METRICS_BYTES = 1 << 20
TASKS = ("classification", "regression")
KINDS = ("builtin", "csv", "npy")


def read_model(path: Path):
    """``model.npz`` through the model loader, and refused if its weights are not finite (a
    run that diverged keeps its last finite weights, so NaN means the file was altered)."""
    import descend as ds

    try:
        model = ds.load(path)
    except (ModelFileError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    for name, p in model.named_parameters().items():
        if not np.isfinite(p.data).all():
            raise CLIError(f"{path}: the weights {name!r} hold NaN or infinite values; train the "
                           "run again")  # fmt: skip
    return model


def run_data(run, spec: str | None, *, need_target: bool = True):
    """Data for a trained run: ``spec`` if given, else the data it was trained on (named in
    its ``preprocess.json``, which the message names if that data cannot be read)."""
    from descend.cli import data as data_module

    if spec:
        return data_module.load_for_model(spec, run.info, None, need_target)
    try:
        return data_module.load_for_model(run.info["data"], run.info, None, need_target)
    except CLIError as exc:
        raise type(exc)(
            f"{exc} (the training data named in {run.folder}/preprocess.json; give --data)"
        ) from None


def read_json(path: Path, max_bytes: int) -> dict:
    """A JSON object from a run folder's file, or a :class:`CLIError` naming the file."""
    try:
        return read_json_file(path, path.name, max_bytes=max_bytes)
    except ModelFileError as exc:
        raise CLIError(f"{exc}; train the run again") from None


def _model_width(model) -> tuple[int | None, int | None]:
    """(inputs, outputs) of the model's first and last weights, None when it has none."""
    weights = [p for p in model.parameters() if p.ndim == 2]
    if not weights:
        return None, None
    return int(weights[0].shape[0]), int(weights[-1].shape[1])


def _finite_list(info: dict, key: str, length: int, where: str) -> list[float]:
    value = info.get(key)
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(type(v) in (int, float) and math.isfinite(v) for v in value)
    ):
        raise CLIError(
            f"{where}: {key!r} must be a list of {length} finite numbers (one per feature); the "
            "file was altered: train the run again"
        )
    return value


def _check_scaling(info: dict, n_features: int, where: str) -> None:
    if type(info.get("standardize", False)) is not bool:
        raise CLIError(f"{where}: 'standardize' must be true or false")
    if info.get("standardize"):
        _finite_list(info, "mean", n_features, where)
        if not all(v > 0 for v in _finite_list(info, "scale", n_features, where)):
            raise CLIError(f"{where}: every 'scale' must be greater than 0 (a feature's spread)")
    for key in ("target_mean", "target_scale"):
        value = info.get(key)
        if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
            raise CLIError(f"{where}: {key!r} must be a finite number, got {value!r}")
    if info.get("target_scale") is not None and not info["target_scale"] > 0:
        raise CLIError(f"{where}: 'target_scale' must be greater than 0")


def _check_classes(info: dict, n_out: int | None, where: str) -> None:
    from descend.cli.data import label_key

    classes = info.get("classes")
    if info["task"] == "regression":
        return
    if not isinstance(classes, list) or not all(
        isinstance(c, str) or (type(c) in (int, float) and math.isfinite(c)) for c in classes
    ):
        raise CLIError(f"{where}: 'classes' must be the list of class labels of a classifier")
    if len({label_key(c) for c in classes}) != len(classes) or len(classes) < 2:
        raise CLIError(f"{where}: 'classes' must name at least two different classes")
    if n_out is not None and n_out != len(classes) and not (n_out == 1 and len(classes) == 2):
        raise CLIError(
            f"{where} lists {len(classes)} classes but the model has {n_out} outputs; the run "
            "folder mixes two runs: train it again"
        )


def check_info(info: dict, model, where: str) -> dict:
    """Check ``preprocess.json`` against the model it goes with; return it."""
    import descend as ds

    n_in, n_out = _model_width(model)
    features = info.get("features")
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
    ):
        raise CLIError(f"{where}: 'features' must be the list of the model's input names")
    if n_in is not None and len(features) != n_in:
        raise CLIError(
            f"{where} lists {len(features)} features but the model takes {n_in}; the run folder "
            "mixes two runs: train it again"
        )
    if info.get("task") not in TASKS:
        raise CLIError(f"{where}: 'task' must be classification or regression")
    loss = info.get("loss")
    try:
        ds.losses.get(loss if isinstance(loss, str) else "")
    except ValueError:
        raise CLIError(f"{where}: 'loss' is {loss!r}, not a descend cost function") from None
    if not isinstance(info.get("data"), str) or not info["data"].strip():
        raise CLIError(f"{where}: 'data' must name the training data (a data set or a file)")
    if info.get("target") is not None and not isinstance(info["target"], str):
        raise CLIError(f"{where}: 'target' must be text")
    if info.get("kind") is not None and info["kind"] not in KINDS:
        raise CLIError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    _check_scaling(info, len(features), where)
    _check_classes(info, n_out, where)
    return info


def read_info(folder: Path, model) -> dict:
    """``preprocess.json``, checked against ``model``."""
    path = folder / "preprocess.json"
    if not path.exists() and not path.is_symlink():
        raise CLIError(f"{folder} has no preprocess.json; it was not written by descend train")
    return check_info(read_json(path, MAX_INFO_BYTES), model, str(path))


def read_metrics(folder: Path) -> dict[str, Any]:
    """``metrics.json`` ({} when the run has none)."""
    path = folder / "metrics.json"
    if not path.exists() and not path.is_symlink():
        return {}
    return read_json(path, MAX_METRICS_BYTES)


def read_trajectory(path: Path, n_params: int) -> np.ndarray:
    """The recorded weights (``snapshots``, one row per snapshot) of ``trajectory.npz``.

    Read like a model file: a checked archive of stored members, an array whose header and size
    agree, then checked for the model's number of parameters and for finite values.
    """
    try:
        with ArchiveReader(path, what="trajectory file") as archive:
            snapshots = archive.read_array(
                "snapshots", what="the recorded weights", dtypes=(np.float32, np.float64)
            )
    except ModelFileError as exc:
        raise CLIError(f"{exc}; train the run again, or use --method random") from None
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    if snapshots.ndim != 2 or snapshots.shape[1] != n_params or len(snapshots) < 2:
        raise CLIError(
            f"{path} holds snapshots of shape {snapshots.shape}; the model has {n_params} "
            "parameters (and a path needs at least 2 snapshots): train the run again"
        )
    if not np.isfinite(snapshots).all():
        raise CLIError(f"{path} holds NaN or infinite weights; train the run again")
    return snapshots.astype(np.float64, copy=False)
