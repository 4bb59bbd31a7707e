"""Data for the command: a built-in data set by name, or a CSV / ``.npy`` file with a target.

``digits``, ``digits:0-3``, ``digits:0,1,7``, ``moons``, ``moons:500`` (500 samples), ...
name built-in sets (see ``descend datasets``); anything ending in ``.csv``, ``.tsv``, ``.txt``
or ``.npy`` is a file. Every error names the file, the column and the row, and what to do.
"""

from __future__ import annotations

import csv
import io
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descend.cli.errors import CLIError, UsageError
from descend.cli.limits import check_memory, human_bytes
from descend.cli.options import did_you_mean
from descend.io import MAX_NPY_HEADER_BYTES, ModelFileError, check_regular_file, parse_npy_header

BUILTIN = ("digits", "breast_cancer", "diabetes", "moons", "circles", "spiral", "xor")
SYNTHETIC = ("moons", "circles", "spiral", "xor")
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".npy")
# An integer target with at most this many distinct values is taken for class labels.
MAX_AUTO_CLASSES = 20
# Memory per byte of a CSV file while it is read: the text, the rows of strings, the floats
# (measured: 18 for cells of 6 characters; shorter cells cost more per byte).
CSV_BYTES_FACTOR = 32
# Memory per value of a .npy array: the float64 copy of the features and the target's list.
NPY_VALUE_BYTES = 48
# What a broken .npy header can make the parser raise.
_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, struct.error, RecursionError, MemoryError)


@dataclass
class Dataset:
    """Inputs, targets and what they mean.

    ``y`` holds class codes ``0 .. k-1`` (classification; ``classes[code]`` is the label as the
    data wrote it) or float values (regression), or is None when the data has no target.
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    task: str  # "classification" or "regression"
    features: list[str]
    target: str | None
    classes: list[Any] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input columns."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes (None for regression)."""
        return None if self.classes is None else len(self.classes)


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file rather than a built-in data set.

    >>> is_file_spec("digits:0-3"), is_file_spec("data/train.csv"), is_file_spec("x.npy")
    (False, True, True)
    """
    if spec.lower().endswith(FILE_SUFFIXES) or "/" in spec or "\\" in spec:
        return True
    name = spec.partition(":")[0].strip().lower().replace("-", "_")
    return name not in BUILTIN and Path(spec).exists()


def label_key(value: Any) -> str:
    """A label's identity across files: ``3``, ``3.0`` and ``"3"`` are the same class.

    >>> label_key(3.0), label_key("3"), label_key(" cat ")
    ('3', '3', 'cat')
    """
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return label_key(number) if math.isfinite(number) else text


def load(spec: str, target: str | None = None, task: str = "auto") -> Dataset:
    """Load a built-in data set or a file; see the module documentation for ``spec``."""
    if not spec or not spec.strip():
        raise UsageError("no data given; name a built-in data set (descend datasets) or a file")
    spec = spec.strip()
    if is_file_spec(spec):
        path = Path(spec)
        if not path.exists():
            raise CLIError(f"data file {spec} not found; check the path (relative to {Path.cwd()})")
        if path.is_dir():
            raise UsageError(f"{spec} is a folder; give a .csv or .npy file")
        data_file_size(path)
        if path.suffix.lower() == ".npy":
            data = _load_npy(path, target)
        else:
            data = _load_csv(path, target)
    else:
        if target is not None:
            raise UsageError(
                f"--target is for CSV and .npy files; the built-in data set {spec!r} has its "
                "own target: drop --target"
            )
        data = _load_builtin(spec)
    return _apply_task(data, task)


def _load_builtin(spec: str) -> Dataset:
    import descend as ds

    name, _, arg = spec.partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in BUILTIN:
        hint = did_you_mean(name, BUILTIN, "did you mean {}? ")
        raise UsageError(
            f"unknown data {spec!r}; {hint}built-in data sets: {', '.join(BUILTIN)} "
            "(e.g. digits:0-3), or a path to a .csv or .npy file"
        )
    extra: dict = {}
    try:
        if name == "digits":
            digits = _parse_digits(arg, spec) if arg else None
            X, y = ds.datasets.digits(classes=digits)
            classes = list(digits) if digits else list(range(10))
        elif name in SYNTHETIC:
            kwargs: dict[str, Any] = {"seed": 0}
            if arg:
                if not arg.strip().isdigit() or int(arg) < 4:
                    raise UsageError(
                        f"{spec!r}: after the colon comes a number of samples (at least 4), "
                        f"e.g. {name}:500"
                    )
                kwargs["n_samples"] = int(arg)
                # Inputs, targets and the generator's work arrays, float64.
                check_memory(int(arg) * 8 * 12, f"{spec!r} ({int(arg):,} samples)",
                             f"ask for fewer samples, e.g. {name}:10000")  # fmt: skip
            X, y = getattr(ds.datasets, name)(**kwargs)
            classes = sorted(int(c) for c in np.unique(y))
        else:
            if arg:
                raise UsageError(f"{spec!r}: {name} takes no option after a colon; use {name}")
            X, y = getattr(ds.datasets, name)()
            classes = None if y.dtype.kind == "f" else sorted(int(c) for c in np.unique(y))
    except ImportError as exc:
        raise CLIError(str(exc).replace("\n", " ")) from None
    task = "regression" if classes is None else "classification"
    if name == "digits":
        features = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
        extra["image_shape"] = [8, 8]
    else:
        features = [f"x{i}" for i in range(X.shape[1])]
    if name == "breast_cancer":
        classes = ["malignant", "benign"]
    return Dataset(
        name=spec, X=X, y=y, task=task, features=features,
        target="digit" if name == "digits" else "target", classes=classes,
        source=f"built-in data set {name}", extra=extra,
    )  # fmt: skip


def _parse_digits(arg: str, spec: str) -> tuple[int, ...]:
    digits: list[int] = []
    for part in arg.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d)\s*-\s*(\d)", part)
        if match:
            low, high = int(match[1]), int(match[2])
            if low > high:
                raise UsageError(f"{spec!r}: the range {part} runs backwards; write e.g. 0-3")
            digits.extend(range(low, high + 1))
        elif re.fullmatch(r"\d", part):
            digits.append(int(part))
        else:
            raise UsageError(
                f"{spec!r}: choose digits as a range or a list, e.g. digits:0-3 or digits:0,1,7"
            )
    if len(set(digits)) != len(digits):
        raise UsageError(f"{spec!r} lists a digit twice; name each digit once")
    if len(digits) < 2:
        raise UsageError(f"{spec!r}: choose at least two digits to tell apart, e.g. digits:0-3")
    return tuple(digits)


def _sniff_delimiter(path: Path, sample: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    # Lines end where the CSV reader ends them (\r or \n), not at str.splitlines' U+2028 etc.
    first = re.split(r"\r\n|\r|\n", sample, maxsplit=1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """The header (or column numbers) and the rows of a CSV file, as text."""
    size = data_file_size(path)
    check_memory(size * CSV_BYTES_FACTOR, f"the CSV file {path} ({human_bytes(size)})",
                 "use a smaller file, or save the data as .npy")  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    delimiter = _sniff_delimiter(path, text[:4096])
    # newline="": only \r and \n end a line; a quoted field keeps U+2028 and the like.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        limit = csv.field_size_limit()
        why = (f"a field is longer than {limit:,} characters, the most descend reads"
               if "field limit" in str(exc) else f"it is not valid CSV ({exc})")  # fmt: skip
        raise CLIError(
            f"{path}, line {reader.line_num}: {why}; fix the file (a quote left open makes the "
            "rest of the file one field)"
        ) from None
    if not rows:
        raise CLIError(f"{path} is empty; it needs a header line and at least one row of data")
    first = [cell.strip() for cell in rows[0]]
    has_header = not all(_is_number(cell) for cell in first if cell) or not any(first)
    header = first if has_header else [str(i) for i in range(len(first))]
    body = rows[1:] if has_header else rows
    if not body:
        raise CLIError(f"{path} has a header but no rows of data")
    for i, row in enumerate(body):
        if len(row) != len(header):
            line = i + (2 if has_header else 1)
            raise CLIError(
                f"{path}, line {line}: {len(row)} fields where the header has {len(header)}; "
                f"every row needs one value per column"
            )
    return header, body, has_header


def find_column(header: list[str], target: str, path: Path) -> int:
    """The index of column ``target`` (a name, or a number for a file without a header)."""
    if target in header:
        return header.index(target)
    lowered = [h.lower() for h in header]
    if target.lower() in lowered:
        return lowered.index(target.lower())
    shown = ", ".join(header[:30]) + (", ..." if len(header) > 30 else "")
    raise UsageError(f"{path} has no column {target!r}; --target must be one of: {shown}")


def _column_floats(cells: list[str], name: str, path: Path, first_line: int) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            out[i] = float(text)
        except ValueError:
            line = i + first_line
            if not text:
                raise CLIError(
                    f"{path}: column {name!r} is empty in row {i + 1} (line {line}); fill in the "
                    "value or remove the row"
                ) from None
            raise CLIError(
                f"{path}: column {name!r} holds text ({text!r} in row {i + 1}, line {line}) "
                "where numbers are needed; convert it to numbers or remove the column"
            ) from None
        if not math.isfinite(out[i]):
            raise CLIError(
                f"{path}: column {name!r} holds {text!r} in row {i + 1} (line {i + first_line}); "
                "replace missing or infinite values, or remove the row"
            )
    return out


def _load_csv(path: Path, target: str | None) -> Dataset:
    header, body, has_header = read_table(path)
    if len(header) < 2:
        raise CLIError(f"{path} has one column; it needs at least one feature and a target")
    t = len(header) - 1 if target is None else find_column(header, target, path)
    first_line = 2 if has_header else 1
    columns = list(zip(*body, strict=True))
    feature_idx = [j for j in range(len(header)) if j != t]
    X = np.column_stack(
        [_column_floats(list(columns[j]), header[j], path, first_line) for j in feature_idx]
    )
    raw = [cell.strip() for cell in columns[t]]
    for i, cell in enumerate(raw):
        if not cell:
            raise CLIError(
                f"{path}: the target column {header[t]!r} is empty in row {i + 1} "
                f"(line {i + first_line}); fill in the value or remove the row"
            )
    data = Dataset(
        name=str(path), X=X, y=None, task="auto", features=[header[j] for j in feature_idx],
        target=header[t], source=f"CSV file {path}",
    )  # fmt: skip
    data.extra["raw_target"] = raw
    return data


def data_file_size(path: Path) -> int:
    """The size of a data file, which must be a regular file (not a device, pipe or folder)."""
    try:
        return check_regular_file(path, "data file")
    except ModelFileError as exc:
        raise CLIError(str(exc)) from None
    except FileNotFoundError:
        raise CLIError(f"data file {path} not found; check the path") from None


def read_npy(path: Path) -> np.ndarray:
    """A 2-D numeric ``.npy`` array, memory-mapped read-only, checked as the model loader checks.

    The header is parsed as a literal (no pickle, no objects), the bytes it announces must be
    the bytes the file holds, and the memory the command will need for it must be available:
    all before any data is read.
    """
    size = data_file_size(path)
    try:
        with open(path, "rb") as f:
            head = f.read(MAX_NPY_HEADER_BYTES + 12)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        raise CLIError(
            f"{path} is a zip archive (an .npz?), not a .npy array; save one array with "
            "np.save(path, array)"
        )
    try:
        descr, _, shape, offset = parse_npy_header(head)
        dtype = np.dtype(descr)
    except _HEADER_ERRORS as exc:
        raise CLIError(f"{path} is not a .npy array ({type(exc).__name__}: {exc})") from None
    if dtype.kind not in "biuf":
        raise CLIError(f"{path} holds {dtype} values; it must hold numbers")
    if len(shape) != 2 or shape[1] < 1 or shape[0] < 1:
        raise CLIError(
            f"{path} holds an array of shape {shape}; it must be 2-D, one row per sample, with "
            "the features (and the target) as columns"
        )
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes != size - offset:
        raise CLIError(
            f"{path}: its header announces a {shape[0]:,} x {shape[1]:,} array of {dtype} "
            f"({human_bytes(n_bytes)}) but the file holds {human_bytes(size - offset)} of data; "
            "the file is truncated or corrupt"
        )
    check_memory(math.prod(shape) * NPY_VALUE_BYTES,
                 f"{path} (a {shape[0]:,} x {shape[1]:,} array)",
                 "use fewer rows, or train in Python with ds.fit on a memory map")  # fmt: skip
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None


def _first_not_finite(column: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(column, dtype=np.float64)))
    return int(bad[0]) if bad.size else None


def _load_npy(path: Path, target: str | None) -> Dataset:
    array = read_npy(path)
    if array.shape[1] < 2:
        raise CLIError(
            f"{path} holds an array of shape {array.shape}; it must be 2-D, one row per sample, "
            "with the features and the target as columns"
        )
    n_cols = array.shape[1]
    if target is None:
        t = n_cols - 1
    else:
        try:
            t = int(target)
        except ValueError:
            raise UsageError(
                f"--target for a .npy file is a column number (0 to {n_cols - 1}, or -1 for the "
                f"last), got {target!r}"
            ) from None
        if not -n_cols <= t < n_cols:
            raise UsageError(f"--target {t} is out of range: {path} has columns 0 to {n_cols - 1}")
        t %= n_cols
    row = _first_not_finite(array[:, t])
    if row is not None:
        raise CLIError(
            f"{path}: row {row} holds {array[row, t]} in the target column {t}; a target must be "
            "a number (or a class code): replace or remove that row"
        )
    X = np.delete(array, t, axis=1).astype(np.float64)
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise CLIError(
            f"{path}: row {row} holds {X[row, col]} in a feature column; replace or remove it"
        )
    features = [str(j) for j in range(n_cols) if j != t]
    data = Dataset(
        name=str(path), X=X, y=None, task="auto", features=features, target=str(t),
        source=f".npy file {path}",
    )  # fmt: skip
    data.extra["raw_target"] = array[:, t].tolist()
    return data


def _apply_task(data: Dataset, task: str) -> Dataset:
    raw = data.extra.pop("raw_target", None)
    if raw is None:  # a built-in set: its task is known
        if task == "regression" and data.task == "classification":
            data.y = data.y.astype(np.float64)
            data.task, data.classes = "regression", None
        elif task == "classification" and data.task == "regression":
            raise UsageError(
                f"{data.name} is a regression data set (its target is continuous); drop "
                "--task classification"
            )
        return data
    numbers = [_as_float(v) for v in raw]
    numeric = all(v is not None for v in numbers)
    if task == "regression":
        if not numeric:
            bad = next(i for i, v in enumerate(numbers) if v is None)
            raise CLIError(
                f"{data.source}: the target column {data.target!r} holds text ({raw[bad]!r} in "
                f"row {bad + 1}); regression needs numbers (or use --task classification)"
            )
        data.task, data.y = "regression", np.asarray(numbers, dtype=np.float64)
        return data
    whole = numeric and all(float(v).is_integer() for v in numbers)
    keys = [label_key(v) for v in raw]
    n_distinct = len(set(keys))
    if task == "auto" and numeric and (not whole or n_distinct > MAX_AUTO_CLASSES):
        data.task, data.y = "regression", np.asarray(numbers, dtype=np.float64)
        return data
    if n_distinct < 2:
        raise CLIError(
            f"{data.source}: the target column {data.target!r} has a single value ({raw[0]!r}); "
            "a classifier needs at least two classes"
        )
    if numeric:
        classes = sorted({float(v) for v in numbers})
        classes = [int(c) if c.is_integer() else c for c in classes]
    else:
        classes = sorted(set(keys))
    index = {label_key(c): i for i, c in enumerate(classes)}
    data.y = np.asarray([index[k] for k in keys], dtype=np.int64)
    data.task, data.classes = "classification", classes
    return data


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def encode_labels(raw: list[Any], classes: list[Any], source: str) -> np.ndarray:
    """Codes ``0 .. k-1`` of labels in a run's class list; unknown labels are an error."""
    index = {label_key(c): i for i, c in enumerate(classes)}
    codes = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        code = index.get(label_key(value))
        if code is None:
            known = ", ".join(str(c) for c in classes)
            raise CLIError(
                f"{source}: row {i + 1} has the label {value!r}, which the model was not trained "
                f"on (it knows {known})"
            )
        codes[i] = code
    return codes


def load_for_model(
    spec: str, info: dict, target: str | None = None, need_target: bool = True
) -> Dataset:
    """Load new data for a trained model, matching its features and classes.

    ``info`` is the run's ``preprocess.json``: ``features``, ``target``, ``task``, ``classes``
    and ``kind`` (``"builtin"``, ``"csv"`` or ``"npy"``). Feature columns of a CSV file are
    found by name when the model was trained on a CSV file with a header; otherwise by position.
    """
    if not is_file_spec(spec):
        return _builtin_for_model(spec, info, target)
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"data file {spec} not found; check the path (relative to {Path.cwd()})")
    header, cells, has_header, by_name = _file_columns(path, info)
    t, feature_idx = _columns_for_model(header, path, info, target, by_name)
    first_line = 2 if has_header else 1
    X = np.column_stack(
        [_column_floats([str(v) for v in cells[j]], header[j], path, first_line)
         for j in feature_idx]
    )  # fmt: skip
    data = Dataset(
        name=str(path), X=X, y=None, task=info["task"], features=info["features"],
        target=header[t] if t is not None else None, classes=info.get("classes"),
        source=f"file {path}",
    )  # fmt: skip
    if t is None:
        if need_target:
            raise CLIError(
                f"{path} has no target column {info.get('target')!r} to compare with; add it, "
                "or name it with --target"
            )
        return data
    data.y = _targets_for_model([str(v).strip() for v in cells[t]], info, header[t], path)
    return data


def _builtin_for_model(spec: str, info: dict, target: str | None) -> Dataset:
    data = load(spec, target, task=info["task"] if info["task"] == "regression" else "auto")
    _check_width(data.n_features, len(info["features"]), spec)
    if info["task"] == "classification" and data.y is not None:
        if data.classes is None:
            raise CLIError(f"{spec} is regression data; the model is a classifier")
        labels = [data.classes[c] for c in data.y]
        data.y = encode_labels(labels, info["classes"], spec)
        data.classes = info["classes"]
    data.task = info["task"]
    return data


def _file_columns(path: Path, info: dict) -> tuple[list[str], list[list], bool, bool]:
    """The header, the columns (as lists), whether there is a header line, whether the
    features are to be found by name."""
    if path.suffix.lower() == ".npy":
        array = read_npy(path)
        return [str(j) for j in range(array.shape[1])], array.T.tolist(), False, False
    header, body, has_header = read_table(path)
    cells = [list(col) for col in zip(*body, strict=True)]
    return header, cells, has_header, has_header and info.get("kind") == "csv"


def _columns_for_model(
    header: list[str], path: Path, info: dict, target: str | None, by_name: bool
) -> tuple[int | None, list[int]]:
    """The target's column (None when absent) and the feature columns, in the model's order."""
    features: list[str] = info["features"]
    if by_name:
        t = None
        if target is not None:
            t = find_column(header, target, path)
        elif info.get("target") in header:
            t = header.index(info["target"])
        missing = [f for f in features if f not in header]
        if missing:
            raise CLIError(
                f"{path} lacks the column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing[:10])} that the model was trained on; its columns: "
                f"{', '.join(header[:30])}"
            )
        return t, [header.index(f) for f in features]
    n_cols, n_features = len(header), len(features)
    if n_cols == n_features:
        return None, list(range(n_cols))
    if n_cols != n_features + 1:
        raise CLIError(
            f"{path} has {n_cols} columns; the model takes {n_features} features (give "
            f"{n_features} columns, or {n_features + 1} with the target)"
        )
    saved = str(info.get("target") or "")
    if target is not None:
        t = int(target) % n_cols if target.lstrip("-").isdigit() else (
            find_column(header, target, path))  # fmt: skip
    elif info.get("kind") == "npy" and saved.lstrip("-").isdigit():
        t = int(saved) % n_cols
    else:
        t = n_cols - 1
    return t, [j for j in range(n_cols) if j != t]


def _targets_for_model(raw: list[str], info: dict, name: str, path: Path) -> np.ndarray:
    if info["task"] == "classification":
        return encode_labels(raw, info["classes"], str(path))
    values = [_as_float(v) for v in raw]
    bad = next((i for i, v in enumerate(values) if v is None), None)
    if bad is not None:
        raise CLIError(
            f"{path}: the target column {name!r} holds {raw[bad]!r} in row {bad + 1}; the "
            "model predicts numbers"
        )
    return np.asarray(values, dtype=np.float64)


FLOAT32_MAX = float(np.finfo(np.float32).max)
# Standardising subtracts the mean: values beyond half the largest float64 could overflow.
STANDARDIZE_MAX = float(np.finfo(np.float64).max) / 2


def check_magnitudes(data: Dataset, standardize: bool | None) -> None:
    """Refuse values the model cannot take: features beyond float32 when they are not
    standardised (beyond half of float64 when they are), a regression target beyond float32.

    >>> X = np.array([[1.0], [1e300]])
    >>> try:
    ...     check_magnitudes(Dataset("d", X, None, "auto", ["a"], None), standardize=False)
    ... except CLIError as err:
    ...     print(str(err).split(";")[0])
    d: feature 'a' holds values up to 1e+300, more than float32 (the network's numbers) holds
    """
    if data.n_samples == 0:
        return
    peak = np.abs(data.X).max(axis=0).astype(np.float64)  # compared with float64 limits
    limit = FLOAT32_MAX if standardize is False else STANDARDIZE_MAX
    why = "float32 (the network's numbers) holds" if standardize is False else (
        "standardising can handle")  # fmt: skip
    fix = "standardise it (drop --no-standardize) or " if standardize is False else ""
    if (peak > limit).any():
        j = int(np.flatnonzero(peak > limit)[0])
        raise CLIError(
            f"{data.name}: feature {data.features[j]!r} holds values up to {peak[j]:.3g}, more "
            f"than {why}; {fix}rescale it (e.g. divide it by a power of ten)"
        )
    if data.task == "regression" and data.y is not None:
        top = float(np.abs(data.y).max()) if np.size(data.y) else 0.0
        if top > FLOAT32_MAX:
            raise CLIError(
                f"{data.name}: the target {data.target!r} holds values up to {top:.3g}, more "
                f"than float32 (the network's numbers) holds; rescale it"
            )


def _check_width(got: int, expected: int, spec: str) -> None:
    if got != expected:
        raise CLIError(
            f"{spec} has {got} features but the model takes {expected}; use data with the "
            "same columns as the training data"
        )
