"""Save and load models: the architecture as JSON, the weights as ``.npy`` arrays, in one zip file.

A model file is an ordinary ``.npz`` archive (so ``np.load(path)`` lists the weights) that also
holds ``model.json``, the architecture, readable with any unzip tool. Nothing is ever unpickled:
arrays are read with ``allow_pickle=False`` after their headers have been checked against the
architecture and the size of the file, so a truncated, altered or hostile file raises
:class:`ModelFileError` and never runs code or allocates more memory than the file justifies.

Files are written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the target. A crash while saving leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from descend.nn.module import Module
from descend.nn.sequential import from_config

FORMAT = "descend-model"
VERSION = 1
CONFIG_MEMBER = "model.json"
MAX_CONFIG_BYTES = 1 << 20
_ALLOWED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, truncated, corrupt, or not what it claims to be."""


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file that then replaces ``path``.

    Parameters
    ----------
    path : str or PathLike
    write : callable
        Receives a binary file object opened for writing.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write(target, lambda f: f.write(b"hello")).read_bytes()
    b'hello'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable where the platform allows it
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def save(model: Module, path: str | os.PathLike) -> Path:
    """Save a model (architecture and weights) to one file, atomically.

    Parameters
    ----------
    model : Module
        A model whose layers can describe themselves (``Sequential``/``Dense``/``Activation`` with
        built-in activation names, or a class registered with ``ds.nn.register_module``).
    path : str or PathLike
        The file to write; ``.npz`` is appended when the name has no suffix.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, numpy as np, descend as ds
    >>> model = ds.nn.mlp([4, 8, 3], output_activation="softmax", seed=0)
    >>> path = ds.save(model, tempfile.mkdtemp() + "/digits")
    >>> path.name
    'digits.npz'
    >>> X = np.ones((2, 4), dtype=np.float32)
    >>> bool(np.array_equal(ds.predict(ds.load(path), X), ds.predict(model, X)))
    True
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a descend.nn.Module, got {type(model).__name__}")
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".npz")
    params = model.named_parameters()
    config = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.get_config(),
        "parameters": {
            n: {"shape": list(p.shape), "dtype": str(p.dtype)} for n, p in params.items()
        },
    }
    blob = json.dumps(config, indent=2).encode()

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(CONFIG_MEMBER, blob)
            for name, p in params.items():
                archive.writestr(f"{name}.npy", _npy_bytes(p.data))

    return atomic_write(path, write)


def _read_config(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        info = archive.getinfo(CONFIG_MEMBER)
    except KeyError:
        raise ModelFileError(
            f"{path} has no {CONFIG_MEMBER}: it is not a descend model file"
        ) from None
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(
            f"{path}: {CONFIG_MEMBER} announces {info.file_size} bytes, more than the "
            f"{MAX_CONFIG_BYTES} a model description can need; the file is corrupt or hostile"
        )
    with archive.open(info) as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: {CONFIG_MEMBER} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: {CONFIG_MEMBER} does not describe a descend model")
    if config.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: model file version {config.get('version')!r} is not supported "
            f"(this descend reads version {VERSION}); save it again with this version"
        )
    if not isinstance(config.get("parameters"), dict):
        raise ModelFileError(f"{path}: {CONFIG_MEMBER} has no 'parameters' table")
    return config


def _read_array(archive: zipfile.ZipFile, name: str, expected_shape, path: Path) -> np.ndarray:
    member = f"{name}.npy"
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ModelFileError(f"{path}: the weights of {name!r} ({member}) are missing") from None
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, OSError, EOFError, SyntaxError) as exc:
            raise ModelFileError(f"{path}: {member} has no valid array header ({exc})") from None
        if dtype not in _ALLOWED_DTYPES:
            raise ModelFileError(
                f"{path}: {member} holds dtype {dtype}; model weights must be float32 or float64"
            )
        if tuple(shape) != tuple(expected_shape):
            raise ModelFileError(
                f"{path}: {member} has shape {tuple(shape)}, the architecture needs "
                f"{tuple(expected_shape)}"
            )
        n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n_bytes > info.file_size:
            raise ModelFileError(
                f"{path}: {member} announces {n_bytes} bytes of data but holds {info.file_size}; "
                "the file is truncated or corrupt"
            )
        try:
            data = f.read(n_bytes)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(f"{path}: {member} cannot be read ({exc})") from None
    if len(data) != n_bytes:
        raise ModelFileError(f"{path}: {member} is truncated")
    array = np.frombuffer(data, dtype=dtype)
    order = "F" if fortran else "C"
    return array.reshape(shape, order=order).copy()


def load(path: str | os.PathLike) -> Module:
    """Load a model saved by :func:`save`.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Module
        The model, with the saved weights: its predictions equal the saved model's exactly.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        When the file is not a valid descend model file (truncated, altered, another format).

    Examples
    --------
    >>> import tempfile, descend as ds
    >>> path = ds.save(ds.nn.mlp([2, 1], seed=0), tempfile.mkdtemp() + "/m.npz")
    >>> ds.load(path)
    Sequential(
      (0): Dense(2, 1, activation='linear')
    )
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; check the path (save writes .npz)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(
            f"{path} is not a descend model file (not a valid archive: {exc})"
        ) from None
    with archive:
        config = _read_config(archive, path)
        try:
            model = from_config(config["architecture"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{path}: the architecture cannot be built ({exc})") from None
        params = model.named_parameters()
        described = config["parameters"]
        if sorted(described) != sorted(params):
            raise ModelFileError(
                f"{path}: the file lists parameters {sorted(described)} but the architecture has "
                f"{sorted(params)}"
            )
        state = {name: _read_array(archive, name, p.shape, path) for name, p in params.items()}
    for name, array in state.items():
        if array.dtype != params[name].dtype:
            raise ModelFileError(
                f"{path}: {name} is {array.dtype} but the architecture says {params[name].dtype}"
            )
    model.load_state_dict(state)
    return model
