"""Options shared by the command line and TOML config files, and the config file itself.

Each :class:`Option` is one setting with one name in both places: ``--val-split`` on the command
line is ``val_split`` in a config file. The value is settled in this order, later winning:
the default, the ``--config`` file, the flag on the command line. The run folder keeps the
settled values as ``config.toml`` (written by :func:`dump_toml`), so
``descend train --config runs/x/config.toml`` repeats the run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descend._names import close_names, join_or
from descend.cli.errors import CLIError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


# Integer options for which 0 is meaningful (every other integer option must be >= 1).
ZERO_OK = ("seed", "patience", "sample")
# The tables a config file may hold: one per command (a shared file configures several).
COMMANDS = ("train", "compare", "surface", "landscape", "inspect", "evaluate", "predict",
            "gradcheck", "sweep", "playground")  # fmt: skip
# A config file is a page of settings; a larger one is not a config file.
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class Option:
    """One setting: its config key, its flag, how to read it, its default and its help."""

    key: str
    kind: str  # str int float fraction bool choice hidden batch batches ints floats
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    positional: bool = False
    saved: bool = True  # written to the run folder's config.toml

    @property
    def flag(self) -> str:
        """The command-line spelling, e.g. ``--val-split``."""
        return "--" + self.key.replace("_", "-")


def parse_hidden(value: Any, where: str) -> list[int]:
    """Hidden layer sizes from ``"32,16"``, ``[32, 16]``, ``32`` or ``"none"`` (no hidden layer).

    >>> parse_hidden("32,16", "--hidden")
    [32, 16]
    """
    if isinstance(value, bool):
        raise UsageError(f"{where} must be layer sizes such as 32,16, got {value!r}")
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "0"):
            return []
        items = [part.strip() for part in text.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise UsageError(f"{where} must be layer sizes such as 32,16, got {value!r}")
    sizes = []
    for item in items:
        try:
            size = int(item) if not isinstance(item, bool | float) else None
        except (TypeError, ValueError):
            size = None
        if size is None or size < 1:
            raise UsageError(
                f"{where} must be positive layer sizes separated by commas, e.g. 32,16 "
                f"(or none for no hidden layer), got {value!r}"
            )
        sizes.append(size)
    return sizes


def parse_batch(value: Any, where: str) -> str | int:
    """A batch size: ``"full"`` (batch GD), ``1`` (stochastic) or ``k`` (mini-batch).

    >>> parse_batch("full", "--batch"), parse_batch("32", "--batch")
    ('full', 32)
    """
    if isinstance(value, str) and value.strip().lower() in ("full", "batch", "all"):
        return "full"
    try:
        size = int(value) if not isinstance(value, bool | float) else None
    except (TypeError, ValueError):
        size = None
    if size is None or size < 1:
        raise UsageError(
            f"{where} must be full (batch gradient descent), 1 (stochastic) or a number of "
            f"samples k >= 1 (mini-batch), got {value!r}"
        )
    return size


def parse_batches(value: Any, where: str) -> list[str | int]:
    """A list of batch sizes, e.g. ``"full,1,32"``.

    >>> parse_batches("full,1,32", "--batches")
    ['full', 1, 32]
    """
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise UsageError(f"{where} must be batch sizes such as full,1,32, got {value!r}")
    return [parse_batch(item, where) for item in items]


def parse_ints(value: Any, where: str) -> list[int]:
    """Whole numbers >= 0, e.g. seeds ``"0,1,2"``.

    >>> parse_ints("0,1,2", "--seeds")
    [0, 1, 2]
    """
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    try:
        numbers = [int(v) for v in items if not isinstance(v, bool | float)]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or len(numbers) != len(list(items)) or min(numbers) < 0:
        raise UsageError(f"{where} must be whole numbers >= 0 separated by commas, got {value!r}")
    return numbers


def parse_floats(value: Any, where: str) -> list[float]:
    """Positive numbers, e.g. learning rates ``"0.01,0.1"``.

    >>> parse_floats("0.01,0.1", "--lrs")
    [0.01, 0.1]
    """
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int | float) and not isinstance(items, bool):
        items = [items]
    try:
        numbers = [float(v) for v in items if not isinstance(v, bool)]
    except (TypeError, ValueError):
        numbers = []
    if (
        not numbers
        or len(numbers) != len(list(items))
        or not all(math.isfinite(v) and v > 0 for v in numbers)
    ):
        raise UsageError(f"{where} must be numbers > 0 separated by commas, got {value!r}")
    return numbers


def parse_names(value: Any, where: str) -> list[str]:
    """Names, comma-separated or a TOML array of strings, e.g. update rules ``"gd,adam"``.

    >>> parse_names("GD, adam", "--optimizers"), parse_names(["gd", "adam"], "optimizers")
    (['gd', 'adam'], ['gd', 'adam'])
    """
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise UsageError(f"{where} must be names separated by commas, got {value!r}")
    names = [v.strip().lower() for v in items if v.strip()]
    if not names:
        raise UsageError(f"{where} must name at least one, got {value!r}")
    return names


def _parse_number(value: Any, option: Option, where: str) -> int | float:
    integer = option.kind == "int"
    if isinstance(value, bool):
        value = None
    try:
        number = (int(value) if integer else float(value)) if value is not None else None
    except (TypeError, ValueError):
        number = None
    if isinstance(value, float) and integer and not value.is_integer():
        number = None
    if number is None or (not integer and not math.isfinite(number)):
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"{where} must be {kind}, got {value!r}")
    return number


def _parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise UsageError(f"{where} must be true or false, got {value!r}")


def _check_number(option: Option, value: Any, where: str) -> int | float:
    kind = option.kind
    number = _parse_number(value, option, where)
    if kind == "int" and number < (0 if option.key in ZERO_OK else 1):
        low = "0 or more" if option.key in ZERO_OK else "at least 1"
        raise UsageError(f"{where} must be {low}, got {number}")
    if kind == "fraction" and not 0.0 <= number < 1.0:
        raise UsageError(
            f"{where} must be a fraction in [0, 1), e.g. 0.2 for 20% of the samples, got {number}"
        )
    if kind == "float" and number <= 0:
        raise UsageError(f"{where} must be greater than 0, got {number}")
    return number


# The option kinds read by one function each: value, where -> the converted value.
_PARSERS = {
    "hidden": parse_hidden, "batch": parse_batch, "batches": parse_batches, "ints": parse_ints,
    "floats": parse_floats, "names": parse_names, "bool": _parse_bool,
}  # fmt: skip


def convert(option: Option, value: Any, where: str) -> Any:
    """Check and convert one value (a flag's text or a TOML value) to the option's type."""
    if value is None:
        return None
    kind = option.kind
    if kind in _PARSERS:
        return _PARSERS[kind](value, where)
    if kind in ("int", "float", "fraction"):
        return _check_number(option, value, where)
    text = str(value) if not isinstance(value, str) else value
    if kind == "choice":
        key = text.strip().lower()
        if key not in option.choices:
            hint = did_you_mean(key, option.choices)
            raise UsageError(
                f"{where} must be one of {', '.join(option.choices)}, got {text!r}{hint}"
            )
        return key
    return text


def add_to_parser(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """Add one flag per option; absent flags stay absent (so a config file can set them)."""
    for option in options:
        if option.positional:
            parser.add_argument(
                option.key, nargs="?", default=argparse.SUPPRESS, help=option.help,
                metavar=option.metavar or option.key.upper(),
            )  # fmt: skip
        elif option.kind == "bool":
            parser.add_argument(
                option.flag, dest=option.key, action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=option.help if "default" in option.help else
                f"{option.help} (default: {option.default})",
            )  # fmt: skip
        else:
            shown = option.default
            if option.kind == "hidden":
                shown = ",".join(map(str, option.default)) or "none"
            elif option.kind in ("batches", "ints", "floats", "names"):
                shown = ",".join(map(str, option.default))
            suffix = "" if shown is None or "default" in option.help else f" (default: {shown})"
            parser.add_argument(
                option.flag, dest=option.key, default=argparse.SUPPRESS,
                metavar=option.metavar or option.key.upper(), help=option.help + suffix,
            )  # fmt: skip


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file, or raise a one-line error saying what is wrong with it."""
    from descend.io import ModelFileError, check_regular_file

    path = Path(path)
    try:
        size = check_regular_file(path, "config file")
    except (FileNotFoundError, ModelFileError) as exc:
        if isinstance(exc, FileNotFoundError) or path.is_dir():
            raise CLIError(f"config file {path} not found; give the path of a .toml file") from None
        raise UsageError(str(exc)) from None
    if size > MAX_CONFIG_BYTES:
        raise UsageError(
            f"config file {path} has {size} bytes, more than the {MAX_CONFIG_BYTES} a config "
            "file can need; give the .toml file of descend's settings"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    except RecursionError:  # the TOML reader recurses into nested arrays and tables
        raise UsageError(
            f"config file {path} nests arrays or tables too deeply to read; descend's settings "
            "are flat (key = value)"
        ) from None
    # A [train] (or [compare], ...) table is accepted as well as top-level keys.
    return data


def settings_of(data: dict[str, Any], section: str, path: str | Path) -> dict[str, Any]:
    """The settings a config file gives command ``section``: its top-level keys, then its
    ``[section]`` table. Tables of other commands are left for them; any other table is an error
    (a misspelled ``[trian]`` would otherwise be ignored without a word).

    >>> settings_of({"epochs": 3, "train": {"lr": 0.1}, "compare": {"seeds": [1]}}, "train", "f")
    {'epochs': 3, 'lr': 0.1}
    """
    for name, value in data.items():
        if isinstance(value, dict) and name not in COMMANDS:
            close = [f"[{c}]" for c in close_names(name, COMMANDS)]
            hint = f" (did you mean {join_or(close)}?)" if close else ""
            raise UsageError(
                f"config file {path}: unknown table [{name}]{hint}; put settings at the top "
                f"level or in a table named after a command, e.g. [{section}]"
            )
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    flat.update(data.get(section, {}))
    return flat


def config_values(
    options: Sequence[Option], data: dict[str, Any], section: str, path: str | Path
) -> dict[str, Any]:
    """The settings of a config file's content for command ``section``, checked and converted
    (unknown keys and tables are errors).

    >>> from descend.cli.train import OPTIONS
    >>> config_values(OPTIONS, {"epochs": 3, "train": {"hidden": "8,4"}}, "train", "f.toml")
    {'epochs': 3, 'hidden': [8, 4]}
    """
    by_key = {o.key: o for o in options}
    flat = settings_of(data, section, path)
    unknown = sorted(set(flat) - set(by_key))
    if unknown:
        raise UsageError(
            f"config file {path}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; valid keys: {', '.join(by_key)}"
        )
    return {key: convert(by_key[key], value, f"{key} in {path}") for key, value in flat.items()}


def resolve(
    options: Sequence[Option],
    args: argparse.Namespace,
    config_path: str | None,
    section: str,
) -> dict[str, Any]:
    """Settle every option: default, then the config file, then the command line."""
    values = {o.key: o.default for o in options}
    if config_path:
        values.update(config_values(options, read_toml(config_path), section, config_path))
    for option in options:
        if option.key in vars(args):
            raw = getattr(args, option.key)
            where = option.key.upper() if option.positional else option.flag
            values[option.key] = convert(option, raw, where)
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest text that reads back to the same float
    if isinstance(value, str):
        # JSON's escapes (\" \\ \n \t \uXXXX) are TOML basic-string escapes too.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def dump_toml(values: dict[str, Any], header: str = "") -> str:
    """Flat key = value TOML (``None`` values become comments), read back by ``tomllib``.

    >>> print(dump_toml({"lr": 0.1, "hidden": [32, 16], "batch": "full", "target": None}))
    lr = 0.1
    hidden = [32, 16]
    batch = "full"
    # target = (not set)
    <BLANKLINE>
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key} = (not set)")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def did_you_mean(text: str, choices: Sequence[str], template: str = " (did you mean {}?)") -> str:
    """The hint for a misspelt ``text``: ``template`` around the close choices (at most three,
    see :func:`descend._names.close_names`), joined as "a, b or c"; empty when none is close.

    Examples
    --------
    >>> did_you_mean("adamx", ["gd", "adam", "adamw"])
    ' (did you mean adam or adamw?)'
    >>> did_you_mean("zzz", ["gd", "adam"])
    ''
    """
    close = close_names(text, choices)
    return template.format(join_or(close)) if close else ""
