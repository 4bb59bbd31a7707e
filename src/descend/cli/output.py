"""Where the commands write: run folders that are complete or absent, and single output files.

A run folder (``descend train --out DIR``, and the folders of compare, surface, inspect and
landscape) is written into a hidden sibling, ``.DIR.partial-<pid>-<random>``, and renamed to
``DIR`` only when every file is in it. So ``DIR`` is always one of: absent, the earlier run
(untouched), or the complete new run. A run that training stopped early (Ctrl-C, divergence)
is still a complete folder whose ``metrics.json`` and ``report.html`` say so. (Into an existing
empty folder, which stays as it is, the files are moved one by one, ``report.html`` last.)
The partial folder of a killed run is removed by the next run into the same ``DIR``.

The rules, in one place:

- An ``--out`` folder that exists and is not empty is refused, with a line that names
  ``--force``. With ``--force`` the old folder is replaced, as a whole, once the new run is
  complete -- and only if every entry in it is a name descend writes (a folder holding other
  files, such as a home folder, is refused even with ``--force``: descend never deletes a
  file it did not write). A folder is never left holding parts of two runs.
- When ``--out`` is not given, the default name gets ``-2``, ``-3``, ... if it is taken.
- Files keep their modes: new files and folders get the usual ``0666``/``0777`` less the
  umask; a folder or file that is replaced keeps the mode it had. descend changes the mode of
  no file it did not create.
- A single output file (``predict -o FILE``): ``-`` is standard output; a symbolic link is
  followed (the file it points to is written, the link stays); a device, FIFO or socket is
  written into, never replaced; only a regular file is replaced atomically (temporary file,
  then rename), keeping its mode and owner.
- Ctrl-C while a folder is being written removes the partial folder and leaves ``DIR`` as it
  was; a full disk or a read-only file system is one line naming the folder (exit status 1).
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from descend.cli.errors import CLIError, Interrupted, UsageError
from descend.cli.options import add_to_parser
from descend.io import atomic_write, current_umask, sync_folder

# Every name descend writes into an output folder (files), and the folders it writes inside a
# run folder (inspect-3, landscape). --force replaces only a folder made of these: a command
# that writes a new kind of file adds its name here.
OWN_FILES = (
    "model.npz", "config.toml", "preprocess.json", "history.csv", "steps.csv", "metrics.json",
    "trajectory.npz", "report.html", "*.png", "comparison.md", "comparison.json",
    "inspect.json", "landscape.json", "surface.json", "surface.html", "sweep.md", "sweep.json",
    ".*.tmp",
)  # fmt: skip
OWN_FOLDERS = ("inspect-*", "landscape*")

# What an OSError while writing means for the user, by errno.
_WHY = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
}


def add_command(subparsers, parents, name: str, options, func, **texts) -> argparse.ArgumentParser:
    """Add a command that writes a folder: its options' flags, ``--config`` and ``--force``.

    Parameters
    ----------
    subparsers : the ``add_subparsers()`` action of ``descend``'s parser
    parents : list of ArgumentParser
        The flags every command takes.
    name : str
    options : sequence of Option
        The settings of the command, also read from a ``--config`` TOML file.
    func : callable
        ``func(args) -> exit status``, the command.
    **texts
        ``help``, ``description`` and ``epilog``, as for ``add_parser``.

    Returns
    -------
    ArgumentParser
        The command's parser, for flags of its own.
    """
    parser = subparsers.add_parser(name, parents=parents, **texts)
    add_to_parser(parser, options)
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file")
    add_force_flag(parser)
    parser.set_defaults(func=func)
    return parser


def add_force_flag(parser) -> None:
    """Add ``--force`` (replace an existing output folder) to a command's parser."""
    parser.add_argument(
        "--force", action="store_true",
        help="replace the --out folder if it already holds a run; the old run is removed only "
        "once the new one is complete, and only if descend wrote every file in it",
    )  # fmt: skip


def _describe(exc: OSError) -> str:
    return _WHY.get(exc.errno or 0, exc.strerror or str(exc))


def _is_own(folder: Path, depth: int = 0) -> list[str]:
    """The entries of ``folder`` that descend does not write (empty: the folder is descend's)."""
    foreign = []
    for entry in os.scandir(folder):
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            own = depth == 0 and any(fnmatch.fnmatchcase(name, p) for p in OWN_FOLDERS)
            if not own or _is_own(Path(entry.path), depth + 1):
                foreign.append(name + "/")
        elif not (
            entry.is_file(follow_symlinks=False)
            and any(fnmatch.fnmatchcase(name, p) for p in OWN_FILES)
        ):
            foreign.append(name)
    return sorted(foreign)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


@contextmanager
def _sigint_held():
    """Ignore Ctrl-C for the few system calls that put a finished folder in place.

    Stopping half-way would leave the earlier run moved aside and the new one not yet in place;
    a moment later the run is complete and only a summary is left to print, so a Ctrl-C here
    is dropped, as one after the end of the command is (:func:`descend.cli.run_as_program`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RunFolder:
    """The output folder of a command, written into a hidden sibling and renamed into place.

    Create it before the long work (it checks ``target`` at once, so a refused folder costs
    nothing), then write into ``path`` inside ``with folder:``; leaving the block without an
    exception puts the folder in place.

    Parameters
    ----------
    target : str or Path
        The folder the user named (``--out``), or the command's default.
    force : bool
        Replace an existing run in ``target`` (``--force``).
    default : bool
        ``target`` is the command's default name, not the user's: when it is taken, the next
        free ``target-2``, ``target-3``, ... is used instead of refusing.
    flag : str
        The option that named the folder, for messages.

    Attributes
    ----------
    target : Path
        Where the run ends up (absolute; a link to a folder resolved).
    shown : Path
        The name to show the user (as given, or the numbered default).
    path : Path
        Where to write while inside ``with`` (the hidden sibling).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp())
    >>> folder = RunFolder(base / "run")
    >>> with folder:
    ...     _ = (folder.path / "notes.txt").write_text("hello")
    >>> sorted(p.name for p in (base / "run").iterdir())
    ['notes.txt']
    >>> try:
    ...     RunFolder(base / "run")
    ... except UsageError as err:
    ...     print("--force" in str(err))
    True
    """

    def __init__(
        self, target: str | os.PathLike, *, force: bool = False, default: bool = False,
        flag: str = "--out",
    ) -> None:  # fmt: skip
        self.force = force
        self.flag = flag
        target = Path(target)
        if default:
            target = self._free_name(target)
        # A link to a folder is followed: the run goes where the link points, the link stays.
        # Absolute, so that "." has a name and a parent for the hidden sibling.
        self.target = Path(os.path.realpath(target) if target.is_symlink() else
                           os.path.abspath(target))  # fmt: skip
        self.shown = target
        self._stage: Path | None = None
        self._had_run = False
        self._check()

    @staticmethod
    def _free_name(target: Path) -> Path:
        n, candidate = 1, target
        while candidate.exists() or candidate.is_symlink():
            n += 1
            candidate = target.with_name(f"{target.name}-{n}")
        return candidate

    @property
    def path(self) -> Path:
        """The folder to write into (only inside ``with``)."""
        if self._stage is None:
            raise RuntimeError("RunFolder.path is available inside 'with folder:' only")
        return self._stage

    def _check(self) -> None:
        """Refuse a target that is a file, or an existing run without --force."""
        target, shown = self.target, self.shown
        if target.exists() and not target.is_dir():
            raise UsageError(
                f"{self.flag} {shown} is a file; give a folder name (it is created if missing)"
            )
        if not target.is_dir():
            return
        try:
            entries = os.listdir(target)
        except OSError as exc:
            raise CLIError(
                f"cannot read the folder {shown} ({self.flag}): {_describe(exc)}"
            ) from None
        self._had_run = bool(entries)
        if not entries:
            return
        if not self.force:
            raise UsageError(
                f"{self.flag} {shown} already exists and is not empty ({len(entries)} "
                f"entr{'y' if len(entries) == 1 else 'ies'}); give a new folder name, or add "
                "--force to replace the run in it (once the new one is complete)"
            )
        foreign = _is_own(target)
        if foreign:
            names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise UsageError(
                f"{self.flag} {shown} holds files descend did not write ({names}); --force "
                "replaces only a folder written by descend: give a new folder name"
            )

    def _sibling(self, kind: str) -> Path:
        return self.target.parent / (
            f".{self.target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        )

    def _clean_leftovers(self) -> None:
        """Remove the partial folders of runs into the same target that were killed."""
        prefix = f".{self.target.name}."
        try:
            names = os.listdir(self.target.parent)
        except OSError:
            return
        for name in names:
            if not name.startswith(prefix):
                continue
            kind, _, rest = name[len(prefix) :].partition("-")
            pid = rest.split("-")[0]
            # An .old folder is the earlier run, moved aside: removed only once the new one is
            # in place.
            keep = kind == "old" and not self.target.exists()
            if (
                kind in ("partial", "old")
                and pid.isdigit()
                and not keep
                and not _pid_alive(int(pid))
            ):
                shutil.rmtree(self.target.parent / name, ignore_errors=True)

    def __enter__(self) -> RunFolder:
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._clean_leftovers()
            stage = self._sibling("partial")
            stage.mkdir(mode=0o700)
        except OSError as exc:
            raise CLIError(
                f"cannot create the folder {self.shown} ({self.flag}): {_describe(exc)}"
            ) from None
        self._stage = stage
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:  # fmt: skip
        if kind is None:
            try:
                self._commit()
            except BaseException:
                self._abort()
                raise
            return False
        self._abort()
        before = "the earlier run in it is unchanged" if self._had_run else "nothing was written"
        if issubclass(kind, KeyboardInterrupt):
            raise Interrupted(f"interrupted while writing {self.shown}; {before}") from None
        if isinstance(exc, OSError):
            raise CLIError(
                f"cannot write the folder {self.shown} ({self.flag}): {_describe(exc)}; {before}"
            ) from None
        return False

    def _abort(self) -> None:
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    def _commit(self) -> None:
        stage, target = self.path, self.target
        try:
            self._check()  # again: another process may have written there meanwhile
            exists = target.is_dir()
            replace = exists and bool(os.listdir(target))
            if replace:
                _keep_modes(target, stage)
                os.chmod(stage, target.stat().st_mode & 0o7777)
            else:
                os.chmod(stage, 0o777 & ~current_umask())
            with _sigint_held():
                if replace:
                    aside = self._sibling("old")
                    os.rename(target, aside)
                    try:
                        os.rename(stage, target)
                    except OSError:
                        os.rename(aside, target)
                        raise
                elif exists:
                    _move_entries(stage, target)
                else:
                    os.rename(stage, target)
                self._stage = None
                if replace:
                    shutil.rmtree(aside, ignore_errors=True)
                sync_folder(target.parent)
        except OSError as exc:
            raise CLIError(
                f"cannot put the folder {self.shown} in place ({self.flag}): {_describe(exc)}"
            ) from None


def _move_entries(stage: Path, target: Path) -> None:
    """Move the run into an existing empty folder, which stays (its mode, owner, mount)."""
    # report.html last: a folder cut short here (SIGKILL, between renames) has no report.
    names = sorted(os.listdir(stage), key=lambda name: name == "report.html")
    for name in names:
        os.rename(stage / name, target / name)
    os.rmdir(stage)


def _keep_modes(old: Path, new: Path) -> None:
    """Give each file of ``new`` the mode of the file it replaces in ``old``."""
    for entry in os.scandir(new):
        before = old / entry.name
        try:
            st = before.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and entry.is_file(follow_symlinks=False):
            os.chmod(entry.path, st.st_mode & 0o7777)


def write_file(path: str | os.PathLike, data: bytes, *, flag: str = "-o") -> Path:
    """Write an output file the way a careful shell redirection would.

    ``-`` writes to standard output. A symbolic link is followed. A device, FIFO or socket is
    written into (never replaced). A regular file is replaced atomically and keeps its mode
    and owner; a new file gets ``0666`` less the umask.

    Parameters
    ----------
    path : str or PathLike
    data : bytes
    flag : str
        The option that named the file, for messages.

    Returns
    -------
    Path
        The path written (``Path("-")`` for standard output).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> write_file(target, b"a,b\\n").read_bytes()
    b'a,b\\n'
    """
    if str(path) == "-":
        binary = getattr(sys.stdout, "buffer", None)  # none where stdout was replaced by text
        sys.stdout.flush()
        if binary is None:
            sys.stdout.write(data.decode("utf-8"))
        else:
            binary.write(data)
        sys.stdout.flush()
        return Path("-")
    shown = Path(path)
    real = Path(os.path.realpath(shown))
    try:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{flag} {shown} is a folder; give a file name")
        if st is not None and stat.S_ISSOCK(st.st_mode):
            raise UsageError(f"{flag} {shown} is a socket, which cannot be written to; give a "
                             "file name")  # fmt: skip
        if st is not None and not stat.S_ISREG(st.st_mode):
            _write_into(real, data)
        else:
            if not real.parent.is_dir():
                raise CLIError(f"cannot write {shown} ({flag}): the folder {shown.parent} does "
                               "not exist")  # fmt: skip
            atomic_write(real, lambda f: f.write(data))  # keeps an existing file's mode
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(real, st.st_uid, st.st_gid)
                except OSError:
                    pass
    except OSError as exc:
        raise CLIError(f"cannot write {shown} ({flag}): {_describe(exc)}") from None
    return shown


def _write_into(path: Path, data: bytes) -> None:
    """Write into an existing special file (device, FIFO): no create, no truncate, no rename."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
