"""Save and load models: the architecture as JSON, the weights as ``.npy`` arrays, in one zip file.

A model file is an ordinary ``.npz`` archive (so ``np.load(path)`` lists the weights) that also
holds ``model.json``, the architecture, readable with any unzip tool. Checkpoints
(:class:`descend.train.Checkpoint`) are the same kind of archive with more members, written and
read by the same code here (:func:`write_archive`, :class:`ArchiveReader`).

Nothing is ever unpickled, and nothing is trusted before it is checked. Opening an archive checks
its directory first: no duplicate or path-like member names, every member stored uncompressed
(as descend writes them) with its declared size equal to its stored size and inside the file, so
no member can expand beyond the bytes on disk (no zip bombs). A JSON member is read only up to a
fixed limit (1 MiB); an array is read only after its ``.npy`` header (parsed as a literal, never
executed) announces a dtype from a short list (no ``object``, so no pickle), a shape that fits
the expectation and exactly the number of bytes the member holds. Every member's CRC-32 is
verified. Whatever is wrong, :class:`ModelFileError` says what, and never runs code or allocates
more memory than the file's size justifies.

Files are written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the target. A crash while saving leaves the previous file intact.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from descend.nn.module import Module
from descend.nn.sequential import from_config

__all__ = [
    "ArchiveReader", "ModelFileError", "atomic_write", "check_regular_file", "json_depth", "load",
    "model_members", "parse_npy_header", "read_json_file", "read_model",
    "remove_stale_temporaries", "save", "write_archive",
]  # fmt: skip

FORMAT = "descend-model"
VERSION = 1
CONFIG_MEMBER = "model.json"
MAX_CONFIG_BYTES = 1 << 20
MAX_NPY_HEADER_BYTES = 4096
# Arrays and objects inside each other. Python's JSON reader recurses (about 1,000 levels crash
# it), and so do the modules built from a description: a Sequential nested 250 deep builds but
# cannot be called. 100 levels hold any model descend writes (two per nested Sequential).
MAX_JSON_DEPTH = 100
_ALLOWED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# The .npy descriptors descend reads (and writes): little-endian, no objects, ever.
_DESCRS = {"<f4": np.dtype("<f4"), "<f8": np.dtype("<f8"), "<i8": np.dtype("<i8")}
_NPY_MAGIC = b"\x93NUMPY"
# Plain names only: letters, digits, '_', '.', '-', not starting with '.'; no '/' or '\\'.
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}\Z")
# What a broken or hostile archive can make zipfile, struct, zlib, json or ast raise.
_READ_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, TypeError,
    KeyError, IndexError, OverflowError, RuntimeError, NotImplementedError, struct.error,
    zlib.error, UnicodeDecodeError, SyntaxError, MemoryError, RecursionError,
)  # fmt: skip


class ModelFileError(ValueError):
    """A model or checkpoint file is truncated, corrupt, or not what it claims to be.

    Raised by :func:`load` and by reading a checkpoint, with a message that names the file, the
    member and the problem. A missing file raises ``FileNotFoundError`` instead.

    Examples
    --------
    >>> import tempfile, pathlib, descend as ds
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.npz"
    >>> _ = path.write_text("not a model")
    >>> try:
    ...     ds.load(path)
    ... except ds.ModelFileError as err:
    ...     print("not a descend model file" in str(err))
    True
    """


def _default_file_mode(path: Path) -> int:
    """The existing file's mode, or 0o666 less the process's umask for a new file."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    # Linux reports it without changing it; elsewhere set-and-restore (a moment's race).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file that then replaces ``path``.

    The temporary file sits in the same folder (``.<name>.<random>.tmp``), is flushed and
    fsync-ed, then renamed over ``path`` (atomic on POSIX and Windows); the folder is fsync-ed
    too. If anything fails or the process is interrupted before the rename, the temporary file is
    removed and ``path`` keeps its previous content. (A process killed outright can leave the
    temporary file behind, never a broken ``path``.)

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
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, _default_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_folder(folder)
    return path


def sync_folder(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable, where the platform allows it (else nothing).

    Examples
    --------
    >>> import tempfile
    >>> sync_folder(tempfile.mkdtemp())
    """
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# Strings of JSON text (where brackets do not count), found without parsing: "..." with escapes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# mkstemp's random part (8 of a-z, 0-9, '_') and atomic_write's suffix.
_TEMPORARY_TAIL = re.compile(r"[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(path: str | os.PathLike) -> int:
    """Remove the temporary files that killed :func:`atomic_write` calls to ``path`` left.

    Only names of exactly the form ``.<name>.<8 random characters>.tmp`` next to ``path`` are
    removed (compared as text: no wildcard in ``path`` can match another file's temporaries).
    Do not call it while another process may be writing the same ``path``.

    Parameters
    ----------
    path : str or PathLike
        The file whose temporaries to remove (it need not exist).

    Returns
    -------
    int
        How many were removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".run[1].ckpt.abcd1234.tmp").write_bytes(b"left by a kill")
    >>> _ = (folder / ".run1.ckpt.abcd1234.tmp").write_bytes(b"another run's")
    >>> remove_stale_temporaries(folder / "run[1].ckpt"), len(list(folder.iterdir()))
    (1, 1)
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = 0
    try:
        entries = list(os.scandir(path.parent if str(path.parent) else "."))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or not _TEMPORARY_TAIL.fullmatch(name[len(prefix) :]):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in JSON text, found without parsing it.

    Python's JSON reader recurses once per level, so text nested a few thousand deep crashes
    it; this count (brackets outside strings, a running sum) takes no recursion at all.

    Examples
    --------
    >>> json_depth(b'{"a": [1, [2]], "b": "[[["}'), json_depth(b"3")
    (3, 0)
    """
    bare = np.frombuffer(_JSON_STRING.sub(b"", raw), dtype=np.uint8)
    if not bare.size:
        return 0
    opens = (bare == ord("[")) | (bare == ord("{"))
    closes = (bare == ord("]")) | (bare == ord("}"))
    return int(max(0, np.cumsum(opens.astype(np.int64) - closes).max()))


def _json_object(raw: bytes, name: str, max_depth: int) -> dict:
    """Parse a JSON object, or raise ValueError saying what is wrong (the caller adds where)."""
    depth = json_depth(raw)
    if depth > max_depth:
        raise ValueError(
            f"{name} nests arrays and objects {depth} levels deep, more than the {max_depth} "
            "descend reads; the file is corrupt or hostile"
        )
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{name} is not valid JSON ({_reason(exc)})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{name} holds {type(content).__name__}, not a JSON object")
    return content


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"),
             (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "named pipe"),
             (stat.S_ISSOCK, "socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "special file")


def check_regular_file(path: str | os.PathLike, what: str = "file") -> int:
    """The size of ``path`` if it is a regular file (a link to one counts); else an error.

    A device (a link to ``/dev/zero`` reads forever), a named pipe (blocks), a folder or a
    socket is refused before it is opened.

    Raises
    ------
    FileNotFoundError
        When nothing is there.
    ModelFileError
        When it is not a regular file, or cannot be examined.

    Examples
    --------
    >>> try:
    ...     check_regular_file("/dev/null", "model file")
    ... except ModelFileError as err:
    ...     print(err)
    /dev/null is a character device, not a regular file; the model file must be a plain file
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}; check the path") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(
            f"{path} is a {_kind_of(info.st_mode)}, not a regular file; the {what} must be a "
            "plain file"
        )
    return info.st_size


def read_json_file(
    path: str | os.PathLike,
    what: str = "JSON file",
    *,
    max_bytes: int = MAX_CONFIG_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> dict:
    """Read a JSON object from a file with the model loader's limits.

    The file must be a regular file of at most ``max_bytes`` bytes (checked before reading),
    UTF-8 JSON nested at most ``max_depth`` deep (checked before parsing), holding an object.

    Parameters
    ----------
    path : str or PathLike
    what : str, default "JSON file"
        How the file is called in messages (``"preprocess.json"``, ...).
    max_bytes : int, default 1 MiB
    max_depth : int, default 100

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        For anything else, in one line that starts with the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "info.json"
    >>> _ = path.write_text('{"n": [1, 2]}')
    >>> read_json_file(path)
    {'n': [1, 2]}
    """
    size = check_regular_file(path, what)
    if size > max_bytes:
        raise ModelFileError(
            f"{path} has {size} bytes, more than the {max_bytes} a {what} can need; the file is "
            "corrupt or hostile"
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ModelFileError(f"{path} grew beyond {max_bytes} bytes while it was read")
    try:
        return _json_object(raw, "it", max_depth)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # Little-endian, C order, as the reader expects.
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_archive(
    path: str | os.PathLike,
    json_members: Mapping[str, object],
    arrays: Mapping[str, np.ndarray],
) -> Path:
    """Write one archive atomically: JSON members and arrays (``<name>.npy``), uncompressed.

    The format of model files and checkpoints: a zip (an ``.npz`` for NumPy), every member
    stored, readable back with :class:`ArchiveReader`.

    Parameters
    ----------
    path : str or PathLike
        The file to write (replaced atomically, see :func:`atomic_write`).
    json_members : mapping of str to JSON-serialisable object
        Member name (e.g. ``"model.json"``) to content.
    arrays : mapping of str to ndarray
        Array name to array; stored as member ``<name>.npy`` (float32, float64 or int64).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = write_archive(tempfile.mkdtemp() + "/a.npz", {"info.json": {"n": 2}},
    ...                      {"w": np.arange(2.0)})
    >>> with ArchiveReader(path) as archive:
    ...     archive.read_json("info.json"), archive.read_array("w")
    ({'n': 2}, array([0., 1.]))
    """
    blobs: dict[str, bytes] = {}
    for name, content in json_members.items():
        blobs[_checked_name(name)] = json.dumps(content, indent=1).encode()
    for name, array in arrays.items():
        member = _checked_name(f"{name}.npy")
        if member in blobs:
            raise ValueError(f"two members of the archive would be named {member!r}")
        array = np.asarray(array)
        if array.dtype.newbyteorder("<").str not in _DESCRS:
            raise TypeError(f"array {name!r} has dtype {array.dtype}; use float32/64 or int64")
        blobs[member] = _npy_bytes(array)

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for member, blob in blobs.items():
                archive.writestr(member, blob)

    return atomic_write(path, write)


def _checked_name(name: str) -> str:
    if not _MEMBER_NAME.match(name) or ".." in name:
        raise ValueError(
            f"{name!r} cannot be a member name: use letters, digits, '_', '.' and '-' only"
        )
    return name


class ArchiveReader:
    """Open a model file or checkpoint and read its members, checking everything first.

    Opening checks the archive's directory: a readable zip, no duplicate or path-like member
    names, every member stored uncompressed, within the file and with the size it declares.
    Reads are then bounded by those sizes, and every member's CRC-32 is verified.

    Parameters
    ----------
    path : str or PathLike
    what : str, default "model file"
        How the file is called in error messages ("checkpoint", ...).

    Attributes
    ----------
    path : Path
    names : set of str
        The member names.
    file_size : int

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        For everything wrong inside it; the message names the problem.

    Examples
    --------
    >>> import tempfile, descend as ds
    >>> path = ds.save(ds.nn.mlp([2, 1], seed=0), tempfile.mkdtemp() + "/m.npz")
    >>> with ArchiveReader(path) as archive:
    ...     sorted(archive.names)
    ['0.bias.npy', '0.weight.npy', 'model.json']
    """

    def __init__(self, path: str | os.PathLike, what: str = "model file") -> None:
        self.path = Path(path)
        self.what = what
        if self.path.exists() and not self.path.is_dir():  # a device or a pipe: never opened
            check_regular_file(self.path, what)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no {what} at {self.path}; check the path (ds.save writes .npz)"
            )
        self.file_size = self.path.stat().st_size
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as exc:
            raise self.error(
                f"is not a descend {what} (not a valid archive: {_reason(exc)})"
            ) from None
        try:
            self._infos = self._check_directory()
        except BaseException:
            self._zip.close()
            raise
        self.names = set(self._infos)

    def error(self, message: str) -> ModelFileError:
        """A :class:`ModelFileError` whose message starts with the file's path."""
        return ModelFileError(f"{self.path}: {message}")

    def _check_directory(self) -> dict[str, zipfile.ZipInfo]:
        infos: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in self._zip.infolist():
            name = info.filename
            if name in infos:
                raise self.error(f"the member {name!r} appears twice; the file was tampered with")
            if not _MEMBER_NAME.match(name) or ".." in name:
                raise self.error(
                    f"has a member named {name!r}; a descend {self.what} holds only plain names "
                    "(no folders or paths)"
                )
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.error(
                    f"{name} is compressed (method {info.compress_type}); descend stores members "
                    "uncompressed, so this file was not written by descend or was altered"
                )
            if info.flag_bits & 0x1:
                raise self.error(f"{name} is encrypted")
            if info.file_size != info.compress_size:
                raise self.error(
                    f"{name} declares {info.file_size} bytes but stores {info.compress_size}; "
                    "the file is corrupt or hostile"
                )
            if info.header_offset + info.compress_size > self.file_size:
                raise self.error(
                    f"{name} extends beyond the end of the file; the file is truncated"
                )
            total += info.file_size
            infos[name] = info
        if total > self.file_size:
            raise self.error(
                f"its members declare {total} bytes in a file of {self.file_size}; the file is "
                "corrupt or hostile"
            )
        return infos

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def _info(self, member: str, missing: str) -> zipfile.ZipInfo:
        info = self._infos.get(member)
        if info is None:
            raise self.error(missing)
        return info

    def _read_all(self, info: zipfile.ZipInfo) -> bytes:
        # Declared size == stored size <= file size (checked at opening); reading to the end
        # verifies the CRC-32.
        try:
            with self._zip.open(info) as f:
                data = f.read(info.file_size)
                if f.read(1):
                    raise ValueError("more data than declared")
        except _READ_ERRORS as exc:
            raise self.error(f"{info.filename} cannot be read ({_reason(exc)})") from None
        if len(data) != info.file_size:
            raise self.error(f"{info.filename} is truncated")
        return data

    def read_json(self, member: str, *, max_bytes: int = MAX_CONFIG_BYTES) -> dict:
        """Read a JSON object member of at most ``max_bytes`` bytes.

        Raises
        ------
        ModelFileError
            Missing, larger than ``max_bytes``, nested more than 100 deep, not UTF-8 JSON, or not a
        JSON object.
        """
        info = self._info(member, f"has no {member}: it is not a descend {self.what}")
        if info.file_size > max_bytes:
            raise self.error(
                f"{member} announces {info.file_size} bytes, more than the {max_bytes} it can "
                "need; the file is corrupt or hostile"
            )
        raw = self._read_all(info)
        try:
            return _json_object(raw, member, MAX_JSON_DEPTH)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def read_array(
        self,
        name: str,
        *,
        shape: tuple[int, ...] | None = None,
        dtypes: Iterable = _ALLOWED_DTYPES,
        what: str | None = None,
    ) -> np.ndarray:
        """Read the array stored as member ``<name>.npy``, checking its header first.

        Parameters
        ----------
        name : str
        shape : tuple of int, optional
            The shape it must have; any shape when None (its bytes are still checked against
            the member's size before anything is allocated).
        dtypes : iterable of dtype, default (float32, float64)
            The dtypes it may have.
        what : str, optional
            What the array is, for messages (default ``repr(name)``).

        Returns
        -------
        ndarray
            A new, writeable array.
        """
        member = f"{name}.npy"
        what = what or repr(name)
        info = self._info(member, f"the array {what} ({member}) is missing")
        raw = self._read_all(info)
        try:
            descr, fortran, found_shape, offset = parse_npy_header(raw)
        except _READ_ERRORS as exc:
            raise self.error(f"{member} has no valid array header ({_reason(exc)})") from None
        allowed = {np.dtype(d) for d in dtypes}
        dtype = _DESCRS.get(descr)
        if dtype is None or dtype not in allowed:
            names = " or ".join(sorted(str(d) for d in allowed))
            raise self.error(
                f"{member} holds dtype {descr!r}; {what} must be {names} (never objects)"
            )
        if shape is not None and found_shape != tuple(shape):
            raise self.error(
                f"{member} has shape {found_shape}, the {self.what} needs {tuple(shape)}"
            )
        n_bytes = math.prod(found_shape) * dtype.itemsize
        if n_bytes != len(raw) - offset:
            raise self.error(
                f"{member} announces {n_bytes} bytes of data for shape {found_shape} but holds "
                f"{len(raw) - offset}; the file is truncated or corrupt"
            )
        array = np.frombuffer(raw, dtype=dtype, count=math.prod(found_shape), offset=offset)
        array = array.reshape(found_shape, order="F" if fortran else "C")
        return array.astype(dtype.newbyteorder("="), order="C", copy=True)

    def check_members(self, expected: Iterable[str]) -> None:
        """Raise ModelFileError unless the members are exactly ``expected``."""
        expected = set(expected)
        missing, unexpected = sorted(expected - self.names), sorted(self.names - expected)
        if missing:
            raise self.error(f"members {_few(missing)} are missing")
        if unexpected:
            raise self.error(
                f"has unexpected members {_few(unexpected)}; the file was altered or is not a "
                f"descend {self.what}"
            )


def parse_npy_header(raw: bytes) -> tuple[str, bool, tuple[int, ...], int]:
    """(descr, fortran_order, shape, data offset) of a .npy file, parsed without executing it.

    ``raw`` is the file's start (at least its header: ``MAX_NPY_HEADER_BYTES + 12`` bytes
    suffice). Raises ValueError, SyntaxError or struct.error for anything but a valid header.

    Examples
    --------
    >>> import io, numpy as np
    >>> buffer = io.BytesIO(); np.save(buffer, np.zeros((3, 2)))
    >>> parse_npy_header(buffer.getvalue())
    ('<f8', False, (3, 2), 128)
    """
    if raw[:6] != _NPY_MAGIC or len(raw) < 10:
        raise ValueError("not a .npy array (bad magic string)")
    major = raw[6]
    if major == 1:
        (length,), start = struct.unpack("<H", raw[8:10]), 10
    elif major in (2, 3):
        (length,), start = struct.unpack("<I", raw[8:12]), 12
    else:
        raise ValueError(f"unsupported .npy version {major}")
    if length > MAX_NPY_HEADER_BYTES or start + length > len(raw):
        raise ValueError(f"header of {length} bytes")
    text = raw[start : start + length].decode("utf-8" if major == 3 else "latin1")
    header = ast.literal_eval(text)  # literals only: nothing is executed
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError("the header is not the dict of descr, fortran_order and shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool):
        raise ValueError("descr or fortran_order is invalid")
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise ValueError(f"shape {shape!r} is invalid")
    return descr, fortran, shape, start + length


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ----------------------------------------------------------------------------- the model part


def model_members(model: Module) -> tuple[dict, dict[str, np.ndarray]]:
    """The model's description (``model.json``) and its arrays, as a model file stores them.

    Raises
    ------
    TypeError
        When ``model`` is not a Module.
    ValueError
        When the model cannot describe itself (a custom activation function, say).

    Examples
    --------
    >>> import descend as ds
    >>> config, arrays = model_members(ds.nn.mlp([2, 1], seed=0))
    >>> config["parameters"]["0.weight"], sorted(arrays)
    ({'shape': [2, 1], 'dtype': 'float32'}, ['0.bias', '0.weight'])
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a descend.nn.Module, got {type(model).__name__}")
    params = model.named_parameters()
    config = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.get_config(),
        "parameters": {
            n: {"shape": list(p.shape), "dtype": str(p.dtype)} for n, p in params.items()
        },
    }
    depth = json_depth(json.dumps(config).encode())
    if depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"the model's description nests {depth} levels deep, more than the {MAX_JSON_DEPTH} "
            "a model file may (modules nested that deep exhaust Python's recursion); flatten "
            "the nested Sequentials into one"
        )
    return config, {name: p.data for name, p in params.items()}


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
    config, arrays = model_members(model)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".npz")
    return write_archive(path, {CONFIG_MEMBER: config}, arrays)


def _declared_dense_bytes(architecture) -> int:
    """Bytes of weights the built-in layers of an architecture would allocate (walked without
    recursion, so a deeply nested description cannot overflow the stack)."""
    total, todo = 0, [architecture]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if node.get("class") == "Dense":
                n_in, n_out = node.get("in_features"), node.get("out_features")
                if type(n_in) is int and type(n_out) is int and n_in > 0 and n_out > 0:
                    total += (n_in + 1) * n_out * 8
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return total


def read_model(archive: ArchiveReader) -> tuple[Module, set[str]]:
    """Build the model an open archive describes and load its weights.

    Returns
    -------
    model : Module
    members : set of str
        The members the model part used (``model.json`` and the weights).

    Raises
    ------
    ModelFileError
        For anything wrong with the description or the weights.

    Examples
    --------
    >>> import tempfile, descend as ds
    >>> path = ds.save(ds.nn.mlp([2, 1], seed=0), tempfile.mkdtemp() + "/m.npz")
    >>> with ArchiveReader(path) as archive:
    ...     model, members = read_model(archive)
    >>> model[0].weight.shape, sorted(members)
    ((2, 1), ['0.bias.npy', '0.weight.npy', 'model.json'])
    """
    config = archive.read_json(CONFIG_MEMBER)
    if config.get("format") != FORMAT:
        raise archive.error(f"{CONFIG_MEMBER} does not describe a descend model")
    if config.get("version") != VERSION:
        raise archive.error(
            f"model file version {config.get('version')!r} is not supported "
            f"(this descend reads version {VERSION}); save it again with this version"
        )
    described = config.get("parameters")
    if not isinstance(described, dict):
        raise archive.error(f"{CONFIG_MEMBER} has no 'parameters' table")
    # Building the architecture allocates its weights: refuse sizes the file cannot hold.
    announced = _declared_dense_bytes(config.get("architecture"))
    if announced > 2 * archive.file_size + (1 << 16):
        raise archive.error(
            f"the architecture announces about {announced} bytes of weights but the file has "
            f"{archive.file_size}; the file is corrupt or hostile"
        )
    try:
        model = from_config(config.get("architecture"))
    except Exception as exc:  # a registered class may raise anything: the file is at fault
        raise archive.error(f"the architecture cannot be built ({_reason(exc)})") from None
    if not isinstance(model, Module):
        raise archive.error("the architecture does not describe a model")
    params = model.named_parameters()
    if sorted(described) != sorted(params):
        raise archive.error(
            f"the file lists parameters {sorted(described)} but the architecture has "
            f"{sorted(params)}"
        )
    state = {}
    for name, p in params.items():
        array = archive.read_array(name, shape=p.shape, what=f"the weights of {name!r}")
        if array.dtype != p.dtype:
            raise archive.error(f"{name} is {array.dtype} but the architecture says {p.dtype}")
        state[name] = array
    model.load_state_dict(state)
    return model, {CONFIG_MEMBER} | {f"{name}.npy" for name in params}


# Members a checkpoint adds to the model part (see descend.train.checkpoint): load() reads the
# model out of a checkpoint too, and accepts these.
CHECKPOINT_MEMBER = "checkpoint.json"
CHECKPOINT_PREFIXES = ("optimizer.", "history.")


def load(path: str | os.PathLike) -> Module:
    """Load a model saved by :func:`save` (or the model inside a checkpoint).

    Parameters
    ----------
    path : str or PathLike
        The file, named as it was given to :func:`save`: a name without a suffix means the
        ``.npz`` file that ``save`` wrote for it (``ds.save(model, "m"); ds.load("m")``), unless
        a file of exactly that name exists.

    Returns
    -------
    Module
        The model, with the saved weights: its predictions equal the saved model's exactly.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ModelFileError
        When the file is not a valid descend model file: truncated, altered, hostile (see the
        module documentation for what is checked) or of another format.

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
    if not path.suffix and not path.exists():
        path = path.with_suffix(".npz")  # where save wrote it
    with ArchiveReader(path) as archive:
        model, used = read_model(archive)
        unexpected = archive.names - used
        if CHECKPOINT_MEMBER in archive.names:
            unexpected = {
                n
                for n in unexpected
                if n != CHECKPOINT_MEMBER and not n.startswith(CHECKPOINT_PREFIXES)
            }
        if unexpected:
            raise archive.error(
                f"has unexpected members {_few(sorted(unexpected))}; the file was altered or is "
                "not a descend model file"
            )
    return model
